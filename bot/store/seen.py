"""The remote digest last seen for each container (table `seen_digests`); its names are the
containers /containers lists."""

from __future__ import annotations

from bot.store.connection import Database, utcnow


class SeenDigests:
    """The `seen_digests` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def remember(self, container: str, image: str, digest: str) -> None:
        """Remember the remote digest seen for `container` (when it changed)."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO seen_digests (container, image, remote_digest, seen_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (container) DO UPDATE SET"
                " image = excluded.image, remote_digest = excluded.remote_digest,"
                " seen_at = excluded.seen_at"
                " WHERE remote_digest != excluded.remote_digest OR image != excluded.image",
                (container, image, digest, utcnow().isoformat()),
            )

    def running(self, image: str) -> dict[str, str]:
        """The containers last seen on `image` (a normalised reference), each with the remote
        digest seen for it."""
        with self.db.reading() as db:
            rows = db.execute(
                "SELECT container, remote_digest FROM seen_digests WHERE image = ?", (image,)
            ).fetchall()
        return {str(row["container"]): str(row["remote_digest"]) for row in rows}

    def containers(self) -> list[str]:
        """Names of the containers seen with a remote digest, sorted."""
        with self.db.reading() as db:
            rows = db.execute("SELECT container FROM seen_digests ORDER BY container").fetchall()
        return [str(row["container"]) for row in rows]
