"""DockWarden updating its own container, through a short-lived helper container.

A process cannot recreate the container it runs in: stopping the old container stops the
update half-way. So, once the approved digest is pulled:

1. `hand_over` (in the bot) writes a `self_update` record (store meta, in the shared /data),
   then starts a helper container from the new image with the bot's own environment, mounts
   and network, running `python -m bot.selfupdate NAME DIGEST ACTOR`; it raises
   SelfUpdateHandedOver, whose message is the chat's answer.
2. The helper (`main` below) runs the ordinary Updater on the bot's container from outside:
   stop, recreate on that exact digest with the configuration kept, health gate, roll back on
   failure; it writes the outcome into the record and goes (it is auto-removed).
3. Whichever bot runs afterwards (the new one, or the old one put back) finds the record at
   start (`SelfUpdateReport`), waits for the helper's outcome, settles the pending update and
   says in chat that it is up, on which digest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

from bot.domain.model import Basis, UpdateOutcome, UpdateResult, UpdateState, short_digest
from bot.engines.port import doing
from bot.errors import DockWardenError, SelfUpdateHandedOver

if TYPE_CHECKING:
    from bot.config.settings import Settings
    from bot.domain.reference import ImageRef
    from bot.engines.inspect import ContainerInspect, JsonObject
    from bot.engines.port import Engine
    from bot.store.db import Store
    from bot.usecases.delivery import Notifier

log = logging.getLogger(__name__)

META_KEY = "self_update"
HELPER_LABEL = "dockwarden.selfupdate.for"
# The helper runs this module of the *new* image. The name is a contract between versions: a bot
# of any earlier version starts its successor's helper with it (bot/selfupdate.py).
HELPER_MODULE = "bot.selfupdate"
# Labels a compose project puts on its containers: the helper is no service of the project.
_FOREIGN_LABEL_PREFIXES = ("com.docker.compose.",)


class HelperState(StrEnum):
    """Where a self-update stands (the record's `state`, read by the next version too)."""

    RUNNING = "running"  # handed to the helper, no outcome yet
    DONE = "done"  # the helper wrote the outcome
    REPORTED = "reported"  # said in chat (or nothing to wait for): the record is spent


def helper_name(name: str) -> str:
    """The helper container's name for a bot container called `name`."""
    return f"{name}-dockwarden-selfupdate"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _helper_spec(
    old: ContainerInspect, image_id: str, digest: str, actor: str, made_for: Basis | None = None
) -> dict[str, Any]:
    """create_container arguments: the new image, the bot's env, mounts, network and user."""
    name = old.name
    host: Mapping[str, Any] = old.host_config
    labels = {k: v for k, v in old.labels.items() if not k.startswith(_FOREIGN_LABEL_PREFIXES)}
    labels.update({"dockwarden.enable": "false", HELPER_LABEL: name})
    host_config: dict[str, Any] = {"AutoRemove": True}
    for key in ("Binds", "Mounts", "NetworkMode", "ExtraHosts", "Dns", "SecurityOpt"):
        if host.get(key):
            host_config[key] = host[key]
    mounts = _volumes_not_named(old, host_config)
    if mounts:
        host_config["Mounts"] = [*host_config.get("Mounts", ()), *mounts]
    env = list(old.env)
    if host_config.get("NetworkMode") == "host" and not _engine_over_network(env):
        # On the host's network the helper would share the bot's hostname, and a bot starting
        # meanwhile would take the helper's update journal for one its own earlier life left
        # (and settle it under the helper's feet). Over the socket it needs no network at all.
        del host_config["NetworkMode"]
    return {
        "image": image_id,
        "name": helper_name(name),
        "entrypoint": ["python3", "-m", HELPER_MODULE],
        # What the update was found for goes along: a newer tag is applied, a stale one refused.
        "command": [name, digest, actor, json.dumps(asdict(made_for)) if made_for else ""],
        "environment": env,
        "labels": labels,
        "user": old.user,
        "host_config": host_config,
    }


def _volumes_not_named(
    old: ContainerInspect, host_config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The bot's volumes that its HostConfig does not name (the image's VOLUME /data when run
    without -v): the helper must open the very same store."""
    covered = {str(m.get("Target")) for m in host_config.get("Mounts") or ()}
    covered |= {b.split(":")[1] for b in host_config.get("Binds") or () if ":" in b}
    return [
        {"Type": "volume", "Source": m.name, "Target": m.destination, "ReadOnly": not m.rw}
        for m in old.mounts
        if m.type == "volume" and m.name and m.destination not in covered
    ]


def _create_body(spec: Mapping[str, Any]) -> JsonObject:
    """The engine API's create body for `_helper_spec`'s arguments."""
    return {
        "Image": spec["image"], "Entrypoint": spec["entrypoint"], "Cmd": spec["command"],
        "Env": spec["environment"], "Labels": spec["labels"], "User": spec["user"],
        "HostConfig": spec["host_config"],
    }


def _engine_over_network(env: list[str]) -> bool:
    """Whether DOCKER_HOST in a container's environment reaches the engine over the network."""
    for entry in env:
        key, _, value = entry.partition("=")
        if key == "DOCKER_HOST":
            return not value.startswith(("unix://", "npipe://")) and bool(value)
    return False


async def hand_over(
    engine: Engine,
    store: Store,
    old: ContainerInspect,
    ref: ImageRef,
    digest: str,
    old_digest: str | None,
    image_id: str,
    actor: str | None,
    made_for: Basis | None = None,
    *,
    key: str | None = None,
) -> NoReturn:
    """Start the helper that recreates the bot's own container; raises SelfUpdateHandedOver.

    `key` is the container's key (HOST/NAME with several hosts): its update is settled by it.
    """
    name = old.name
    record = {
        "container": name, "key": key or name, "image": str(ref), "old_digest": old_digest,
        "new_digest": digest, "actor": actor or "", "state": HelperState.RUNNING,
        "started_at": _now(),
    }
    await asyncio.to_thread(store.set_meta, META_KEY, json.dumps(record))
    spec = _helper_spec(old, image_id, digest, actor or "", made_for)
    try:
        with doing("creating the self-update helper"):
            created = await engine.create(spec["name"], _create_body(spec))
        with doing("starting the self-update helper"):
            await engine.start(created)
    except DockWardenError:
        # No helper runs: nothing for the next start to wait for (the failure is the answer).
        record["state"] = HelperState.REPORTED
        await asyncio.to_thread(store.set_meta, META_KEY, json.dumps(record))
        raise
    log.info("self-update of %s to %s handed to helper %s", name, digest, spec["name"])
    raise SelfUpdateHandedOver(
        f"DockWarden updates its own container {name} to {short_digest(digest)} through the "
        f"helper container {spec['name']}; the new version says here when it is up (or the "
        "old one, if the new one fails its health check and is rolled back)",
        helper=spec["name"],
    )


# -- the helper ----------------------------------------------------------------------------------


async def carry_out(
    settings: Settings, name: str, digest: str, actor: str, made_for: Basis | None = None
) -> UpdateResult:
    """In the helper: the ordinary update of the bot's container, its outcome recorded."""
    from bot.entrypoints.bootstrap import build_engine, build_registry, build_store, build_updater

    store = build_store(settings)
    try:
        engine = await asyncio.to_thread(build_engine, settings)
        try:
            async with build_registry(settings) as registry:
                updater = build_updater(settings, engine, registry, store)
                try:
                    result = await updater.update(name, expected_digest=digest,
                                                  actor=actor or None, made_for=made_for)
                except DockWardenError as exc:
                    result = UpdateResult.failed(name, str(exc), None, digest)
        finally:
            engine.close()
        _finish(store, result)
        return result
    finally:
        store.close()


def _finish(store: Store, result: UpdateResult) -> None:
    raw = store.get_meta(META_KEY)
    record: dict[str, Any] = json.loads(raw) if raw else {"container": result.container}
    record.update({
        "state": HelperState.DONE, "outcome": result.outcome.value, "message": result.message,
        "finished_at": _now(),
    })
    if result.old_digest:
        record["old_digest"] = result.old_digest
    store.set_meta(META_KEY, json.dumps(record))


def main(argv: list[str]) -> int:
    """`python -m bot.selfupdate NAME DIGEST ACTOR [BASIS]`, the helper container's command."""
    from bot.config.settings import load_settings
    from bot.entrypoints.cli import configure_logging

    if len(argv) not in (4, 5):
        print("usage: python -m bot.selfupdate NAME DIGEST ACTOR [BASIS]", file=sys.stderr)
        return 2
    _, name, digest, actor = argv[:4]
    made_for = Basis(**json.loads(argv[4])) if len(argv) == 5 and argv[4] else None
    try:
        settings = load_settings()
    except DockWardenError as exc:
        print(f"dockwarden self-update: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, 0)
    result = asyncio.run(carry_out(settings, name, digest, actor, made_for))
    print(json.dumps(result.as_json()), flush=True)
    return 0 if result.outcome is UpdateOutcome.UPDATED else 1


# -- the bot that comes up afterwards ------------------------------------------------------------


class SelfUpdateReport:
    """At start: wait for a self-update's outcome, settle its pending update, say it in chat."""

    def __init__(self, store: Store, notifier: Notifier, *, wait: float,
                 poll: float = 1.0) -> None:
        self.store = store
        self.notifier = notifier
        self.wait = wait
        self.poll = poll
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Look in the background when a self-update record is there (nothing otherwise)."""
        if self.store.get_meta(META_KEY):
            self._task = asyncio.create_task(self._report())

    async def stop(self) -> None:
        """Stop waiting (at shutdown); the record stays for the next start."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _report(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while True:
            record = json.loads(self.store.get_meta(META_KEY) or "{}")
            if record.get("state") != HelperState.RUNNING or loop.time() > deadline:
                break
            await asyncio.sleep(self.poll)
        if record.get("state") == HelperState.REPORTED or not record:
            return
        result = _result_of(record)
        self._settle(record, result)
        record["state"] = HelperState.REPORTED
        self.store.set_meta(META_KEY, json.dumps(record))
        from bot.chat.alert_texts import self_update_alert  # late: bot/chat imports bot/update

        await self.notifier.send([self_update_alert(result, record.get("actor") or None)])

    def _settle(self, record: Mapping[str, Any], result: UpdateResult) -> None:
        update = self.store.latest_update(str(record.get("key") or result.container))
        if update is None or update.remote_digest != record.get("new_digest"):
            return
        ok = result.outcome is UpdateOutcome.UPDATED
        state = UpdateState.APPLIED if ok else UpdateState.FAILED
        self.store.set_update_state(update.id, state,
                                    expect=(UpdateState.PENDING, UpdateState.APPROVED),
                                    detail=result.message)


def _result_of(record: Mapping[str, Any]) -> UpdateResult:
    name = str(record.get("container") or "dockwarden")
    if record.get("state") == HelperState.RUNNING:  # the helper never said: died, or very late
        return UpdateResult.failed(
            name,
            f"the self-update helper {helper_name(name)} did not report; this DockWarden "
            "runs the digest shown as old",
            record.get("old_digest"), record.get("new_digest"),
        )
    return UpdateResult(
        name, UpdateOutcome(record.get("outcome") or UpdateOutcome.FAILED),
        record.get("old_digest"), record.get("new_digest"), str(record.get("message") or ""),
    )
