"""Platform-neutral chat commands: a Command in, a Reply out, behind one authorisation check.

Handlers are routed by name from a dict; each handler's docstring is its /help line. Commands that
change state (approve, pull, ignore, snooze) are for the allow-listed admins of the sender's
platform; the others for anyone in an alert chat (or an admin). Refusals are answered, logged and
recorded in the history.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from bot.chat.alert_texts import SNOOZE_BUTTON, result_alert
from bot.chat.messages import Command, Reply, Sender
from bot.chat.text_safety import safe_text
from bot.chat.throttle import Cooldown, SenderLimiter, Verdict
from bot.config.settings import Settings
from bot.domain import durations
from bot.domain.durations import YEAR
from bot.domain.model import (
    APPROVABLE_STATES,
    OPEN_STATES,
    Basis,
    CheckReport,
    CheckStatus,
    UpdateOutcome,
    UpdateResult,
    UpdateState,
    short_digest,
)
from bot.domain.policy import wait_note
from bot.errors import (
    ContainerNotFound,
    DockWardenError,
    SelfUpdateHandedOver,
    SelfUpdateRefused,
    StaleUpdate,
    StoreError,
    UpdateInProgress,
)
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.store.safety import SafetyStore
from bot.store.updates import PendingUpdate
from bot.usecases.alerting import PassSummary
from bot.usecases.delivery import AlertSink

if TYPE_CHECKING:
    from bot.update.rollback import Rollbacks

log = logging.getLogger(__name__)

PAGE_SIZE = 10
HISTORY_LINES = 15
ARG_LIMIT = 64  # characters of one argument kept in the history (strangers choose them)
DETAIL_LIMIT = 200  # characters of a refused command kept in the history
CHECK_COOLDOWN = 60.0  # seconds between passes that non-admins may start with /check


class CheckerPort(Protocol):
    """What the core needs of the checker."""

    async def check(self, names: Sequence[str] | None = None) -> CheckReport:
        """One check pass."""
        ...


class UpdaterPort(Protocol):
    """What the core needs of the updater."""

    async def update(
        self,
        name: str,
        *,
        expected_digest: str | None = None,
        actor: str | None = None,
        made_for: Basis | None = None,
    ) -> UpdateResult:
        """Pull, recreate, health-gate, roll back (StaleUpdate when `made_for` no longer holds)."""
        ...


RunPass = Callable[[Sequence[str] | None], Awaitable[PassSummary]]
Recheck = Callable[[Sequence[str]], Awaitable[object]]


class UsageError(Exception):
    """A command was sent with the wrong arguments; the message is the answer."""


# -- authorisation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authorizer:
    """Who may read and who may change state, per platform."""

    telegram_admin_ids: frozenset[int] = frozenset()
    discord_admin_ids: frozenset[int] = frozenset()
    discord_admin_role_ids: frozenset[int] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Authorizer:
        """The allow-lists of the settings."""
        return cls(
            telegram_admin_ids=frozenset(settings.telegram_admin_ids),
            discord_admin_ids=frozenset(settings.discord_admin_ids),
            discord_admin_role_ids=frozenset(settings.discord_admin_role_ids),
        )

    def is_admin(self, sender: Sender) -> bool:
        """True when `sender` may change state."""
        if sender.platform in ("console", "cli"):
            return True  # someone at the machine's own terminal
        if sender.platform == "telegram":
            return sender.user_id in self.telegram_admin_ids
        if sender.platform == "discord":
            return sender.user_id in self.discord_admin_ids or bool(
                self.discord_admin_role_ids.intersection(sender.role_ids)
            )
        return False

    def may_read(self, sender: Sender) -> bool:
        """True when `sender` may use the read-only commands."""
        return sender.in_alert_place or self.is_admin(sender)


def actor_of(sender: Sender) -> str:
    """How a sender is named in the history: `telegram:42 (alice)`."""
    return f"{sender.platform}:{sender.user_id} ({_cut(sender.display, ARG_LIMIT)})"


def _cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


SNOOZE_LIMIT = YEAR  # a longer snooze is an ignore, and unbounded ones overflow the clock


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1d`, `1h30m` -> timedelta of at most a year (raises UsageError)."""
    try:
        return durations.parse_duration(text, maximum=SNOOZE_LIMIT)
    except durations.DurationError as exc:
        raise UsageError(str(exc)) from None


# -- applying updates ----------------------------------------------------------------------------


class UpdateService:
    """The one path from an approval, a /pull, an auto policy or `dockwarden update` to the
    updater and back: record, apply, settle the pending update, announce.

    Whatever the updater or the store raise, the update is settled (`failed`, with an
    `update_failed` alert) rather than left `approved`; a settlement the store could not take
    is kept and written at the next call (or by `settle_leftovers`).
    """

    def __init__(
        self,
        store: Store,
        updater: UpdaterPort,
        sink: AlertSink,
        *,
        recheck: Recheck | None = None,
    ) -> None:
        self.store = store
        self.updater = updater
        self.sink = sink
        # Runs a fresh check of containers whose approval turned out stale (the pass runner's
        # run, set once the runner exists); without it nothing is checked again.
        self.recheck = recheck
        self._in_flight: set[asyncio.Task[object]] = set()
        self._rechecks: set[asyncio.Task[None]] = set()
        # update id -> (state, detail) the store refused to take when it was settled
        self._unsettled: dict[str, tuple[UpdateState, str]] = {}

    @property
    def in_flight(self) -> int:
        """How many updates are running now."""
        return len(self._in_flight)

    def pending(self, container: str) -> PendingUpdate | None:
        """The container's newest update that can still be approved, if any."""
        latest = self.store.latest_update(container)
        if latest is not None and latest.state in APPROVABLE_STATES:
            return latest
        return None

    async def apply(
        self,
        container: str,
        *,
        update: PendingUpdate | None,
        actor: str,
        action: str,
        digest: str | None = None,
    ) -> UpdateResult:
        """Update `container` (to the update's digest when given); record and announce it.

        With `update`, nothing changes unless the container still runs what the update was
        found for; otherwise the update is settled as superseded and the container checked
        again. Without it, the container goes to `digest` (a preview's) or to the registry's
        current digest, and its open update, if any, is settled by the result.
        """
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            return await self._apply(
                container, update=update, actor=actor, action=action, digest=digest
            )
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _apply(
        self,
        container: str,
        *,
        update: PendingUpdate | None,
        actor: str,
        action: str,
        digest: str | None,
    ) -> UpdateResult:
        self.settle_leftovers()
        expected = update.remote_digest if update else digest
        try:
            if action != "update":  # an approval is recorded by approve(); a pull or auto here
                self.store.record(action, "requested", container=container, actor=actor,
                                  detail=update.id if update else "")
            made_for = Basis(update.image, update.old_digest, update.new_tag) if update else None
            result = await self.updater.update(
                container, expected_digest=expected, actor=actor, made_for=made_for
            )
        except SelfUpdateHandedOver as exc:
            # A helper container carries it out; the bot that comes up afterwards settles the
            # update, so it stays approved (not approvable twice) until then.
            self._record(action, "handed_over", container, actor, str(exc))
            raise
        except (UpdateInProgress, ContainerNotFound, SelfUpdateRefused) as exc:
            if update is not None:  # nothing was done: the update can be approved again
                self._settle(update.id, UpdateState.PENDING, str(exc),
                             expect=(UpdateState.APPROVED,))
            self._record(action, "refused", container, actor, str(exc))
            raise
        except StaleUpdate as exc:
            return await self._superseded(container, update, actor, exc)
        except Exception as exc:  # anything at all: settled as failed, never left approved
            if not isinstance(exc, DockWardenError):
                log.exception("unexpected failure while updating %s", container)
            why = str(exc) if isinstance(exc, DockWardenError) else (
                f"unexpected {type(exc).__name__}: {exc}")
            result = UpdateResult(
                container=container,
                outcome=UpdateOutcome.FAILED,
                old_digest=update.old_digest if update else None,
                new_digest=expected,
                message=why,
            )
            # The updater records the outcome of every update it carries out; this one it
            # could not, so it is recorded here.
            self._record("update", result.outcome.value, container, actor, result.message)
        ok = result.outcome in (UpdateOutcome.UPDATED, UpdateOutcome.UP_TO_DATE)
        target = update or self._pending_quietly(container)
        if target is not None and (update is not None or ok):
            state = UpdateState.APPLIED if ok else UpdateState.FAILED
            if ok and result.new_digest and result.new_digest != target.remote_digest:
                # a /pull took a digest newer than the one alerted
                state = UpdateState.SUPERSEDED
            self._settle(target.id, state, result.message)
        update_id = target.id if target else None
        await self._announce(result, update_id, actor)
        return result

    async def _superseded(
        self, container: str, update: PendingUpdate | None, actor: str, exc: StaleUpdate
    ) -> UpdateResult:
        """The container moved on since the update was found: settle it, look again."""
        update_id = update.id if update else ""
        message = f"{exc}; update {update_id} is superseded and {container} is checked again"
        if update is not None:
            self._settle(update.id, UpdateState.SUPERSEDED, message)
        self._record("update", "superseded", container, actor, message)
        log.info("stale approval of %s: %s", container, message)
        if self.recheck is not None:
            recheck = asyncio.create_task(self._recheck(container))
            self._rechecks.add(recheck)
            recheck.add_done_callback(self._rechecks.discard)
        return UpdateResult(
            container=container,
            outcome=UpdateOutcome.FAILED,
            old_digest=exc.digest,
            new_digest=update.remote_digest if update else None,
            message=message,
        )

    async def _recheck(self, container: str) -> None:
        # A task of its own: an auto update runs inside a pass, which a new pass waits for.
        assert self.recheck is not None
        try:
            await self.recheck([container])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the fresh check of %s failed; the next pass looks again", container)

    def _pending_quietly(self, container: str) -> PendingUpdate | None:
        try:
            return self.pending(container)
        except StoreError:
            log.exception("could not read the pending update of %s", container)
            return None

    def _record(self, action: str, outcome: str, container: str, actor: str, detail: str) -> None:
        try:
            self.store.record(action, outcome, container=container, actor=actor, detail=detail)
        except StoreError:
            log.exception("could not record %s %s of %s", action, outcome, container)

    def _settle(
        self,
        update_id: str,
        state: UpdateState,
        detail: str,
        *,
        expect: tuple[UpdateState, ...] = (),
    ) -> None:
        try:
            self.store.set_update_state(update_id, state, expect=expect or None, detail=detail)
        except StoreError:
            log.exception("could not mark update %s %s; trying again later", update_id, state)
            self._unsettled[update_id] = (state, detail)

    def settle_leftovers(self) -> None:
        """Write the settlements the store refused earlier (only over an `approved` state)."""
        for update_id, (state, detail) in list(self._unsettled.items()):
            try:
                self.store.set_update_state(update_id, state, expect=(UpdateState.APPROVED,),
                                            detail=detail)
            except StoreError:
                return  # still failing: kept for the next call
            del self._unsettled[update_id]

    async def _announce(self, result: UpdateResult, update_id: str | None, actor: str) -> None:
        try:
            await self.sink.send([result_alert(result, update_id=update_id, actor=actor)])
        except DockWardenError:
            log.exception("could not announce the update of %s", result.container)

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for running updates; True when none is left."""
        if not self._in_flight:
            return True
        _, pending = await asyncio.wait(set(self._in_flight), timeout=timeout)
        return not pending

    async def stop(self, timeout: float, unwind: float = 3.0) -> bool:
        """At shutdown: let running updates finish for `timeout` seconds, then cancel them.

        Every step of an update is journalled before it is taken, so a cancelled update
        stops at a point the next start can finish or undo; the store must stay open until
        this returns. True when every update finished by itself.
        """
        for recheck in list(self._rechecks):
            recheck.cancel()
        if await self.drain(timeout):
            return True
        for task in list(self._in_flight):
            task.cancel()
        await self.drain(unwind)
        return False


# -- the router ----------------------------------------------------------------------------------

Handler = Callable[[Command], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    """One command: its handler, whether it changes state, and how it is called."""

    handler: Handler
    writes: bool
    usage: str

    @property
    def summary(self) -> str:
        """The handler's one-line docstring."""
        return (self.handler.__doc__ or "").strip().splitlines()[0]


class CommandRouter:
    """Routes neutral commands to their handlers, after authorisation."""

    def __init__(
        self,
        store: Store,
        authorizer: Authorizer,
        run_pass: RunPass,
        updates: UpdateService,
        *,
        engine_label: str = "Docker engine",
        schedule: str = "",
        pass_running: Callable[[], bool] = lambda: False,
        check_cooldown: float = CHECK_COOLDOWN,
        rollbacks: Rollbacks | None = None,
    ) -> None:
        self.store = store
        self.authorizer = authorizer
        self.run_pass = run_pass
        self.updates = updates
        self.engine_label = engine_label
        self.schedule = schedule
        self.pass_running = pass_running
        self.refusals = SenderLimiter()
        # Non-admins share one cool-down: a crowd in an alert chat cannot take turns either.
        self.open_checks = Cooldown(check_cooldown)
        self.rollbacks = rollbacks  # None where no engine is at hand (unit tests)
        self.routes: dict[str, Route] = {
            "status": Route(self.status, False, "/status"),
            "check": Route(self.check, False, "/check [name...]"),
            "updates": Route(self.list_updates, False, "/updates [page]"),
            "approve": Route(self.approve, True, "/approve <id|name>"),
            "pull": Route(self.pull, True, "/pull <name>"),
            "ignore": Route(self.ignore, True, "/ignore <id|name>"),
            "snooze": Route(self.snooze, True, "/snooze <id|name> [30m|2h|1d]"),
            "rollback": Route(self.rollback, True, "/rollback <name>"),
            "history": Route(self.history, False, "/history [name]"),
            "help": Route(self.help, False, "/help"),
        }

    async def dispatch(self, command: Command) -> Reply:
        """Answer one command (the adapters' Dispatch)."""
        name = command.name.lower().lstrip("/")
        route = self.routes.get(name)
        if route is None:
            return Reply(
                f"Unknown command /{_cut(name, 32)}. Send /help for the list.", ephemeral=True
            )
        sender = command.sender
        allowed = (
            self.authorizer.is_admin(sender) if route.writes else self.authorizer.may_read(sender)
        )
        if not allowed:
            return self._refuse(name, command, route)
        try:
            return await route.handler(command)
        except UsageError as exc:
            return Reply(f"{exc}\nUsage: {route.usage}", ephemeral=True)
        except DockWardenError as exc:
            # The text may quote an engine or a registry: only a bounded, link-free form of it.
            return Reply(f"/{name} failed: {safe_text(str(exc))}")

    async def completions(self, kind: str, prefix: str, sender: Sender) -> list[str]:
        """Autocomplete candidates ("container" names or "update" ids) for those who may read."""
        if not self.authorizer.may_read(sender):
            return []  # names and ids are for the people the read-only commands are for
        if kind == "update":
            values = [u.id for u in self.store.updates(APPROVABLE_STATES)]
        else:
            values = self.store.containers()
        return [v for v in values if v.startswith(prefix)]

    def _refuse(self, name: str, command: Command, route: Route) -> Reply:
        sender = command.sender
        what = "change anything" if route.writes else "use this bot here"
        text = (
            f"Sorry, you are not allowed to {what}: /{name} is for the people on the "
            "allow-list."
        )
        verdict, left_out = self.refusals.admit((sender.platform, sender.user_id))
        if verdict is not Verdict.RECORD:
            # Within a sender's window only the first refusal is logged and stored.
            return Reply(text, ephemeral=True, refused=True, silent=verdict is Verdict.DROP)
        actor = actor_of(sender)
        target = _cut(self._container_of(command.args[0]), ARG_LIMIT) if command.args else None
        detail = _cut(" ".join(_cut(arg, ARG_LIMIT) for arg in (f"/{name}", *command.args)),
                      DETAIL_LIMIT)
        if left_out:
            detail += f" (+{left_out} more refused, not recorded)"
        log.warning("refused %s from %s%s", detail, actor,
                    "" if left_out else " (more from them this minute are not logged)")
        self.store.record("refused", "refused", container=target, actor=actor, detail=detail)
        return Reply(f"{text} The attempt was recorded.", ephemeral=True, refused=True)

    def _container_of(self, word: str) -> str:
        update = self.store.get_update(word)
        return update.container if update else word

    def _resolve(self, word: str) -> PendingUpdate | None:
        """The update named by id, else the newest update of the container of that name."""
        return self.store.get_update(word) or self.store.latest_update(word)

    # -- read-only -------------------------------------------------------------------------------

    async def status(self, command: Command) -> Reply:
        """Engine, last pass, counts and pending updates."""
        lines = [f"Engine: {self.engine_label}"]
        if self.schedule:
            lines.append(f"Schedule: {self.schedule}")
        last = json.loads(self.store.get_meta("last_pass") or "null")
        if last is None:
            lines.append("Last pass: none yet")
        else:
            counts = last["counts"]
            lines.append(
                f"Last pass: {last['checked_at']} — {sum(counts.values())} containers: "
                f"{counts['up_to_date']} up to date, {counts['update_available']} with updates, "
                f"{counts['skipped']} skipped, {counts['error']} errors"
            )
            for registry, message in sorted(last.get("rate_limited", {}).items()):
                lines.append(f"Rate limited: {registry}: {safe_text(message)}")
        upcoming = self.store.get_meta("next_pass")
        if upcoming:
            lines.append(f"Next pass: {upcoming}")
        pending = self.store.updates(OPEN_STATES)
        lines.append(f"Pending updates: {len(pending)}")
        lines.extend(f"  {_update_line(u)}" for u in pending[:5])
        if len(pending) > 5:
            lines.append("  ... /updates lists them all")
        undelivered = len(self.store.outbox())
        if undelivered:
            lines.append(f"Undelivered alerts waiting for retry: {undelivered}")
        return Reply("\n".join(lines))

    async def check(self, command: Command) -> Reply:
        """Run a check pass now (or join the one under way); new alerts are posted as usual."""
        if not self.pass_running() and not self.authorizer.is_admin(command.sender):
            wait = self.open_checks.wait()
            if wait > 0:
                return Reply(
                    f"A check pass ran moments ago; try again in {wait:.0f}s (or see /status). "
                    "Only admins may check more often.",
                    ephemeral=True,
                )
            self.open_checks.started()
        summary = await self.run_pass(list(command.args) or None)
        counts = summary.counts()
        lines = [
            f"Checked {len(summary.report.results)} containers: {counts['up_to_date']} up to "
            f"date, {counts['update_available']} with updates, {counts['skipped']} skipped, "
            f"{counts['error']} errors; {len(summary.alerts)} new alerts."
        ]
        for result in summary.report.results:
            if result.status is CheckStatus.UPDATE_AVAILABLE:
                lines.append(f"  {result.container}: update {short_digest(result.remote_digest)}")
            elif result.status is CheckStatus.ERROR and result.error:
                lines.append(f"  {result.container}: {result.error.kind} ({result.error.registry})")
        return Reply("\n".join(lines))

    async def list_updates(self, command: Command) -> Reply:
        """Pending updates with their ids."""
        rows = self.store.updates(OPEN_STATES)
        if not rows:
            return Reply("No pending updates.")
        pages = (len(rows) + PAGE_SIZE - 1) // PAGE_SIZE
        try:
            page = int(command.args[0]) if command.args else 1
        except ValueError:
            raise UsageError(f"not a page number: {command.args[0]!r}") from None
        page = min(max(page, 1), pages)
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        lines = [f"Pending updates (page {page}/{pages}):"]
        waits = {w.update_id: w.run_at for w in SafetyStore(self.store).waits()}
        lines.extend(_update_line(u) + wait_note(waits.get(u.id)) for u in shown)
        if page < pages:
            lines.append(f"/updates {page + 1} for more")
        return Reply("\n".join(lines))

    async def history(self, command: Command) -> Reply:
        """Recent actions and their outcomes (for one container when named)."""
        container = command.args[0] if command.args else None
        entries = self.store.history(container, limit=HISTORY_LINES)
        if not entries:
            return Reply("No history yet." if container is None else f"No history for {container}.")
        lines = [
            f"{e.at[:19]} {e.action} {e.container or '-'}: {e.outcome}"
            + (f" by {e.actor}" if e.actor else "")
            + (f" — {e.detail}" if e.detail else "")
            for e in entries
        ]
        return Reply("\n".join(lines))

    async def help(self, command: Command) -> Reply:
        """This list."""
        admin = self.authorizer.is_admin(command.sender)
        lines = []
        for route in self.routes.values():
            mark = " (admins)" if route.writes else ""
            if route.writes and not admin:
                mark = " (admins only; not you)"
            lines.append(f"{route.usage} — {route.summary}{mark}")
        return Reply("\n".join(lines))

    # -- state-changing --------------------------------------------------------------------------

    async def approve(self, command: Command) -> Reply:
        """Approve an update (by id, or a container's newest) and apply it now."""
        word = _one_arg(command)
        actor = actor_of(command.sender)
        update = self._resolve(word)
        if update is None:
            return Reply(f"No update {word!r} (neither an update id nor a container with one).")
        stale = self._stale(update)
        if stale:
            self.store.record(
                "approve", "stale", container=update.container, actor=actor, detail=stale
            )
            return Reply(stale)
        if not self.store.approve_update(update.id, actor):
            return Reply(self._stale(self.store.get_update(update.id) or update) or "Not current.")
        self.store.record(
            "approve", "approved", container=update.container, actor=actor, detail=update.id
        )
        try:
            result = await self.updates.apply(
                update.container, update=update, actor=actor, action="update"
            )
        except SelfUpdateHandedOver as exc:
            return Reply(str(exc))
        except (UpdateInProgress, ContainerNotFound, SelfUpdateRefused) as exc:
            return Reply(f"Update {update.id} not started: {exc}")
        return Reply(_result_text(result, update.id))

    def _stale(self, update: PendingUpdate) -> str | None:
        """Why an update cannot be approved any more, or None."""
        if update.state is UpdateState.SUPERSEDED:
            newer = self.store.newer_update(update)
            if newer is not None and newer.state in (*APPROVABLE_STATES, UpdateState.APPROVED):
                return (
                    f"Update {update.id} for {update.container} is no longer current: a newer "
                    f"digest {short_digest(newer.remote_digest)} arrived as update {newer.id}. "
                    f"Approve that one instead."
                )
            return (
                f"Update {update.id} for {update.container} is no longer current "
                f"(the container moved on); nothing was done."
            )
        if update.state is UpdateState.APPLIED:
            return f"Update {update.id} for {update.container} was already applied."
        if update.state is UpdateState.APPROVED:
            return f"Update {update.id} for {update.container} is already being applied."
        return None

    async def pull(self, command: Command) -> Reply:
        """Update a container to its newest digest now."""
        name = _one_arg(command)
        try:
            result = await self.updates.apply(
                name, update=None, actor=actor_of(command.sender), action="pull"
            )
        except SelfUpdateHandedOver as exc:
            return Reply(str(exc))
        except (UpdateInProgress, ContainerNotFound, SelfUpdateRefused) as exc:
            return Reply(f"/pull {name} not started: {exc}")
        return Reply(_result_text(result, None))

    async def ignore(self, command: Command) -> Reply:
        """Ignore an update (by id, or a container's newest); a newer digest is alerted again."""
        word = _one_arg(command)
        update = self._resolve(word)
        if update is None or update.state not in (UpdateState.PENDING, UpdateState.FAILED):
            return Reply(f"Nothing pending to ignore for {word!r}.")
        actor = actor_of(command.sender)
        self.store.set_update_state(update.id, UpdateState.IGNORED,
                                    expect=(UpdateState.PENDING, UpdateState.FAILED))
        self.store.ignore(update.container, update.remote_digest, actor=actor)
        self.store.record(
            "ignore", "ignored", container=update.container, actor=actor,
            detail=f"{update.id} {short_digest(update.remote_digest)}",
        )
        return Reply(
            f"Ignored update {update.id} of {update.container} "
            f"({short_digest(update.remote_digest)}); a newer digest will be alerted again."
        )

    async def rollback(self, command: Command) -> Reply:
        """Put a container back on the image it ran before its last update."""
        return await _rollback(self, command)

    async def snooze(self, command: Command) -> Reply:
        """No update alerts for a container for a while (default 1d)."""
        if not command.args or len(command.args) > 2:
            raise UsageError("name a container (or an update id) and optionally a duration")
        container = self._container_of(command.args[0])
        duration = parse_duration(command.args[1] if len(command.args) > 1 else SNOOZE_BUTTON)
        until = utcnow() + duration
        actor = actor_of(command.sender)
        self.store.snooze(container, until, actor=actor)
        self.store.record(
            "snooze", "snoozed", container=container, actor=actor,
            detail=f"until {until.isoformat(timespec='minutes')}",
        )
        return Reply(f"Snoozed {container} until {until.strftime('%Y-%m-%d %H:%M UTC')}.")


async def _rollback(router: CommandRouter, command: Command) -> Reply:
    """Put a container back on the image it ran before its last update."""
    from bot.update.rollback import RollbackOutcome, rollback_alert

    name = _one_arg(command)
    if router.rollbacks is None:
        return Reply("/rollback is not available here.")
    actor = actor_of(command.sender)
    try:
        result = await router.rollbacks.rollback(name, actor=actor)
    except (UpdateInProgress, ContainerNotFound, SelfUpdateRefused) as exc:
        return Reply(f"/rollback {name} not started: {exc}")
    if result.outcome is not RollbackOutcome.NOTHING:
        try:
            await router.updates.sink.send([rollback_alert(result, actor)])
        except DockWardenError:
            log.exception("could not announce the rollback of %s", result.container)
    return Reply(f"{result.container}: {result.outcome.value}. {safe_text(result.message)}")


def _one_arg(command: Command) -> str:
    if len(command.args) != 1:
        raise UsageError(f"/{command.name} takes exactly one argument")
    return command.args[0]


def _update_line(update: PendingUpdate) -> str:
    to_tag = f" (tag {update.new_tag})" if update.new_tag else ""
    return (
        f"{update.id} {update.container} {update.image} "
        f"{short_digest(update.old_digest)} -> {short_digest(update.remote_digest)}{to_tag} "
        f"[{update.state}, {update.policy}]"
    )


def _result_text(result: UpdateResult, update_id: str | None) -> str:
    label = f" (update {update_id})" if update_id else ""
    return f"{result.container}: {result.outcome.value}{label}. {safe_text(result.message)}".strip()
