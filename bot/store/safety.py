"""What safer automation remembers, in the store's SQLite file (tables of schema version 3).

- `previous_images`: per successful update, the image (id, digest) the container ran before and
  the one it runs after, kept for rollback until `keep_until`; state kept | rolled_back | expired.
- `rolled_back_digests`: digests a container was rolled back from; `auto` never applies them.
- `digests_first_seen`: when each (container, remote digest) was first seen (minimum age).
- `auto_waits`: `auto` updates found outside DOCKWARDEN_AUTO_WINDOW and when they will run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.store.alert_keys import AlertKeys
from bot.store.connection import Database, utcnow
from bot.store.updates import Updates


@dataclass(frozen=True)
class PreviousImage:
    """One successful update as a rollback needs it: from which image to which."""

    id: int
    container: str
    image: str  # the reference the container was created from, as written
    old_image_id: str
    old_digest: str | None
    new_image_id: str
    new_digest: str | None
    updated_at: str
    keep_until: str
    state: str


@dataclass(frozen=True)
class AutoWait:
    """An `auto` update waiting for the update window."""

    update_id: str
    container: str
    run_at: datetime


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class SafetyStore:
    """Rollback records, rolled-back digests, first sightings and window waits."""

    def __init__(self, store: Database) -> None:
        self.store = store

    # -- previous images -------------------------------------------------------------------------

    def remember_update(
        self,
        container: str,
        image: str,
        old_image_id: str,
        old_digest: str | None,
        new_image_id: str,
        new_digest: str | None,
        keep_until: datetime,
    ) -> int:
        """Record a successful update so that it can be rolled back until `keep_until`."""
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT INTO previous_images (container, image, old_image_id, old_digest,"
                " new_image_id, new_digest, updated_at, keep_until)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (container, image, old_image_id, old_digest, new_image_id, new_digest,
                 utcnow().isoformat(), _iso(keep_until)),
            )
            return int(cur.lastrowid or 0)

    def last_update(self, container: str) -> PreviousImage | None:
        """The newest update of `container` that can still be rolled back."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT * FROM previous_images WHERE container = ? AND state = 'kept'"
                " ORDER BY id DESC LIMIT 1",
                (container,),
            ).fetchone()
        return None if row is None else PreviousImage(**dict(row))

    def set_state(self, record_id: int, state: str) -> None:
        """Mark a record rolled_back or expired."""
        with self.store.transaction() as db:
            db.execute("UPDATE previous_images SET state = ? WHERE id = ?", (state, record_id))

    def expired(self, now: datetime) -> list[PreviousImage]:
        """Records whose keep time has passed (oldest first)."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT * FROM previous_images WHERE state = 'kept' AND keep_until <= ?"
                " ORDER BY id",
                (_iso(now),),
            ).fetchall()
        return [PreviousImage(**dict(row)) for row in rows]

    def image_still_kept(self, image_id: str) -> bool:
        """Whether some record within its keep time still needs this image for a rollback."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT 1 FROM previous_images WHERE state = 'kept' AND old_image_id = ?",
                (image_id,),
            ).fetchone()
        return row is not None

    # -- rolled-back digests ---------------------------------------------------------------------

    def block(self, container: str, digest: str) -> None:
        """`auto` must never apply `digest` to `container` again."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO rolled_back_digests (container, digest, at)"
                " VALUES (?, ?, ?)",
                (container, digest, utcnow().isoformat()),
            )

    def is_blocked(self, container: str, digest: str) -> bool:
        """Whether `container` was rolled back from `digest`."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT 1 FROM rolled_back_digests WHERE container = ? AND digest = ?",
                (container, digest),
            ).fetchone()
        return row is not None

    # -- first sightings -------------------------------------------------------------------------

    def first_seen(self, container: str, digest: str, now: datetime) -> datetime:
        """When `digest` was first seen for `container` (`now`, recorded, when never before)."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO digests_first_seen (container, digest, first_seen)"
                " VALUES (?, ?, ?)",
                (container, digest, _iso(now)),
            )
            row = db.execute(
                "SELECT first_seen FROM digests_first_seen WHERE container = ? AND digest = ?",
                (container, digest),
            ).fetchone()
        return datetime.fromisoformat(str(row["first_seen"]))

    # -- window waits ----------------------------------------------------------------------------

    def wait(self, update_id: str, container: str, run_at: datetime) -> None:
        """Keep an `auto` update for the window starting at `run_at`."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO auto_waits (update_id, container, run_at)"
                " VALUES (?, ?, ?)",
                (update_id, container, _iso(run_at)),
            )

    def waits(self) -> list[AutoWait]:
        """Every waiting `auto` update, soonest first."""
        with self.store.transaction() as db:
            rows = db.execute("SELECT * FROM auto_waits ORDER BY run_at, update_id").fetchall()
        return [
            AutoWait(str(r["update_id"]), str(r["container"]),
                     datetime.fromisoformat(str(r["run_at"])))
            for r in rows
        ]

    def waiting(self, update_id: str) -> datetime | None:
        """When that update runs, if it waits for the window."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT run_at FROM auto_waits WHERE update_id = ?", (update_id,)
            ).fetchone()
        return None if row is None else datetime.fromisoformat(str(row["run_at"]))

    def drop_wait(self, update_id: str) -> None:
        """Forget a wait (the update ran, or is no longer pending)."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM auto_waits WHERE update_id = ?", (update_id,))

    # -- the update rolled back from ---------------------------------------------------------------

    def reopen(self, container: str, digest: str) -> None:
        """Offer the update to `digest` for approval again (it was applied, then rolled back)."""
        with self.store.transaction():
            Updates(self.store).reopen_rolled_back(container, digest)
            # Said again by the next pass, now with Approve (bot/usecases/alerting.py keys).
            AlertKeys(self.store).unsay(f"update|{container}|{digest}")
