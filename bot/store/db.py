"""The Store: the one object the bot holds for its state, and the names it asks it by.

It is the open file (bot/store/connection.py: migrations, transactions, StoreError) and hands
each call to the module that owns the table: journal.py, history.py, updates.py (and
approvals), silences.py (ignores, snoozes), seen.py, alert_keys.py, outbox.py, meta.py (the
last and next pass) and image_configs.py. safety.py (rollback records, blocked digests, first
sightings, window waits) is used beside it: `SafetyStore(store)`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from bot.domain.model import Policy, UpdateState
from bot.store.alert_keys import AlertKeys
from bot.store.connection import Database, utcnow
from bot.store.history import History, HistoryEntry
from bot.store.image_configs import ImageConfigs
from bot.store.journal import Journal, JournalEntry
from bot.store.meta import LastPass, Meta
from bot.store.outbox import Outbox, OutboxItem
from bot.store.seen import SeenDigests
from bot.store.silences import Silences
from bot.store.updates import PendingUpdate, Updates


class Store(Database):
    """DockWarden's SQLite file and its tables; safe to share between threads."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        super().__init__(path, busy_timeout=busy_timeout)
        self._journal = Journal(self)
        self._history = History(self)
        self._updates = Updates(self)
        self._silences = Silences(self)
        self._seen = SeenDigests(self)
        self._alert_keys = AlertKeys(self)
        self._outbox = Outbox(self)
        self._meta = Meta(self)
        self._image_configs = ImageConfigs(self)

    # -- update journal (journal.py) -------------------------------------------------------------

    def journal_begin(self, container: str, step: str, data: dict[str, Any]) -> int:
        """Open a journal for an update of `container`; returns its id."""
        return self._journal.begin(container, step, data)

    def journal_step(self, journal_id: int, step: str, **data: Any) -> None:
        """Record the step about to be taken, merging `data` into what is known."""
        self._journal.step(journal_id, step, data)

    def journal_finish(self, journal_id: int, outcome: str) -> None:
        """Close a journal with the update's outcome."""
        self._journal.finish(journal_id, outcome)

    def journal_open(self) -> list[JournalEntry]:
        """Journals of updates that never finished (the process died mid-way)."""
        return self._journal.unfinished()

    # -- history (history.py) --------------------------------------------------------------------

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
        return self._history.record(action, outcome, container, actor, detail)

    def history(self, container: str | None = None, limit: int = 20) -> list[HistoryEntry]:
        """The newest history entries, for one container or all."""
        return self._history.newest(container, limit)

    def known_containers(self) -> set[str]:
        """Every container key the updates and the history name (to resolve a bare name)."""
        return self._updates.containers() | self._history.containers()

    def prune_history(self, before: datetime) -> int:
        """Delete history entries older than `before`; returns how many went."""
        return self._history.prune(before)

    # -- found updates and approvals (updates.py) ------------------------------------------------

    def add_update(
        self,
        container: str,
        image: str,
        old_digest: str | None,
        remote_digest: str,
        policy: Policy,
        new_tag: str | None = None,
        compose: str | None = None,
        stopped: bool = False,
    ) -> tuple[PendingUpdate, bool]:
        """The update row for (container, remote_digest), created if new; (row, created)."""
        return self._updates.add(container, image, old_digest, remote_digest, policy, new_tag,
                                 compose, stopped)

    def get_update(self, update_id: str) -> PendingUpdate | None:
        """The update with that short id."""
        return self._updates.get(update_id)

    def latest_update(self, container: str) -> PendingUpdate | None:
        """The newest update row of `container`, whatever its state."""
        return self._updates.latest(container)

    def newer_update(self, update: PendingUpdate) -> PendingUpdate | None:
        """The newest row of the same container created after `update`, if any."""
        return self._updates.newer(update)

    def updates(
        self, states: tuple[UpdateState, ...] = (UpdateState.PENDING,)
    ) -> list[PendingUpdate]:
        """Update rows in the given states, oldest first."""
        return self._updates.in_states(states)

    def set_update_state(
        self,
        update_id: str,
        state: UpdateState,
        *,
        expect: tuple[UpdateState, ...] | None = None,
        detail: str = "",
    ) -> bool:
        """Move an update to `state` (only from one of `expect` when given); True if it moved."""
        return self._updates.set_state(update_id, state, expect, detail)

    def approve_update(self, update_id: str, actor: str) -> bool:
        """Mark an update approved by `actor`; False when it was not approvable any more."""
        return self._updates.approve(update_id, actor)

    def reopen_interrupted(self) -> list[PendingUpdate]:
        """At start: updates left `approved` by a process that died return to `pending`."""
        return self._updates.reopen_interrupted()

    def set_update_brings(self, update_id: str, brings: str) -> None:
        """Keep what the update brings (JSON from bot/check/image_info.py) with it."""
        self._updates.set_brings(update_id, brings)

    # -- ignores and snoozes (silences.py) -------------------------------------------------------

    def ignore(
        self, container: str, digest: str | None = None, *, actor: str | None = None
    ) -> None:
        """Stop alerting about `container` (only about `digest` when given)."""
        self._silences.ignore(container, digest, actor=actor)

    def is_ignored(self, container: str, digest: str | None = None) -> bool:
        """True when `container` (or that digest of it) is ignored."""
        return self._silences.is_ignored(container, digest)

    def snooze(self, container: str, until: datetime, *, actor: str | None = None) -> None:
        """No update alerts for `container` until `until`."""
        self._silences.snooze(container, until, actor=actor)

    def snoozed_until(self, container: str, now: datetime | None = None) -> datetime | None:
        """When the snooze of `container` ends, if it is snoozed at `now`."""
        return self._silences.snoozed_until(container, now or utcnow())

    # -- seen digests (seen.py) ------------------------------------------------------------------

    def set_seen_digest(self, container: str, image: str, digest: str) -> None:
        """Remember the remote digest seen for `container` (when it changed)."""
        self._seen.remember(container, image, digest)

    def seen_running(self, image: str) -> dict[str, str]:
        """The containers last seen on `image`, each with the remote digest seen for it."""
        return self._seen.running(image)

    def update_to(self, container: str, digest: str) -> PendingUpdate | None:
        """The update row of `container` to `digest`, if one was found."""
        return self._updates.for_digest(container, digest)

    def containers(self) -> list[str]:
        """Names of the containers seen with a remote digest, sorted."""
        return self._seen.containers()

    # -- alert dedup (alert_keys.py) -------------------------------------------------------------

    def was_said(self, key: str) -> bool:
        """True when the alert behind `key` was already said."""
        return self._alert_keys.was_said(key)

    def mark_said(self, key: str, detail: str = "") -> None:
        """Remember that the alert behind `key` was said."""
        self._alert_keys.mark_said(key, detail)

    def unsay(self, key: str) -> None:
        """Forget `key` so that the alert may be said again."""
        self._alert_keys.unsay(key)

    def said_keys(self, prefix: str) -> list[str]:
        """Every said key starting with `prefix`."""
        return self._alert_keys.said_keys(prefix)

    # -- outbox (outbox.py) ----------------------------------------------------------------------

    def outbox_add(self, adapter: str, payload: str, error: str = "", attempts: int = 1) -> int:
        """Keep an alert for `adapter` until it is delivered."""
        return self._outbox.add(adapter, payload, error, attempts)

    def outbox(self, adapter: str | None = None) -> list[OutboxItem]:
        """Undelivered alerts (of one adapter or all), oldest first."""
        return self._outbox.items(adapter)

    def outbox_done(self, *item_ids: int) -> None:
        """Drop delivered alerts from the outbox."""
        self._outbox.done(item_ids)

    def outbox_failed(self, item_id: int, error: str) -> None:
        """Count one more failed delivery of an outbox alert."""
        self._outbox.failed(item_id, error)

    # -- small values (meta.py) ------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A small stored value (the self-update record)."""
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        """Store a small value."""
        self._meta.set(key, value)

    def last_pass(self) -> LastPass | None:
        """The snapshot of the last check pass, if one ran."""
        return self._meta.last_pass()

    def set_last_pass(self, last: LastPass) -> None:
        """Keep the snapshot of the pass that just ran."""
        self._meta.set_last_pass(last)

    def next_pass(self) -> datetime | None:
        """When the next scheduled pass starts, as the scheduler last said."""
        return self._meta.next_pass()

    def set_next_pass(self, at: datetime) -> None:
        """Keep when the next scheduled pass starts."""
        self._meta.set_next_pass(at)

    # -- image configs (image_configs.py) --------------------------------------------------------

    def image_config(self, digest: str) -> str | None:
        """What was kept of that digest's config (JSON), if anything."""
        return self._image_configs.get(digest)

    def keep_image_config(self, digest: str, info: str) -> None:
        """Keep what the digest's config says (JSON)."""
        self._image_configs.keep(digest, info)
