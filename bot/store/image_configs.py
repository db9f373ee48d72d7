"""What images say about themselves (table `image_configs`): each digest's config, read from its
registry once and kept for good (bot/check/image_info.py reads and writes it as JSON)."""

from __future__ import annotations

from bot.store.connection import Database, utcnow


class ImageConfigs:
    """The `image_configs` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, digest: str) -> str | None:
        """What was kept of that digest's config (JSON), if anything."""
        with self.db.reading() as db:
            row = db.execute(
                "SELECT info FROM image_configs WHERE digest = ?", (digest,)
            ).fetchone()
        return None if row is None else str(row["info"])

    def keep(self, digest: str, info: str) -> None:
        """Keep what the digest's config says (JSON)."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO image_configs (digest, info, fetched_at) VALUES (?, ?, ?)",
                (digest, info, utcnow().isoformat()),
            )
