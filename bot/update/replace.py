"""Replace one container by a new one under the same name, journalled, gated, reversible.

The steps, each recorded in the journal before it is taken: stop the old container (its own
stop signal and timeout), rename it aside, create the new one under the original name, connect
its other networks, start it, wait until it proves healthy, remove the old one. A failure after
the old one was stopped is undone: the new one removed, the old one renamed back and started.
A stopped container is replaced by a stopped one: nothing is started and no health is awaited,
and an undo leaves the old one stopped too (the journal says `stopped`).
`settle` converges a journal left open by a process that died mid-way. Every engine call goes
through the engine port (bot/engines/port.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.targets import ONE_HOST, HostScope
from bot.engines.inspect import ContainerInspect
from bot.engines.port import Engine, doing
from bot.errors import DockWardenError, EngineError, StoreError
from bot.store.db import Store
from bot.store.journal import JournalEntry
from bot.update.health import Verdict, wait_healthy
from bot.update.spec import CreateSpec

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
EXPIRY_MARGIN = 300.0  # seconds beyond stop and health timeouts (pulls happen before)
# Journal steps in order; "dependents" only while namespace sharers are recreated, and
# "rollback" replaces whichever step failed.
STEPS = ("stop", "rename", "create", "connect", "start", "health", "remove_old", "dependents")


@dataclass(frozen=True)
class Replaced:
    """How a replacement ended: the new container's id, or what the rollback restored."""

    ok: bool
    new_id: str | None
    detail: str
    journal_id: int = 0


def aside_name(name: str, container_id: str) -> str:
    """Where the old container waits while its successor proves itself."""
    return f"{name}-dockwarden-old-{container_id[:12]}"


def stop_timeout(container: ContainerInspect) -> int:
    """How long the engine waits after the container's stop signal before it kills it."""
    timeout = container.stop_timeout
    return DEFAULT_STOP_TIMEOUT if timeout is None else timeout


class Replacer:
    """Carries out replacements and settles interrupted ones."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        *,
        health_timeout: float,
        grace_period: float,
        after_step: Callable[[str], None] | None = None,
        scope: HostScope = ONE_HOST,
    ) -> None:
        self.engine = engine
        self.store = store
        self.scope = scope  # journals are written under this host's keys
        self.health_timeout = health_timeout
        self.grace_period = grace_period
        # Called after each step completes; tests use it to interrupt at a precise point.
        self.after_step = after_step
        # Journals this process is carrying out right now: any other open journal that names
        # this process as its owner was left behind (a failed write, a cancelled task).
        self.active: set[int] = set()

    async def replace(
        self,
        old: ContainerInspect,
        spec: CreateSpec,
        journal: dict[str, Any],
        *,
        keep_open: bool = False,
    ) -> Replaced:
        """Replace `old` by a container made from `spec`; roll back on any failure.

        With `keep_open`, a success leaves the journal at step "dependents" for the caller to
        finish once the containers sharing the namespace are recreated too.
        """
        name, old_id = spec.name, old.id
        aside = aside_name(name, old_id)
        # Past this moment no live process can still be carrying this replacement out.
        expires = time.time() + stop_timeout(old) + self.health_timeout + EXPIRY_MARGIN
        journal = {**journal, "name": name, "old_id": old_id, "aside": aside, "expires": expires,
                   "stopped": not old.state.running}
        # Raises StoreError before anything is touched when the journal cannot be opened.
        jid = await asyncio.to_thread(
            self.store.journal_begin, self.scope.key(name), "stop", journal
        )
        self.active.add(jid)
        try:
            done = await self._replace(jid, old, spec, journal, keep_open=keep_open)
        except BaseException:
            self.active.discard(jid)  # cancelled: the journal says where it stopped
            raise
        if not (keep_open and done.ok):
            self.active.discard(jid)
        return done

    async def _replace(
        self,
        jid: int,
        old: ContainerInspect,
        spec: CreateSpec,
        journal: dict[str, Any],
        *,
        keep_open: bool,
    ) -> Replaced:
        name, old_id, aside = spec.name, old.id, str(journal["aside"])
        made: dict[str, str] = {}
        try:
            verdict = await self._forward(jid, old, spec, aside, made)
            why = None if verdict.healthy else verdict.detail
            if why is None:
                self._done("health")
        except Exception as exc:  # any failure at all: the old container must come back
            if isinstance(exc, DockWardenError):
                why = str(exc)
            else:
                log.exception("unexpected failure while replacing %s", name)
                why = f"unexpected {type(exc).__name__}: {exc}"
        if why is not None:
            restored = await self._rollback(jid, journal, made.get("new_id"))
            await self._finish(jid, "rolled_back")
            return Replaced(False, None, f"{why}; {restored}")
        # From here on the new container runs healthy: a journal write that fails leaves the
        # journal at "health", which a later settle turns into the same outcome.
        await self._step_or_log(jid, "remove_old")
        detail = verdict.detail
        try:
            # Without volumes: its anonymous volumes now belong to the new container.
            with doing("removing the old container"):
                await self.engine.remove_container(old_id)
        except EngineError as exc:
            detail += f"; the old container {aside} could not be removed ({exc})"
        self._done("remove_old")
        if keep_open:
            await self._step_or_log(jid, "dependents")
        else:
            await self._finish(jid, "updated")
        return Replaced(True, made["new_id"], detail, jid)

    async def _forward(
        self,
        jid: int,
        old: ContainerInspect,
        spec: CreateSpec,
        aside: str,
        made: dict[str, str],
    ) -> Verdict:
        """Stop, rename, create, connect, start, gate; `made` learns the new id at once."""
        await self._stop(old)
        self._done("stop")
        await self._step(jid, "rename")
        with doing("renaming the old container"):
            await self.engine.rename(old.id, aside)
        self._done("rename")
        await self._step(jid, "create")
        with doing("creating the new container"):
            new_id = made["new_id"] = await self.engine.create(spec.name, spec.body)
        self._done("create")
        await self._step(jid, "connect", new_id=new_id)
        for net in spec.extra_networks:
            with doing(f"connecting the new container to {net.network}"):
                await self.engine.connect(new_id, net)
        self._done("connect")
        if not old.state.running:  # exited or only created: the new one stays so too
            return Verdict(True, "left stopped, as the old container was")
        await self._step(jid, "start")
        with doing("starting the new container"):
            await self.engine.start(new_id)
        self._done("start")
        await self._step(jid, "health")
        return await self.gate(new_id)

    async def gate(self, container_id: str) -> Verdict:
        """The health gate for a started container."""

        async def inspect() -> ContainerInspect | None:
            return await self.engine.inspect_container(container_id)

        return await wait_healthy(
            inspect, timeout=self.health_timeout, grace_period=self.grace_period
        )

    async def _stop(self, old: ContainerInspect) -> None:
        # Honour the container's own StopTimeout; the engine sends its own StopSignal.
        with doing("stopping the old container"):
            await self.engine.stop(old.id, timeout=stop_timeout(old))

    async def _step(self, jid: int, step: str, **data: Any) -> None:
        log.info("update journal %d: %s", jid, step)
        await asyncio.to_thread(self.store.journal_step, jid, step, **data)

    async def _step_or_log(self, jid: int, step: str) -> None:
        try:
            await self._step(jid, step)
        except StoreError:
            log.exception("could not journal step %s of update %d; carrying on", step, jid)

    async def finish(self, jid: int, outcome: str) -> None:
        """Close a journal kept open by `replace(keep_open=True)`."""
        self.active.discard(jid)
        await self._finish(jid, outcome)

    async def _finish(self, jid: int, outcome: str) -> None:
        try:
            await asyncio.to_thread(self.store.journal_finish, jid, outcome)
        except StoreError:
            # The containers are settled; an open journal is settled again (a no-op) later.
            log.exception("could not close update journal %d", jid)

    def _done(self, step: str) -> None:
        if self.after_step is not None:
            self.after_step(step)

    async def _rollback(self, jid: int, journal: Mapping[str, Any], new_id: str | None) -> str:
        """Put the old container back under its name, running; say what was restored."""
        try:
            await self._step(jid, "rollback")
        except Exception:  # whatever the journal write did, the old container comes back
            log.exception("could not journal the rollback; rolling back anyway")
        return await self.restore(journal, new_id)

    async def restore_tag(self, journal: Mapping[str, Any]) -> str:
        """Give the tag back to the old image (the new one took it before the replacement)."""
        if not (journal.get("retag") and journal.get("old_image_id")):
            return ""
        repo, tag = journal["retag"]
        try:
            with doing("tagging the old image"):
                await self.engine.tag(str(journal["old_image_id"]), repo, tag)
        except EngineError as exc:
            return f"; the tag {repo}:{tag} still names the new image ({exc})"
        return ""

    async def restore(self, journal: Mapping[str, Any], new_id: str | None) -> str:
        """Remove the new container, rename the old one back, restart it; never raises."""
        return (await self._restore_all(journal, new_id))[1]

    async def _restore_all(
        self, journal: Mapping[str, Any], new_id: str | None
    ) -> tuple[bool, str]:
        """Whether everything was restored, and what was done."""
        done: list[str] = []
        problems: list[str] = []
        try:
            await self._restore(journal, new_id, done, problems)
        except EngineError as exc:
            problems.append(str(exc))
        text = "rolled back: " + (", ".join(done) if done else "nothing needed undoing")
        if problems:
            text += "; could not restore everything: " + "; ".join(problems)
        return not problems, text

    async def _restore(
        self, journal: Mapping[str, Any], new_id: str | None, done: list[str], problems: list[str]
    ) -> None:
        name, old_id, aside = str(journal["name"]), str(journal["old_id"]), journal["aside"]

        async def attempt(said: str, what: str, call: Awaitable[None]) -> None:
            try:
                with doing(what):
                    await call
            except EngineError as exc:
                problems.append(str(exc))
                return
            done.append(said)

        holder = await self.engine.inspect_container(name)
        doomed = new_id or (holder.id if holder and holder.id != old_id else None)
        if doomed and await self.engine.inspect_container(doomed) is not None:
            # With volumes: that drops only volumes the new container created itself; the old
            # container's volumes are named in its mounts and in use by the old container.
            await attempt("removed the new container", "removing the new container",
                          self.engine.remove_container(doomed, volumes=True, force=True))
        old = await self.engine.inspect_container(old_id)
        if old is None:
            problems.append(f"the old container {old_id[:12]} no longer exists")
            return
        if old.name != name:
            await attempt(f"renamed {aside} back to {name}", "renaming the old container back",
                          self.engine.rename(old_id, name))
        if journal.get("retag") and journal.get("old_image_id"):
            repo, tag = journal["retag"]
            await attempt(f"tagged the old image {repo}:{tag} again", "tagging the old image",
                          self.engine.tag(str(journal["old_image_id"]), repo, tag))
        if journal.get("stopped"):
            return  # it was stopped before the update: it stays so
        if not old.state.running:
            await attempt(f"started the old container {old_id[:12]}",
                          "starting the old container", self.engine.start(old_id))
        problem = await self.left_running(name)
        if problem:
            problems.append(problem)

    async def left_running(self, name: str) -> str | None:
        """Make sure the container under `name` runs (starting it once); None when it does."""
        holder = await self.engine.inspect_container(name)
        if holder is None:
            return f"no container is named {name}"
        if holder.running:
            return None
        try:
            with doing(f"starting {name}"):
                await self.engine.start(holder.id)
        except EngineError as exc:
            return str(exc)
        holder = await self.engine.inspect_container(name)
        if holder is None or not holder.running:
            code = holder.state.exit_code if holder else None
            return f"{name} does not stay running (exit code {code})"
        return None

    async def settle(self, entry: JournalEntry) -> tuple[str, str]:
        """Converge one interrupted replacement; returns (outcome, what was done)."""
        data = entry.data
        name, old_id = str(data.get("name", entry.container)), data.get("old_id")
        if not old_id:
            return "failed", f"{name}: the journal holds no old container id; nothing done"
        old = await self.engine.inspect_container(old_id)
        if entry.step == "stop" and old is not None and old.running:
            # Killed while the engine was stopping it: Docker finishes a stop after its client
            # died. Deciding now would see it running and leave it to exit moments later, so
            # settle it first (our stop joins one under way, or is the one that never came).
            log.info("waiting for the engine to finish stopping %s", name)
            await self._stop(old)
        holder = await self.engine.inspect_container(name)
        is_new = holder is not None and holder.id != old_id
        if is_new and holder is not None and entry.step in ("health", "remove_old", "dependents"):
            healthy = holder.state.running and (await self.gate(holder.id)).healthy
            if healthy or (data.get("stopped") and entry.step != "health"):
                if await self.engine.inspect_container(old_id) is not None:
                    with doing("removing the old container"):
                        await self.engine.remove_container(old_id)
                if not healthy:  # stopped before the update, and so it stays
                    return "updated", f"{name}: the new container was made; removed the old one"
                text = f"{name}: the new container runs healthy; removed the old one"
                problem = await self.left_running(name)
                if problem:
                    return "failed", f"{text}; but {problem}"
                return "updated", text
        ok, restored = await self._restore_all(data, data.get("new_id"))
        return "rolled_back" if ok else "failed", f"{name}: {restored}"
