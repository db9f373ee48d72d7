"""Alert dedup (table `alert_keys`): which alerts were already said, so that a pass says each
one once (the keys are made in bot/usecases/alerting.py)."""

from __future__ import annotations

from bot.store.connection import Database, utcnow


class AlertKeys:
    """The `alert_keys` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def was_said(self, key: str) -> bool:
        """True when the alert behind `key` was already said."""
        with self.db.reading() as db:
            row = db.execute("SELECT 1 FROM alert_keys WHERE key = ?", (key,)).fetchone()
        return row is not None

    def mark_said(self, key: str, detail: str = "") -> None:
        """Remember that the alert behind `key` was said."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO alert_keys (key, detail, said_at) VALUES (?, ?, ?)",
                (key, detail, utcnow().isoformat()),
            )

    def unsay(self, key: str) -> None:
        """Forget `key` so that the alert may be said again."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM alert_keys WHERE key = ?", (key,))

    def said_keys(self, prefix: str) -> list[str]:
        """Every said key starting with `prefix`."""
        with self.db.reading() as db:
            rows = db.execute(
                "SELECT key FROM alert_keys WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(prefix), prefix),
            ).fetchall()
        return [str(row["key"]) for row in rows]
