"""The history (table `history`): every action taken (update, approval, refusal, rollback, ...)
with who took it and how it ended, and its retention (DOCKWARDEN_HISTORY_RETENTION)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.store.connection import Database, utcnow


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded action (update, approval, refusal, ...) and its outcome."""

    id: int
    at: str
    container: str | None
    action: str
    actor: str | None
    outcome: str
    detail: str


class History:
    """The `history` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self, action: str, outcome: str, container: str | None, actor: str | None, detail: str
    ) -> int:
        """Append one action and its outcome to the history."""
        with self.db.transaction() as db:
            cur = db.execute(
                "INSERT INTO history (at, container, action, actor, outcome, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (utcnow().isoformat(), container, action, actor, outcome, detail),
            )
            return int(cur.lastrowid or 0)

    def newest(self, container: str | None = None, limit: int = 20) -> list[HistoryEntry]:
        """The newest history entries, for one container or all."""
        with self.db.reading() as db:
            if container is None:
                rows = db.execute(
                    "SELECT * FROM history ORDER BY id DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM history WHERE container = ? ORDER BY id DESC LIMIT ?",
                    (container, limit),
                ).fetchall()
        return [HistoryEntry(**dict(row)) for row in rows]

    def containers(self) -> set[str]:
        """Every container (key) a history entry names."""
        with self.db.reading() as db:
            return {row[0] for row in db.execute(
                "SELECT DISTINCT container FROM history WHERE container IS NOT NULL"
            )}

    def prune(self, before: datetime) -> int:
        """Delete history entries older than `before`; returns how many went."""
        with self.db.transaction() as db:
            # `at` is written by utcnow().isoformat(): same format, so text order is time order.
            cutoff = before.astimezone(UTC).isoformat()
            cur = db.execute("DELETE FROM history WHERE at < ?", (cutoff,))
            return int(cur.rowcount or 0)
