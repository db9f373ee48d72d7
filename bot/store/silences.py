"""What people told the bot to keep quiet about: /ignore (table `ignores`: a container, or one
digest of it) and /snooze (table `snoozes`: a container until a time)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.store.connection import Database, utcnow


class Silences:
    """The `ignores` and `snoozes` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ignore(self, container: str, digest: str | None = None, *, actor: str | None) -> None:
        """Stop alerting about `container` (only about `digest` when given)."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO ignores (container, digest, actor, at) VALUES (?, ?, ?, ?)",
                (container, digest or "", actor, utcnow().isoformat()),
            )

    def is_ignored(self, container: str, digest: str | None = None) -> bool:
        """True when `container` (or that digest of it) is ignored."""
        with self.db.reading() as db:
            row = db.execute(
                "SELECT 1 FROM ignores WHERE container = ? AND digest IN ('', ?)",
                (container, digest or ""),
            ).fetchone()
        return row is not None

    def snooze(self, container: str, until: datetime, *, actor: str | None) -> None:
        """No update alerts for `container` until `until`."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO snoozes (container, until, actor, at) VALUES (?, ?, ?, ?)",
                (container, until.astimezone(UTC).isoformat(), actor, utcnow().isoformat()),
            )

    def snoozed_until(self, container: str, now: datetime) -> datetime | None:
        """When the snooze of `container` ends, if it is snoozed at `now`."""
        with self.db.reading() as db:
            row = db.execute(
                "SELECT until FROM snoozes WHERE container = ?", (container,)
            ).fetchone()
        if row is None:
            return None
        until = datetime.fromisoformat(row["until"])
        return until if until > now else None
