"""The update journal (table `journal`): the step an update is about to take, and its data.

An update opens a journal, records each step before taking it and closes it with its outcome;
a journal left open tells the next start that the process died mid-update, and where
(bot/update/updater.py reconciles it).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from bot.errors import StoreError
from bot.store.connection import Database, utcnow


@dataclass(frozen=True)
class JournalEntry:
    """One update's journal: the last step recorded before it was taken, and its data."""

    id: int
    container: str
    step: str
    data: dict[str, Any]
    started_at: str
    finished: bool
    outcome: str | None


class Journal:
    """The `journal` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, container: str, step: str, data: dict[str, Any]) -> int:
        """Open a journal for an update of `container`; returns its id."""
        now = utcnow().isoformat()
        with self.db.transaction() as db:
            cur = db.execute(
                "INSERT INTO journal (container, step, data, started_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (container, step, json.dumps(data), now, now),
            )
            return int(cur.lastrowid or 0)

    def step(self, journal_id: int, step: str, data: dict[str, Any]) -> None:
        """Record the step about to be taken, merging `data` into what is known."""
        with self.db.transaction() as db:
            row = db.execute("SELECT data FROM journal WHERE id = ?", (journal_id,)).fetchone()
            if row is None:
                raise StoreError(f"no journal {journal_id}")
            merged = {**json.loads(row["data"]), **data}
            db.execute(
                "UPDATE journal SET step = ?, data = ?, updated_at = ? WHERE id = ?",
                (step, json.dumps(merged), utcnow().isoformat(), journal_id),
            )

    def finish(self, journal_id: int, outcome: str) -> None:
        """Close a journal with the update's outcome."""
        with self.db.transaction() as db:
            db.execute(
                "UPDATE journal SET finished = 1, outcome = ?, updated_at = ? WHERE id = ?",
                (outcome, utcnow().isoformat(), journal_id),
            )

    def unfinished(self) -> list[JournalEntry]:
        """Journals of updates that never finished (the process died mid-way)."""
        with self.db.reading() as db:
            rows = db.execute("SELECT * FROM journal WHERE finished = 0 ORDER BY id").fetchall()
        return [_entry(row) for row in rows]


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        container=row["container"],
        step=row["step"],
        data=json.loads(row["data"]),
        started_at=row["started_at"],
        finished=bool(row["finished"]),
        outcome=row["outcome"],
    )
