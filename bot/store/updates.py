"""Found updates (table `updates`) and who approved them (table `approvals`).

A row per (container, newer digest), known by a short random id people type in /approve.
States (bot/domain/model.py UpdateState): pending -> approved -> applied | failed;
pending -> ignored; a newer digest makes the container's pending, approved and failed rows
superseded.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from bot.domain.model import APPROVABLE_STATES, OPEN_STATES, Policy, UpdateState
from bot.errors import StoreError
from bot.store.connection import Database, utcnow

# Rows an update to the same digest leaves behind once it was applied or replaced: a rollback
# from that digest offers it again.
_SETTLED = (UpdateState.APPLIED, UpdateState.SUPERSEDED)
# Crockford's base32 without the letters people confuse (i, l, o, u).
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ID_LENGTH = 6


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
    compose: str | None = None  # PROJECT/SERVICE when Compose made the container
    stopped: bool = False  # the container was stopped when the update was found


class Updates:
    """The `updates` and `approvals` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, container: str, image: str, old_digest: str | None, remote_digest: str,
        policy: Policy, new_tag: str | None, compose: str | None = None,
        stopped: bool = False,
    ) -> tuple[PendingUpdate, bool]:
        """The update row for (container, remote_digest), created if new; (row, created).

        A new digest supersedes the container's older rows that were not applied or ignored.
        """
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT * FROM updates WHERE container = ? AND remote_digest = ?",
                (container, remote_digest),
            ).fetchone()
            if row is not None:
                return _update(row), False
            now = utcnow().isoformat()
            db.execute(
                "UPDATE updates SET state = ?, updated_at = ?"
                f" WHERE container = ? AND state IN ({_marks(OPEN_STATES)})",
                (UpdateState.SUPERSEDED, now, container, *OPEN_STATES),
            )
            update_id = _new_id(db)
            db.execute(
                "INSERT INTO updates (id, container, image, old_digest, remote_digest, policy,"
                " state, created_at, updated_at, new_tag, compose, stopped)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (update_id, container, image, old_digest, remote_digest, policy,
                 UpdateState.PENDING, now, now, new_tag, compose, int(stopped)),
            )
            row = db.execute("SELECT * FROM updates WHERE id = ?", (update_id,)).fetchone()
            return _update(row), True

    def get(self, update_id: str) -> PendingUpdate | None:
        """The update with that short id."""
        return self._one("SELECT * FROM updates WHERE id = ?", update_id.strip().lower())

    def latest(self, container: str) -> PendingUpdate | None:
        """The newest update row of `container`, whatever its state."""
        return self._one(
            "SELECT * FROM updates WHERE container = ? ORDER BY seq DESC LIMIT 1", container
        )

    def for_digest(self, container: str, digest: str) -> PendingUpdate | None:
        """The update row of `container` to `digest`, if one was found."""
        return self._one(
            "SELECT * FROM updates WHERE container = ? AND remote_digest = ?", container, digest
        )

    def containers(self) -> set[str]:
        """Every container (key) an update row names."""
        with self.db.reading() as db:
            return {row[0] for row in db.execute("SELECT DISTINCT container FROM updates")}

    def newer(self, update: PendingUpdate) -> PendingUpdate | None:
        """The newest row of the same container created after `update`, if any."""
        return self._one(
            "SELECT * FROM updates WHERE container = ? AND seq > "
            "(SELECT seq FROM updates WHERE id = ?) ORDER BY seq DESC LIMIT 1",
            update.container, update.id,
        )

    def in_states(self, states: tuple[UpdateState, ...]) -> list[PendingUpdate]:
        """Update rows in the given states, oldest first."""
        with self.db.reading() as db:
            rows = db.execute(
                f"SELECT * FROM updates WHERE state IN ({_marks(states)}) ORDER BY seq", states
            ).fetchall()
        return [_update(row) for row in rows]

    def set_state(
        self, update_id: str, state: UpdateState, expect: tuple[UpdateState, ...] | None,
        detail: str,
    ) -> bool:
        """Move an update to `state` (only from one of `expect` when given); True if it moved."""
        try:
            state = UpdateState(state)
        except ValueError:
            raise StoreError(f"unknown update state {state!r}") from None
        sql = "UPDATE updates SET state = ?, updated_at = ?, detail = ? WHERE id = ?"
        params: list[Any] = [state, utcnow().isoformat(), detail, update_id]
        if expect:
            sql += f" AND state IN ({_marks(expect)})"
            params.extend(expect)
        with self.db.transaction() as db:
            return db.execute(sql, params).rowcount > 0

    def approve(self, update_id: str, actor: str) -> bool:
        """Mark an update approved by `actor`; False when it was not approvable any more."""
        with self.db.transaction() as db:
            moved = db.execute(
                "UPDATE updates SET state = ?, updated_at = ? WHERE id = ?"
                f" AND state IN ({_marks(APPROVABLE_STATES)})",
                (UpdateState.APPROVED, utcnow().isoformat(), update_id, *APPROVABLE_STATES),
            ).rowcount
            if moved:
                db.execute(
                    "INSERT INTO approvals (update_id, actor, at) VALUES (?, ?, ?)",
                    (update_id, actor, utcnow().isoformat()),
                )
            return moved > 0

    def set_brings(self, update_id: str, brings: str) -> None:
        """Keep what the update brings (JSON from bot/check/image_info.py) with it."""
        with self.db.transaction() as db:
            db.execute("UPDATE updates SET brings = ? WHERE id = ?", (brings, update_id))

    def reopen_interrupted(self) -> list[PendingUpdate]:
        """At start: updates left `approved` by a process that died return to `pending`.

        The updater's reconcile has finished or undone the interrupted attempt; the approval
        stays recorded, and the update can be approved again (or is settled by the next pass
        when the container turns out to run that digest).
        """
        with self.db.transaction() as db:
            rows = db.execute(
                "SELECT * FROM updates WHERE state = ?", (UpdateState.APPROVED,)
            ).fetchall()
            db.execute(
                "UPDATE updates SET state = ?, updated_at = ?,"
                " detail = 'interrupted by a restart' WHERE state = ?",
                (UpdateState.PENDING, utcnow().isoformat(), UpdateState.APPROVED),
            )
        return [_update(row) for row in rows]

    def reopen_rolled_back(self, container: str, digest: str) -> None:
        """The update to `digest` is pending again: it was applied, then rolled back."""
        with self.db.transaction() as db:
            db.execute(
                "UPDATE updates SET state = ?, updated_at = ?, detail = 'rolled back'"
                f" WHERE container = ? AND remote_digest = ? AND state IN ({_marks(_SETTLED)})",
                (UpdateState.PENDING, utcnow().isoformat(), container, digest, *_SETTLED),
            )

    def _one(self, sql: str, *params: str) -> PendingUpdate | None:
        with self.db.reading() as db:
            row = db.execute(sql, params).fetchone()
        return None if row is None else _update(row)


def _marks(values: tuple[object, ...]) -> str:
    """One `?` per value, for `IN (...)`."""
    return ",".join("?" for _ in values)


def _new_id(db: sqlite3.Connection) -> str:
    # Random rather than a counter: a button left over from a wiped database never lands on
    # an unrelated update.
    while True:
        candidate = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
        if db.execute("SELECT 1 FROM updates WHERE id = ?", (candidate,)).fetchone() is None:
            return candidate


def _update(row: sqlite3.Row) -> PendingUpdate:
    data = dict(row)
    data.pop("seq", None)
    data["policy"], data["state"] = Policy(data["policy"]), UpdateState(data["state"])
    data["stopped"] = bool(data.get("stopped"))
    return PendingUpdate(**data)
