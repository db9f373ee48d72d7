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
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.alerts import SNOOZE_BUTTON, AlertSink, PassSummary, result_alert
from bot.chat import Command, Reply, Sender
from bot.config import Settings
from bot.domain import CheckReport, CheckStatus, UpdateOutcome, UpdateResult, short_digest
from bot.errors import ContainerNotFound, DockWardenError, SelfUpdateRefused, UpdateInProgress
from bot.store import PendingUpdate, Store, utcnow

log = logging.getLogger(__name__)

PAGE_SIZE = 10
HISTORY_LINES = 15


class CheckerPort(Protocol):
    """What the core needs of the checker."""

    async def check(self, names: Sequence[str] | None = None) -> CheckReport:
        """One check pass."""
        ...


class UpdaterPort(Protocol):
    """What the core needs of the updater."""

    async def update(
        self, name: str, *, expected_digest: str | None = None, actor: str | None = None
    ) -> UpdateResult:
        """Pull, recreate, health-gate, roll back."""
        ...


RunPass = Callable[[Sequence[str] | None], Awaitable[PassSummary]]


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
    return f"{sender.platform}:{sender.user_id} ({sender.display})"


_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1d`, `1h30m` -> timedelta (raises UsageError)."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or not parts or _DURATION.sub("", compact).strip():
        raise UsageError(f"not a duration: {text!r} (try 30m, 2h, 1d or 1w)")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in parts)
    if seconds <= 0:
        raise UsageError("a snooze must last longer than zero")
    return timedelta(seconds=seconds)


# -- applying updates ----------------------------------------------------------------------------


class UpdateService:
    """The one path from an approval, a /pull or an auto policy to the updater and back."""

    def __init__(self, store: Store, updater: UpdaterPort, sink: AlertSink) -> None:
        self.store = store
        self.updater = updater
        self.sink = sink
        self._in_flight: set[asyncio.Task[object]] = set()

    @property
    def in_flight(self) -> int:
        """How many updates are running now."""
        return len(self._in_flight)

    async def apply(
        self, container: str, *, update: PendingUpdate | None, actor: str, action: str
    ) -> UpdateResult:
        """Update `container` (to the update's digest when given); record and announce it."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            return await self._apply(container, update=update, actor=actor, action=action)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _apply(
        self, container: str, *, update: PendingUpdate | None, actor: str, action: str
    ) -> UpdateResult:
        expected = update.remote_digest if update else None
        if action != "update":  # an approval is recorded by approve(); a pull or auto here
            self.store.record(action, "requested", container=container, actor=actor,
                              detail=update.id if update else "")
        try:
            result = await self.updater.update(container, expected_digest=expected, actor=actor)
        except (UpdateInProgress, ContainerNotFound, SelfUpdateRefused) as exc:
            if update is not None:  # nothing was done: the update can be approved again
                self.store.set_update_state(update.id, "pending", expect=("approved",))
            self.store.record(action, "refused", container=container, actor=actor, detail=str(exc))
            raise
        except DockWardenError as exc:
            result = UpdateResult(
                container=container,
                outcome=UpdateOutcome.FAILED,
                old_digest=update.old_digest if update else None,
                new_digest=expected,
                message=str(exc),
            )
            # The updater records the outcome of every update it carries out; this one it
            # could not, so it is recorded here.
            self.store.record(
                "update", result.outcome.value, container=container, actor=actor,
                detail=result.message,
            )
        ok = result.outcome in (UpdateOutcome.UPDATED, UpdateOutcome.UP_TO_DATE)
        target = update or self._open_update(container)
        if target is not None and (update is not None or ok):
            state = "applied" if ok else "failed"
            if ok and result.new_digest and result.new_digest != target.remote_digest:
                state = "superseded"  # a /pull took a digest newer than the one alerted
            self.store.set_update_state(target.id, state, detail=result.message)
        update_id = target.id if target else None
        await self.sink.send([result_alert(result, update_id=update_id, actor=actor)])
        return result

    def _open_update(self, container: str) -> PendingUpdate | None:
        latest = self.store.latest_update(container)
        if latest is not None and latest.state in ("pending", "failed", "ignored"):
            return latest
        return None

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for running updates; True when none is left."""
        if not self._in_flight:
            return True
        _, pending = await asyncio.wait(set(self._in_flight), timeout=timeout)
        return not pending


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
    ) -> None:
        self.store = store
        self.authorizer = authorizer
        self.run_pass = run_pass
        self.updates = updates
        self.engine_label = engine_label
        self.schedule = schedule
        self.routes: dict[str, Route] = {
            "status": Route(self.status, False, "/status"),
            "check": Route(self.check, False, "/check [name...]"),
            "updates": Route(self.list_updates, False, "/updates [page]"),
            "approve": Route(self.approve, True, "/approve <id|name>"),
            "pull": Route(self.pull, True, "/pull <name>"),
            "ignore": Route(self.ignore, True, "/ignore <id|name>"),
            "snooze": Route(self.snooze, True, "/snooze <id|name> [30m|2h|1d]"),
            "history": Route(self.history, False, "/history [name]"),
            "help": Route(self.help, False, "/help"),
        }

    async def dispatch(self, command: Command) -> Reply:
        """Answer one command (the adapters' Dispatch)."""
        name = command.name.lower().lstrip("/")
        route = self.routes.get(name)
        if route is None:
            return Reply(f"Unknown command /{name}. Send /help for the list.", ephemeral=True)
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
            return Reply(f"/{name} failed: {exc}")

    async def completions(self, kind: str, prefix: str) -> list[str]:
        """Candidates for autocomplete: "container" names or pending "update" ids."""
        if kind == "update":
            values = [u.id for u in self.store.updates(("pending", "failed", "ignored"))]
        else:
            values = self.store.containers()
        return [v for v in values if v.startswith(prefix)]

    def _refuse(self, name: str, command: Command, route: Route) -> Reply:
        actor = actor_of(command.sender)
        target = self._container_of(command.args[0]) if command.args else None
        log.warning("refused /%s %s from %s", name, " ".join(command.args), actor)
        self.store.record(
            "refused", "refused", container=target, actor=actor,
            detail=f"/{name} {' '.join(command.args)}".strip(),
        )
        what = "change anything" if route.writes else "use this bot here"
        return Reply(
            f"Sorry, you are not allowed to {what}: /{name} is for the people on the "
            "allow-list. The attempt was recorded.",
            ephemeral=True,
            refused=True,
        )

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
                lines.append(f"Rate limited: {registry}: {message}")
        upcoming = self.store.get_meta("next_pass")
        if upcoming:
            lines.append(f"Next pass: {upcoming}")
        pending = self.store.updates(("pending", "approved", "failed"))
        lines.append(f"Pending updates: {len(pending)}")
        lines.extend(f"  {_update_line(u)}" for u in pending[:5])
        if len(pending) > 5:
            lines.append("  ... /updates lists them all")
        undelivered = len(self.store.outbox())
        if undelivered:
            lines.append(f"Undelivered alerts waiting for retry: {undelivered}")
        return Reply("\n".join(lines))

    async def check(self, command: Command) -> Reply:
        """Run a check pass now (waits for a running one); new alerts are posted as usual."""
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
        rows = self.store.updates(("pending", "approved", "failed"))
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
        lines.extend(_update_line(u) for u in shown)
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
        except (UpdateInProgress, ContainerNotFound, SelfUpdateRefused) as exc:
            return Reply(f"Update {update.id} not started: {exc}")
        return Reply(_result_text(result, update.id))

    def _stale(self, update: PendingUpdate) -> str | None:
        """Why an update cannot be approved any more, or None."""
        if update.state == "superseded":
            newer = self.store.newer_update(update)
            if newer is not None and newer.state in ("pending", "failed", "ignored", "approved"):
                return (
                    f"Update {update.id} for {update.container} is no longer current: a newer "
                    f"digest {short_digest(newer.remote_digest)} arrived as update {newer.id}. "
                    f"Approve that one instead."
                )
            return (
                f"Update {update.id} for {update.container} is no longer current "
                f"(the container moved on); nothing was done."
            )
        if update.state == "applied":
            return f"Update {update.id} for {update.container} was already applied."
        if update.state == "approved":
            return f"Update {update.id} for {update.container} is already being applied."
        return None

    async def pull(self, command: Command) -> Reply:
        """Update a container to its newest digest now."""
        name = _one_arg(command)
        try:
            result = await self.updates.apply(
                name, update=None, actor=actor_of(command.sender), action="pull"
            )
        except (UpdateInProgress, ContainerNotFound, SelfUpdateRefused) as exc:
            return Reply(f"/pull {name} not started: {exc}")
        return Reply(_result_text(result, None))

    async def ignore(self, command: Command) -> Reply:
        """Ignore an update (by id, or a container's newest); a newer digest is alerted again."""
        word = _one_arg(command)
        update = self._resolve(word)
        if update is None or update.state not in ("pending", "failed"):
            return Reply(f"Nothing pending to ignore for {word!r}.")
        actor = actor_of(command.sender)
        self.store.set_update_state(update.id, "ignored", expect=("pending", "failed"))
        self.store.ignore(update.container, update.remote_digest, actor=actor)
        self.store.record(
            "ignore", "ignored", container=update.container, actor=actor,
            detail=f"{update.id} {short_digest(update.remote_digest)}",
        )
        return Reply(
            f"Ignored update {update.id} of {update.container} "
            f"({short_digest(update.remote_digest)}); a newer digest will be alerted again."
        )

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


def _one_arg(command: Command) -> str:
    if len(command.args) != 1:
        raise UsageError(f"/{command.name} takes exactly one argument")
    return command.args[0]


def _update_line(update: PendingUpdate) -> str:
    return (
        f"{update.id} {update.container} {update.image} "
        f"{short_digest(update.old_digest)} -> {short_digest(update.remote_digest)} "
        f"[{update.state}, {update.policy}]"
    )


def _result_text(result: UpdateResult, update_id: str | None) -> str:
    label = f" (update {update_id})" if update_id else ""
    return f"{result.container}: {result.outcome.value}{label}. {result.message}".strip()
