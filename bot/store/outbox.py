"""The outbox (table `outbox`): alerts an adapter could not deliver yet, retried at the next
pass until they go through."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.connection import Database, utcnow


@dataclass(frozen=True)
class OutboxItem:
    """An alert one adapter could not deliver yet (kept to retry at the next pass)."""

    id: int
    adapter: str
    payload: str
    attempts: int


class Outbox:
    """The `outbox` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, adapter: str, payload: str, error: str, attempts: int) -> int:
        """Keep an alert for `adapter` until it is delivered."""
        with self.db.transaction() as db:
            cur = db.execute(
                "INSERT INTO outbox (adapter, payload, created_at, attempts, last_error)"
                " VALUES (?, ?, ?, ?, ?)",
                (adapter, payload, utcnow().isoformat(), attempts, error),
            )
            return int(cur.lastrowid or 0)

    def items(self, adapter: str | None = None) -> list[OutboxItem]:
        """Undelivered alerts (of one adapter or all), oldest first."""
        with self.db.reading() as db:
            if adapter is None:
                rows = db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM outbox WHERE adapter = ? ORDER BY id", (adapter,)
                ).fetchall()
        return [
            OutboxItem(id=r["id"], adapter=r["adapter"], payload=r["payload"],
                       attempts=r["attempts"])
            for r in rows
        ]

    def done(self, item_ids: tuple[int, ...]) -> None:
        """Drop delivered alerts from the outbox."""
        with self.db.transaction() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in item_ids])

    def failed(self, item_id: int, error: str) -> None:
        """Count one more failed delivery of an outbox alert."""
        with self.db.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, item_id),
            )
