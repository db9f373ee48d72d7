"""What each chat command does, once the router has let it through: one function per command.

`HANDLERS` maps every name of the catalogue (bot/chat/catalogue.py) to its handler; the words
of the answers are bot/chat/replies.py's. A handler raises UsageError for arguments that cannot
work (the router answers with the usage) and may let any DockWardenError through (the router
answers with a safe form of it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.chat import replies
from bot.chat.access import Authorizer, actor_of
from bot.chat.alert_texts import SNOOZE_BUTTON, rollback_alert
from bot.chat.catalogue import COMMANDS
from bot.chat.messages import Command, Reply
from bot.chat.throttle import Cooldown
from bot.domain.durations import SNOOZE_LIMIT, parse_duration
from bot.domain.model import APPROVABLE_STATES, OPEN_STATES, UpdateState, short_digest
from bot.domain.targets import resolve_key
from bot.errors import (
    CanaryWaiting,
    ContainerNotFound,
    DockWardenError,
    EngineUnavailable,
    SelfUpdateHandedOver,
    UsageError,
)
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.store.safety import SafetyStore
from bot.store.updates import PendingUpdate
from bot.update.hosts import HostRollbacks
from bot.update.rollback import RollbackOutcome
from bot.usecases.ports import Resolve, RunPass
from bot.usecases.update_service import NOT_STARTED, UpdateService

log = logging.getLogger(__name__)

PAGE_SIZE = 10  # updates per /updates page
HISTORY_LINES = 15  # entries /history shows


async def same_key(text: str) -> str:
    """The resolver where no hosts are at hand (unit tests): the text is the key."""
    return text


@dataclass
class ChatContext:
    """What the handlers work with: the store, the use cases, and the router's settings."""

    store: Store
    authorizer: Authorizer
    run_pass: RunPass
    updates: UpdateService
    open_checks: Cooldown  # non-admins share one cool-down: a crowd cannot take turns either
    engine_label: str = "Docker engine"
    schedule: str = ""
    pass_running: Callable[[], bool] = lambda: False
    rollbacks: HostRollbacks | None = None  # None where no engine is at hand (unit tests)
    # What a user typed (`web`, `b/web`) as the container key it names, on the live hosts.
    resolve: Resolve = same_key


Handler = Callable[[ChatContext, Command], Awaitable[Reply]]


async def _live_key(ctx: ChatContext, word: str) -> str:
    """The container key `word` names: an update id's container, else the container a host
    has by that name, else one the store knows (a container gone since)."""
    update = ctx.store.get_update(word)
    if update is not None:
        return update.container
    try:
        return await ctx.resolve(word)
    except (ContainerNotFound, EngineUnavailable):
        return _known_key(ctx, word)


def _known_key(ctx: ChatContext, word: str) -> str:
    """The key among the containers the store knows that `word` names (AmbiguousTarget when
    several hosts' are), else `word` itself."""
    return resolve_key(word, ctx.store.known_containers())


def _one_arg(command: Command) -> str:
    if len(command.args) != 1:
        raise UsageError(replies.one_argument(command.name))
    return command.args[0]


def _resolve(ctx: ChatContext, word: str) -> PendingUpdate | None:
    """The update named by id, else the newest update of the container of that name."""
    return ctx.store.get_update(word) or ctx.store.latest_update(_known_key(ctx, word))


# -- read-only -----------------------------------------------------------------------------------


async def status(ctx: ChatContext, command: Command) -> Reply:
    """Engine, last pass, counts and pending updates."""
    return Reply(replies.status_text(
        engine_label=ctx.engine_label,
        schedule=ctx.schedule,
        last_pass=ctx.store.last_pass(),
        next_pass=ctx.store.next_pass(),
        pending=ctx.store.updates(OPEN_STATES),
        undelivered=len(ctx.store.outbox()),
    ))


async def check(ctx: ChatContext, command: Command) -> Reply:
    """Run a check pass now (or join the one under way); new alerts are posted as usual."""
    if not ctx.pass_running() and not ctx.authorizer.is_admin(command.sender):
        wait = ctx.open_checks.wait()
        if wait > 0:
            return Reply(replies.check_cooldown(wait), ephemeral=True)
        ctx.open_checks.started()
    summary = await ctx.run_pass(list(command.args) or None)
    return Reply(replies.check_text(summary))


async def list_updates(ctx: ChatContext, command: Command) -> Reply:
    """Pending updates with their ids."""
    rows = ctx.store.updates(OPEN_STATES)
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
    waits = {w.update_id: w.run_at for w in SafetyStore(ctx.store).waits()}
    lines.extend(replies.update_line(u, waits.get(u.id)) for u in shown)
    if page < pages:
        lines.append(f"/updates {page + 1} for more")
    return Reply("\n".join(lines))


async def history(ctx: ChatContext, command: Command) -> Reply:
    """Recent actions and their outcomes (for one container when named)."""
    container = _known_key(ctx, command.args[0]) if command.args else None
    entries = ctx.store.history(container, limit=HISTORY_LINES)
    if not entries:
        return Reply("No history yet." if container is None else f"No history for {container}.")
    return Reply("\n".join(replies.history_line(e) for e in entries))


async def help_(ctx: ChatContext, command: Command) -> Reply:
    """Every command and what it does."""
    admin = ctx.authorizer.is_admin(command.sender)
    return Reply("\n".join(replies.help_line(spec, admin=admin) for spec in COMMANDS))


# -- state-changing ------------------------------------------------------------------------------


async def approve(ctx: ChatContext, command: Command) -> Reply:
    """Approve an update (by id, or a container's newest) and apply it now."""
    word = _one_arg(command)
    actor = actor_of(command.sender)
    update = _resolve(ctx, word)
    if update is None:
        return Reply(replies.no_update(word))
    stale = _stale(ctx, update)
    if stale:
        ctx.store.record(
            "approve", "stale", container=update.container, actor=actor, detail=stale
        )
        return Reply(stale)
    if not ctx.store.approve_update(update.id, actor):
        return Reply(_stale(ctx, ctx.store.get_update(update.id) or update) or "Not current.")
    ctx.store.record(
        "approve", "approved", container=update.container, actor=actor, detail=update.id
    )
    try:
        result = await ctx.updates.apply(
            update.container, update=update, actor=actor, action="update"
        )
    except (SelfUpdateHandedOver, CanaryWaiting) as exc:
        return Reply(str(exc))
    except NOT_STARTED as exc:
        return Reply(replies.not_started(f"Update {update.id}", str(exc)))
    return Reply(replies.result_text(result, update.id))


def _stale(ctx: ChatContext, update: PendingUpdate) -> str | None:
    """Why an update cannot be approved any more, or None."""
    if update.state is UpdateState.SUPERSEDED:
        newer = ctx.store.newer_update(update)
        if newer is not None and newer.state not in (*APPROVABLE_STATES, UpdateState.APPROVED):
            newer = None  # applied or superseded itself: nothing to point at
        return replies.superseded(update, newer)
    if update.state is UpdateState.APPLIED:
        return replies.already_applied(update)
    if update.state is UpdateState.APPROVED:
        return replies.being_applied(update)
    return None


async def pull(ctx: ChatContext, command: Command) -> Reply:
    """Update a container to its newest digest now."""
    name = _one_arg(command)
    try:
        key = await ctx.resolve(name)
        result = await ctx.updates.apply(
            key, update=None, actor=actor_of(command.sender), action="pull"
        )
    except SelfUpdateHandedOver as exc:
        return Reply(str(exc))
    except NOT_STARTED as exc:
        return Reply(replies.not_started(f"/pull {name}", str(exc)))
    return Reply(replies.result_text(result, None))


async def ignore(ctx: ChatContext, command: Command) -> Reply:
    """Ignore an update (by id, or a container's newest); a newer digest is alerted again."""
    word = _one_arg(command)
    update = _resolve(ctx, word)
    if update is None or update.state not in (UpdateState.PENDING, UpdateState.FAILED):
        return Reply(replies.nothing_to_ignore(word))
    actor = actor_of(command.sender)
    ctx.store.set_update_state(update.id, UpdateState.IGNORED,
                                expect=(UpdateState.PENDING, UpdateState.FAILED))
    ctx.store.ignore(update.container, update.remote_digest, actor=actor)
    ctx.store.record(
        "ignore", "ignored", container=update.container, actor=actor,
        detail=f"{update.id} {short_digest(update.remote_digest)}",
    )
    return Reply(replies.ignored(update))


async def rollback(ctx: ChatContext, command: Command) -> Reply:
    """Put a container back on the image it ran before its last update."""
    name = _one_arg(command)
    if ctx.rollbacks is None:
        return Reply("/rollback is not available here.")
    actor = actor_of(command.sender)
    try:
        result = await ctx.rollbacks.rollback(await ctx.resolve(name), actor=actor)
    except NOT_STARTED as exc:
        return Reply(replies.not_started(f"/rollback {name}", str(exc)))
    if result.outcome is not RollbackOutcome.NOTHING:
        try:
            await ctx.updates.sink.send([rollback_alert(result, actor)])
        except DockWardenError:
            log.exception("could not announce the rollback of %s", result.container)
    return Reply(replies.rollback_text(result.container, result.outcome.value, result.message))


async def snooze(ctx: ChatContext, command: Command) -> Reply:
    """No update alerts for a container for a while (default 1d)."""
    if not command.args or len(command.args) > 2:
        raise UsageError("name a container (or an update id) and optionally a duration")
    container = await _live_key(ctx, command.args[0])
    duration = parse_duration(
        command.args[1] if len(command.args) > 1 else SNOOZE_BUTTON, maximum=SNOOZE_LIMIT
    )
    until = utcnow() + duration
    actor = actor_of(command.sender)
    ctx.store.snooze(container, until, actor=actor)
    ctx.store.record(
        "snooze", "snoozed", container=container, actor=actor,
        detail=f"until {until.isoformat(timespec='minutes')}",
    )
    return Reply(replies.snoozed(container, until))


HANDLERS: dict[str, Handler] = {
    "status": status,
    "check": check,
    "updates": list_updates,
    "approve": approve,
    "pull": pull,
    "ignore": ignore,
    "snooze": snooze,
    "rollback": rollback,
    "history": history,
    "help": help_,
}
