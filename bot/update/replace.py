"""Replace one container by a new one under the same name, journalled, gated, reversible.

The steps, each recorded in the journal before it is taken: stop the old container (its own
stop signal and timeout), rename it aside, create the new one under the original name, connect
its other networks, start it, wait until it proves healthy, remove the old one. A failure after
the old one was stopped is undone: the new one removed, the old one renamed back and started.
`settle` converges a journal left open by a process that died mid-way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import docker.errors

from bot.errors import DockWardenError, EngineError, StoreError
from bot.store.db import Store
from bot.store.journal import JournalEntry
from bot.update.health import Verdict, wait_healthy
from bot.update.spec import CreateSpec, container_name

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
EXPIRY_MARGIN = 300.0  # seconds beyond stop and health timeouts (pulls happen before)
# Journal steps in order; "dependents" only while namespace sharers are recreated, and
# "rollback" replaces whichever step failed.
STEPS = ("stop", "rename", "create", "connect", "start", "health", "remove_old", "dependents")


class StepFailed(Exception):
    """A step of the replacement failed; carries the step and the engine's words."""

    def __init__(self, step: str, why: str) -> None:
        super().__init__(f"{step}: {why}")
        self.step = step
        self.why = why


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


class Engine:
    """The engine calls the replacement makes, each in a worker thread, failures as EngineError."""

    def __init__(self, api: Any) -> None:
        self.api = api

    async def call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run `api.<method>` off the event loop; an engine refusal becomes EngineError."""
        try:
            return await asyncio.to_thread(getattr(self.api, method), *args, **kwargs)
        except docker.errors.APIError as exc:
            raise EngineError(f"{what}: {exc.explanation or exc}") from None
        except docker.errors.DockerException as exc:
            raise EngineError(f"{what}: {exc}") from None

    async def inspect(self, ref: str) -> dict[str, Any] | None:
        """A container's inspect data, or None when it does not exist."""
        try:
            return dict(await asyncio.to_thread(self.api.inspect_container, ref))
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise EngineError(f"inspecting {ref}: {exc.explanation or exc}") from None


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
    ) -> None:
        self.engine = engine
        self.store = store
        self.health_timeout = health_timeout
        self.grace_period = grace_period
        # Called after each step completes; tests use it to interrupt at a precise point.
        self.after_step = after_step
        # Journals this process is carrying out right now: any other open journal that names
        # this process as its owner was left behind (a failed write, a cancelled task).
        self.active: set[int] = set()

    async def replace(
        self,
        old: Mapping[str, Any],
        spec: CreateSpec,
        journal: dict[str, Any],
        *,
        keep_open: bool = False,
    ) -> Replaced:
        """Replace `old` by a container made from `spec`; roll back on any failure.

        With `keep_open`, a success leaves the journal at step "dependents" for the caller to
        finish once the containers sharing the namespace are recreated too.
        """
        name = spec.name
        old_id = str(old["Id"])
        aside = aside_name(name, old_id)
        # Past this moment no live process can still be carrying this replacement out.
        expires = time.time() + self._stop_timeout(old) + self.health_timeout + EXPIRY_MARGIN
        journal = {**journal, "name": name, "old_id": old_id, "aside": aside, "expires": expires}
        # Raises StoreError before anything is touched when the journal cannot be opened.
        jid = await asyncio.to_thread(self.store.journal_begin, name, "stop", journal)
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
        old: Mapping[str, Any],
        spec: CreateSpec,
        journal: dict[str, Any],
        *,
        keep_open: bool,
    ) -> Replaced:
        name, old_id, aside = spec.name, str(old["Id"]), str(journal["aside"])
        made: dict[str, str] = {}
        try:
            verdict = await self._forward(jid, old, spec, aside, made)
        except Exception as exc:  # any failure at all: the old container must come back
            if isinstance(exc, StepFailed):
                why = exc.why
            elif isinstance(exc, DockWardenError):
                why = str(exc)
            else:
                log.exception("unexpected failure while replacing %s", name)
                why = f"unexpected {type(exc).__name__}: {exc}"
            restored = await self._rollback(jid, journal, made.get("new_id"))
            await self._finish(jid, "rolled_back")
            return Replaced(False, None, f"{why}; {restored}")
        # From here on the new container runs healthy: a journal write that fails leaves the
        # journal at "health", which a later settle turns into the same outcome.
        await self._step_or_log(jid, "remove_old")
        detail = verdict.detail
        try:
            # Without v=True: its anonymous volumes now belong to the new container.
            await self.engine.call("removing the old container", "remove_container", old_id)
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
        old: Mapping[str, Any],
        spec: CreateSpec,
        aside: str,
        made: dict[str, str],
    ) -> Verdict:
        """Stop, rename, create, connect, start, gate; `made` learns the new id at once."""
        name, old_id = spec.name, str(old["Id"])
        await self._stop(old)
        self._done("stop")
        await self._step(jid, "rename")
        await self.engine.call("renaming the old container", "rename", old_id, aside)
        self._done("rename")
        await self._step(jid, "create")
        created = await self.engine.call(
            "creating the new container", "create_container_from_config", spec.body, name
        )
        new_id = made["new_id"] = str(created["Id"])
        self._done("create")
        await self._step(jid, "connect", new_id=new_id)
        for net in spec.extra_networks:
            await self.engine.call(
                f"connecting the new container to {net.network}",
                "connect_container_to_network",
                new_id,
                net.network,
                ipv4_address=net.ipv4_address,
                ipv6_address=net.ipv6_address,
                aliases=list(net.aliases) or None,
                links=list(net.links) or None,
                link_local_ips=list(net.link_local_ips) or None,
                driver_opt=net.driver_opts,
            )
        self._done("connect")
        await self._step(jid, "start")
        await self.engine.call("starting the new container", "start", new_id)
        self._done("start")
        await self._step(jid, "health")
        verdict = await self.gate(new_id)
        if not verdict.healthy:
            raise StepFailed("health", verdict.detail)
        self._done("health")
        return verdict

    async def gate(self, container_id: str) -> Verdict:
        """The health gate for a started container."""

        async def inspect() -> Mapping[str, Any]:
            found = await self.engine.inspect(container_id)
            if found is None:
                return {"State": {"Running": False, "ExitCode": "gone (removed)"}}
            return found

        return await wait_healthy(
            inspect, timeout=self.health_timeout, grace_period=self.grace_period
        )

    @staticmethod
    def _stop_timeout(old: Mapping[str, Any]) -> int:
        timeout = (old.get("Config") or {}).get("StopTimeout")
        return DEFAULT_STOP_TIMEOUT if timeout is None else int(timeout)

    async def _stop(self, old: Mapping[str, Any]) -> None:
        # Honour the container's own StopTimeout; the engine sends its own StopSignal.
        await self.engine.call(
            "stopping the old container", "stop", old["Id"], timeout=self._stop_timeout(old)
        )

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
            await self.engine.call("tagging the old image", "tag", journal["old_image_id"],
                                   repo, tag)
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
        name, old_id, aside = journal["name"], journal["old_id"], journal["aside"]

        async def attempt(said: str, what: str, method: str, *args: Any, **kw: Any) -> bool:
            try:
                await self.engine.call(what, method, *args, **kw)
            except EngineError as exc:
                problems.append(str(exc))
                return False
            done.append(said)
            return True

        holder = await self.engine.inspect(name)
        doomed = new_id or (holder["Id"] if holder and holder["Id"] != old_id else None)
        if doomed and await self.engine.inspect(doomed) is not None:
            # v=True drops only volumes the new container created itself: the old
            # container's volumes are named in its mounts and in use by the old container.
            await attempt("removed the new container", "removing the new container",
                          "remove_container", doomed, v=True, force=True)
        old = await self.engine.inspect(old_id)
        if old is None:
            problems.append(f"the old container {old_id[:12]} no longer exists")
            return
        if container_name(old) != name:
            await attempt(f"renamed {aside} back to {name}", "renaming the old container back",
                          "rename", old_id, name)
        if journal.get("retag") and journal.get("old_image_id"):
            repo, tag = journal["retag"]
            await attempt(f"tagged the old image {repo}:{tag} again", "tagging the old image",
                          "tag", journal["old_image_id"], repo, tag)
        if not (old.get("State") or {}).get("Running"):
            await attempt(f"started the old container {old_id[:12]}",
                          "starting the old container", "start", old_id)
        problem = await self.left_running(name)
        if problem:
            problems.append(problem)

    async def left_running(self, name: str) -> str | None:
        """Make sure the container under `name` runs (starting it once); None when it does."""
        holder = await self.engine.inspect(name)
        if holder is None:
            return f"no container is named {name}"
        if _running(holder):
            return None
        try:
            await self.engine.call(f"starting {name}", "start", holder["Id"])
        except EngineError as exc:
            return str(exc)
        holder = await self.engine.inspect(name)
        if holder is None or not _running(holder):
            state = (holder or {}).get("State") or {}
            return f"{name} does not stay running (exit code {state.get('ExitCode')})"
        return None

    async def settle(self, entry: JournalEntry) -> tuple[str, str]:
        """Converge one interrupted replacement; returns (outcome, what was done)."""
        data = entry.data
        name, old_id = data.get("name", entry.container), data.get("old_id")
        if not old_id:
            return "failed", f"{name}: the journal holds no old container id; nothing done"
        old = await self.engine.inspect(old_id)
        if entry.step == "stop" and old is not None and _running(old):
            # Killed while the engine was stopping it: Docker finishes a stop after its client
            # died. Deciding now would see it running and leave it to exit moments later, so
            # settle it first (our stop joins one under way, or is the one that never came).
            log.info("waiting for the engine to finish stopping %s", name)
            await self._stop(old)
        holder = await self.engine.inspect(name)
        is_new = holder is not None and holder["Id"] != old_id
        if is_new and holder is not None and entry.step in ("health", "remove_old", "dependents"):
            running = (holder.get("State") or {}).get("Running")
            verdict = await self.gate(holder["Id"]) if running else Verdict(False, "not running")
            if verdict.healthy:
                if await self.engine.inspect(old_id) is not None:
                    await self.engine.call(
                        "removing the old container", "remove_container", old_id
                    )
                text = f"{name}: the new container runs healthy; removed the old one"
                problem = await self.left_running(name)
                if problem:
                    return "failed", f"{text}; but {problem}"
                return "updated", text
        ok, restored = await self._restore_all(data, data.get("new_id"))
        return "rolled_back" if ok else "failed", f"{name}: {restored}"


def _running(container: Mapping[str, Any]) -> bool:
    state = container.get("State") or {}
    return bool(state.get("Running")) and not state.get("Restarting")
