"""SQLite store: seen digests, pending updates, approvals, ignores, history, update journal.

One file (`DOCKWARDEN_DB`), versioned with `PRAGMA user_version`: each entry of MIGRATIONS
moves the schema one version on, so an old file is migrated in place at start.
Calls are short and synchronous; SQLite in WAL mode keeps them well under a millisecond.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # version 1
    """
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        container TEXT NOT NULL,
        step TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished INTEGER NOT NULL DEFAULT 0,
        outcome TEXT
    );
    CREATE INDEX journal_open ON journal (finished);
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        container TEXT,
        action TEXT NOT NULL,
        actor TEXT,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX history_container ON history (container, id);
    """,
)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


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


class Store:
    """The SQLite file behind DockWarden's state; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} was written by a newer DockWarden (schema {version}); "
                f"this one knows up to {len(MIGRATIONS)}"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction() as db:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically (BEGIN IMMEDIATE ... COMMIT)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- update journal ------------------------------------------------------------------------

    def journal_begin(self, container: str, step: str, data: dict[str, Any]) -> int:
        """Open a journal for an update of `container`; returns its id."""
        now = utcnow().isoformat()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO journal (container, step, data, started_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (container, step, json.dumps(data), now, now),
            )
            return int(cur.lastrowid or 0)

    def journal_step(self, journal_id: int, step: str, **data: Any) -> None:
        """Record the step about to be taken, merging `data` into what is known."""
        with self.transaction() as db:
            row = db.execute("SELECT data FROM journal WHERE id = ?", (journal_id,)).fetchone()
            if row is None:
                raise StoreError(f"no journal {journal_id}")
            merged = {**json.loads(row["data"]), **data}
            db.execute(
                "UPDATE journal SET step = ?, data = ?, updated_at = ? WHERE id = ?",
                (step, json.dumps(merged), utcnow().isoformat(), journal_id),
            )

    def journal_finish(self, journal_id: int, outcome: str) -> None:
        """Close a journal with the update's outcome."""
        with self.transaction() as db:
            db.execute(
                "UPDATE journal SET finished = 1, outcome = ?, updated_at = ? WHERE id = ?",
                (outcome, utcnow().isoformat(), journal_id),
            )

    def journal_open(self) -> list[JournalEntry]:
        """Journals of updates that never finished (the process died mid-way)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM journal WHERE finished = 0 ORDER BY id"
            ).fetchall()
        return [_journal(row) for row in rows]

    # -- history -------------------------------------------------------------------------------

    def record(
        self,
        action: str,
        outcome: str,
        *,
        container: str | None = None,
        actor: str | None = None,
        detail: str = "",
    ) -> int:
        """Append one action and its outcome to the history."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO history (at, container, action, actor, outcome, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (utcnow().isoformat(), container, action, actor, outcome, detail),
            )
            return int(cur.lastrowid or 0)

    def history(self, container: str | None = None, limit: int = 20) -> list[HistoryEntry]:
        """The newest history entries, for one container or all."""
        with self._lock:
            if container is None:
                rows = self._db.execute(
                    "SELECT * FROM history ORDER BY id DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM history WHERE container = ? ORDER BY id DESC LIMIT ?",
                    (container, limit),
                ).fetchall()
        return [HistoryEntry(**dict(row)) for row in rows]


def _journal(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        container=row["container"],
        step=row["step"],
        data=json.loads(row["data"]),
        started_at=row["started_at"],
        finished=bool(row["finished"]),
        outcome=row["outcome"],
    )
