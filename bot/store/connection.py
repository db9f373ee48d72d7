"""The SQLite file under the store: opening it, migrating it, and the only place where a
sqlite3 error becomes a StoreError.

One file (`DOCKWARDEN_DB`) in WAL mode, versioned with `PRAGMA user_version`: opening it runs
the entries of MIGRATIONS (bot/store/schema.py) it has not run yet. Calls are short and
synchronous; WAL keeps them well under a millisecond. The per-table modules beside this one
reach the file only through `reading()` and `transaction()`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bot.errors import StoreError
from bot.store.schema import MIGRATIONS


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the store's timestamps are its isoformat())."""
    return datetime.now(UTC)


class Database:
    """One open SQLite file, migrated to the newest schema; safe to share between threads."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self.closed = False
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the database {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the file (waits for a call under way; later calls raise StoreError)."""
        with self._lock:
            self.closed = True
            self._db.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self.reading() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock, any sqlite3 error raised as StoreError."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically (BEGIN IMMEDIATE ... COMMIT); nested calls join the outer."""
        # Every sqlite3 error ("database is locked", "database or disk is full", a closed
        # file) leaves as StoreError: callers undo their work on DockWardenError, never on a
        # driver's own exception types.
        with self._lock:
            try:
                if self._db.in_transaction:
                    # Joined: a pass records hundreds of small facts in one commit (one fsync).
                    yield self._db
                    return
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT leaves the transaction open: every later call would join
                    # it and nothing would be written again.
                    self._abort()
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

    def _abort(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the error that got us here is the one worth raising

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
