"""SQLite store: seen digests, pending updates, approvals, ignores, history, update journal.

One file (`DOCKWARDEN_DB`), versioned with `PRAGMA user_version`: each entry of MIGRATIONS
moves the schema one version on, so an old file is migrated in place at start.
Calls are short and synchronous; SQLite in WAL mode keeps them well under a millisecond.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.domain.model import APPROVABLE_STATES, Policy, UpdateState
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
    # version 2: the bot's state
    """
    CREATE TABLE seen_digests (
        container TEXT PRIMARY KEY,
        image TEXT NOT NULL,
        remote_digest TEXT NOT NULL,
        seen_at TEXT NOT NULL
    );
    CREATE TABLE updates (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        container TEXT NOT NULL,
        image TEXT NOT NULL,
        old_digest TEXT,
        remote_digest TEXT NOT NULL,
        policy TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        UNIQUE (container, remote_digest)
    );
    CREATE INDEX updates_state ON updates (state, seq);
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        update_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX approvals_update ON approvals (update_id);
    CREATE TABLE ignores (
        container TEXT NOT NULL,
        digest TEXT NOT NULL DEFAULT '',
        actor TEXT,
        at TEXT NOT NULL,
        PRIMARY KEY (container, digest)
    );
    CREATE TABLE snoozes (
        container TEXT PRIMARY KEY,
        until TEXT NOT NULL,
        actor TEXT,
        at TEXT NOT NULL
    );
    CREATE TABLE alert_keys (
        key TEXT PRIMARY KEY,
        detail TEXT NOT NULL DEFAULT '',
        said_at TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        adapter TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # version 3: safer automation (bot/store/safety.py reads and writes these)
    """
    CREATE TABLE previous_images (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        container TEXT NOT NULL,
        image TEXT NOT NULL,
        old_image_id TEXT NOT NULL,
        old_digest TEXT,
        new_image_id TEXT NOT NULL,
        new_digest TEXT,
        updated_at TEXT NOT NULL,
        keep_until TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'kept'
    );
    CREATE INDEX previous_images_container ON previous_images (container, state, id);
    CREATE TABLE rolled_back_digests (
        container TEXT NOT NULL,
        digest TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (container, digest)
    );
    CREATE TABLE digests_first_seen (
        container TEXT NOT NULL,
        digest TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (container, digest)
    );
    CREATE TABLE auto_waits (
        update_id TEXT PRIMARY KEY,
        container TEXT NOT NULL,
        run_at TEXT NOT NULL
    );
    """,
    # version 4: newer version tags and what an update brings (bot/check/image_info.py)
    """
    ALTER TABLE updates ADD COLUMN new_tag TEXT;
    ALTER TABLE updates ADD COLUMN brings TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE image_configs (
        digest TEXT PRIMARY KEY,
        info TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    );
    """,
)

# Crockford's base32 without the letters people confuse (i, l, o, u).
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ID_LENGTH = 6


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


@dataclass(frozen=True)
class PendingUpdate:
    """A newer digest for one container, known by a short id people can type."""

    id: str
    container: str
    image: str
    old_digest: str | None
    remote_digest: str
    policy: Policy
    state: UpdateState
    created_at: str
    updated_at: str
    detail: str
    new_tag: str | None = None  # a newer version tag: the update moves the container to it
    brings: str = "{}"  # JSON: what the new image says about itself (bot/check/image_info.py)

    @property
    def is_current(self) -> bool:
        """True while it can still be approved (not superseded, not applied)."""
        return self.state in APPROVABLE_STATES


@dataclass(frozen=True)
class Approval:
    """Who approved an update, and when."""

    update_id: str
    actor: str
    at: str


@dataclass(frozen=True)
class OutboxItem:
    """An alert one adapter could not deliver yet (kept to retry at the next pass)."""

    id: int
    adapter: str
    payload: str
    attempts: int


class Store:
    """The SQLite file behind DockWarden's state; safe to share between threads."""

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
        with self._reading() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock, any sqlite3 error raised as StoreError."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

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
        with self._reading():
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
        with self._reading():
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


    # -- seen digests ------------------------------------------------------------------------

    def seen_digest(self, container: str) -> str | None:
        """The remote digest last seen for `container`, if any."""
        with self._reading():
            row = self._db.execute(
                "SELECT remote_digest FROM seen_digests WHERE container = ?", (container,)
            ).fetchone()
        return None if row is None else str(row["remote_digest"])

    def set_seen_digest(self, container: str, image: str, digest: str) -> None:
        """Remember the remote digest seen for `container` (when it changed)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO seen_digests (container, image, remote_digest, seen_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (container) DO UPDATE SET"
                " image = excluded.image, remote_digest = excluded.remote_digest,"
                " seen_at = excluded.seen_at"
                " WHERE remote_digest != excluded.remote_digest OR image != excluded.image",
                (container, image, digest, utcnow().isoformat()),
            )

    def containers(self) -> list[str]:
        """Names of the containers seen with a remote digest, sorted."""
        with self._reading():
            rows = self._db.execute(
                "SELECT container FROM seen_digests ORDER BY container"
            ).fetchall()
        return [str(row["container"]) for row in rows]

    # -- pending updates -----------------------------------------------------------------------

    def add_update(
        self,
        container: str,
        image: str,
        old_digest: str | None,
        remote_digest: str,
        policy: Policy,
        new_tag: str | None = None,
    ) -> tuple[PendingUpdate, bool]:
        """The update row for (container, remote_digest), created if new; (row, created).

        A new digest supersedes the container's older rows that were not applied or ignored.
        """
        with self.transaction() as db:
            row = db.execute(
                "SELECT * FROM updates WHERE container = ? AND remote_digest = ?",
                (container, remote_digest),
            ).fetchone()
            if row is not None:
                return _update(row), False
            now = utcnow().isoformat()
            db.execute(
                "UPDATE updates SET state = 'superseded', updated_at = ?"
                " WHERE container = ? AND state IN ('pending', 'approved', 'failed')",
                (now, container),
            )
            update_id = self._new_update_id(db)
            db.execute(
                "INSERT INTO updates (id, container, image, old_digest, remote_digest, policy,"
                " state, created_at, updated_at, new_tag)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (update_id, container, image, old_digest, remote_digest, policy, now, now,
                 new_tag),
            )
            row = db.execute("SELECT * FROM updates WHERE id = ?", (update_id,)).fetchone()
            return _update(row), True

    @staticmethod
    def _new_update_id(db: sqlite3.Connection) -> str:
        # Random rather than a counter: a button left over from a wiped database never
        # lands on an unrelated update.
        while True:
            candidate = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
            if db.execute("SELECT 1 FROM updates WHERE id = ?", (candidate,)).fetchone() is None:
                return candidate

    def get_update(self, update_id: str) -> PendingUpdate | None:
        """The update with that short id."""
        with self._reading():
            row = self._db.execute(
                "SELECT * FROM updates WHERE id = ?", (update_id.strip().lower(),)
            ).fetchone()
        return None if row is None else _update(row)

    def latest_update(self, container: str) -> PendingUpdate | None:
        """The newest update row of `container`, whatever its state."""
        with self._reading():
            row = self._db.execute(
                "SELECT * FROM updates WHERE container = ? ORDER BY seq DESC LIMIT 1",
                (container,),
            ).fetchone()
        return None if row is None else _update(row)

    def newer_update(self, update: PendingUpdate) -> PendingUpdate | None:
        """The newest row of the same container created after `update`, if any."""
        with self._reading():
            row = self._db.execute(
                "SELECT * FROM updates WHERE container = ? AND seq > "
                "(SELECT seq FROM updates WHERE id = ?) ORDER BY seq DESC LIMIT 1",
                (update.container, update.id),
            ).fetchone()
        return None if row is None else _update(row)

    def updates(
        self, states: tuple[UpdateState, ...] = (UpdateState.PENDING,)
    ) -> list[PendingUpdate]:
        """Update rows in the given states, oldest first."""
        marks = ",".join("?" for _ in states)
        with self._reading():
            rows = self._db.execute(
                f"SELECT * FROM updates WHERE state IN ({marks}) ORDER BY seq", states
            ).fetchall()
        return [_update(row) for row in rows]

    def set_update_state(
        self,
        update_id: str,
        state: UpdateState,
        *,
        expect: tuple[UpdateState, ...] | None = None,
        detail: str = "",
    ) -> bool:
        """Move an update to `state` (only from one of `expect` when given); True if it moved."""
        try:
            state = UpdateState(state)
        except ValueError:
            raise StoreError(f"unknown update state {state!r}") from None
        sql = "UPDATE updates SET state = ?, updated_at = ?, detail = ? WHERE id = ?"
        params: list[Any] = [state, utcnow().isoformat(), detail, update_id]
        if expect:
            sql += f" AND state IN ({','.join('?' for _ in expect)})"
            params.extend(expect)
        with self.transaction() as db:
            return db.execute(sql, params).rowcount > 0

    def approve_update(self, update_id: str, actor: str) -> bool:
        """Mark an update approved by `actor`; False when it was not approvable any more."""
        with self.transaction() as db:
            moved = db.execute(
                "UPDATE updates SET state = 'approved', updated_at = ? WHERE id = ?"
                " AND state IN ('pending', 'ignored', 'failed')",
                (utcnow().isoformat(), update_id),
            ).rowcount
            if moved:
                db.execute(
                    "INSERT INTO approvals (update_id, actor, at) VALUES (?, ?, ?)",
                    (update_id, actor, utcnow().isoformat()),
                )
            return moved > 0

    def reopen_interrupted(self) -> list[PendingUpdate]:
        """At start: updates left `approved` by a process that died return to `pending`.

        The updater's reconcile has finished or undone the interrupted attempt; the approval
        stays recorded, and the update can be approved again (or is settled by the next pass
        when the container turns out to run that digest).
        """
        with self.transaction() as db:
            rows = db.execute("SELECT * FROM updates WHERE state = 'approved'").fetchall()
            db.execute(
                "UPDATE updates SET state = 'pending', updated_at = ?,"
                " detail = 'interrupted by a restart' WHERE state = 'approved'",
                (utcnow().isoformat(),),
            )
        return [_update(row) for row in rows]

    def approvals(self, update_id: str) -> list[Approval]:
        """Who approved that update, oldest first."""
        with self._reading():
            rows = self._db.execute(
                "SELECT update_id, actor, at FROM approvals WHERE update_id = ? ORDER BY id",
                (update_id,),
            ).fetchall()
        return [Approval(**dict(row)) for row in rows]

    # -- ignores and snoozes ---------------------------------------------------------------------

    def ignore(
        self, container: str, digest: str | None = None, *, actor: str | None = None
    ) -> None:
        """Stop alerting about `container` (only about `digest` when given)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO ignores (container, digest, actor, at) VALUES (?, ?, ?, ?)",
                (container, digest or "", actor, utcnow().isoformat()),
            )

    def unignore(self, container: str) -> None:
        """Forget every ignore of `container`."""
        with self.transaction() as db:
            db.execute("DELETE FROM ignores WHERE container = ?", (container,))

    def is_ignored(self, container: str, digest: str | None = None) -> bool:
        """True when `container` (or that digest of it) is ignored."""
        with self._reading():
            row = self._db.execute(
                "SELECT 1 FROM ignores WHERE container = ? AND digest IN ('', ?)",
                (container, digest or ""),
            ).fetchone()
        return row is not None

    def snooze(self, container: str, until: datetime, *, actor: str | None = None) -> None:
        """No update alerts for `container` until `until`."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO snoozes (container, until, actor, at) VALUES (?, ?, ?, ?)",
                (container, until.astimezone(UTC).isoformat(), actor, utcnow().isoformat()),
            )

    def snoozed_until(self, container: str, now: datetime | None = None) -> datetime | None:
        """When the snooze of `container` ends, if it is snoozed at `now`."""
        with self._reading():
            row = self._db.execute(
                "SELECT until FROM snoozes WHERE container = ?", (container,)
            ).fetchone()
        if row is None:
            return None
        until = datetime.fromisoformat(row["until"])
        return until if until > (now or utcnow()) else None

    # -- alert dedup -----------------------------------------------------------------------------

    def was_said(self, key: str) -> bool:
        """True when the alert behind `key` was already said."""
        with self._reading():
            row = self._db.execute("SELECT 1 FROM alert_keys WHERE key = ?", (key,)).fetchone()
        return row is not None

    def mark_said(self, key: str, detail: str = "") -> None:
        """Remember that the alert behind `key` was said."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO alert_keys (key, detail, said_at) VALUES (?, ?, ?)",
                (key, detail, utcnow().isoformat()),
            )

    def unsay(self, key: str) -> None:
        """Forget `key` so that the alert may be said again."""
        with self.transaction() as db:
            db.execute("DELETE FROM alert_keys WHERE key = ?", (key,))

    def said_keys(self, prefix: str) -> list[str]:
        """Every said key starting with `prefix`."""
        with self._reading():
            rows = self._db.execute(
                "SELECT key FROM alert_keys WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(prefix), prefix),
            ).fetchall()
        return [str(row["key"]) for row in rows]

    # -- outbox ----------------------------------------------------------------------------------

    def outbox_add(self, adapter: str, payload: str, error: str = "", attempts: int = 1) -> int:
        """Keep an alert for `adapter` until it is delivered."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO outbox (adapter, payload, created_at, attempts, last_error)"
                " VALUES (?, ?, ?, ?, ?)",
                (adapter, payload, utcnow().isoformat(), attempts, error),
            )
            return int(cur.lastrowid or 0)

    def outbox(self, adapter: str | None = None) -> list[OutboxItem]:
        """Undelivered alerts (of one adapter or all), oldest first."""
        with self._reading():
            if adapter is None:
                rows = self._db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM outbox WHERE adapter = ? ORDER BY id", (adapter,)
                ).fetchall()
        return [
            OutboxItem(id=r["id"], adapter=r["adapter"], payload=r["payload"],
                       attempts=r["attempts"])
            for r in rows
        ]

    def outbox_done(self, *item_ids: int) -> None:
        """Drop delivered alerts from the outbox."""
        with self.transaction() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in item_ids])

    def outbox_failed(self, item_id: int, error: str) -> None:
        """Count one more failed delivery of an outbox alert."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, item_id),
            )

    # -- small values ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A small stored value (last pass summary, ...)."""
        with self._reading():
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Store a small value."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- retention -------------------------------------------------------------------------------

    def prune_history(self, before: datetime) -> int:
        """Delete history entries older than `before`; returns how many went."""
        with self.transaction() as db:
            # `at` is written by utcnow().isoformat(): same format, so text order is time order.
            cutoff = before.astimezone(UTC).isoformat()
            cur = db.execute("DELETE FROM history WHERE at < ?", (cutoff,))
            return int(cur.rowcount or 0)


def _update(row: sqlite3.Row) -> PendingUpdate:
    data = dict(row)
    data.pop("seq", None)
    data["policy"], data["state"] = Policy(data["policy"]), UpdateState(data["state"])
    return PendingUpdate(**data)


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
