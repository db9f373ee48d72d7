"""The replacement's steps, rollback and settling, on the in-memory engine (no Docker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.engines.inspect import ContainerInspect, parse_image
from bot.engines.port import Engine
from bot.store.db import Store
from bot.store.journal import JournalEntry
from bot.update.replace import STEPS, Replacer, aside_name
from bot.update.spec import CreateSpec, build_create_spec
from tests.unit.fake_engine import FakeContainer, FakeEngine

REPO = "registry.test/shop/web"
OLD_DIGEST = "sha256:" + "1" * 64
NEW_DIGEST = "sha256:" + "2" * 64
CHECK = {"Test": ["CMD", "/ping"]}


class JournalledStore(Store):
    """The real SQLite store, remembering each journal write in order."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.writes: list[str] = []

    def journal_begin(self, container: str, step: str, data: dict[str, Any]) -> int:
        self.writes.append(step)
        return super().journal_begin(container, step, data)

    def journal_step(self, journal_id: int, step: str, **data: Any) -> None:
        self.writes.append(step)
        super().journal_step(journal_id, step, **data)

    def journal_finish(self, journal_id: int, outcome: str) -> None:
        self.writes.append(f"finish:{outcome}")
        super().journal_finish(journal_id, outcome)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JournalledStore]:
    db = JournalledStore(tmp_path / "state.db")
    yield db
    db.close()


@pytest.fixture
def engine() -> FakeEngine:
    fake = FakeEngine()
    fake.add_image(f"{REPO}:1", digest=OLD_DIGEST, config={"Healthcheck": CHECK})
    fake.publish(REPO, NEW_DIGEST, config={"Healthcheck": CHECK})
    return fake


def replacer(
    engine: Engine, store: Store, after_step: Callable[[str], None] | None = None
) -> Replacer:
    return Replacer(engine, store, health_timeout=5, grace_period=0, after_step=after_step)


async def prepared(engine: FakeEngine, **config: Any) -> tuple[FakeContainer, ContainerInspect,
                                                                CreateSpec]:
    """A running web container and the spec that recreates it on the new digest."""
    web = engine.run("web", f"{REPO}:1", Env=["A=1"], **config)
    pulled = await engine.pull(REPO, NEW_DIGEST, None)
    await engine.tag(pulled.id, REPO, "1")
    old = await engine.inspect_container("web")
    assert old is not None
    image = parse_image(engine.images[web.image_id])
    return web, old, build_create_spec(old, image, image=f"{REPO}:1")


async def test_a_healthy_replacement_removes_the_old_container_and_journals_each_step(
    engine: FakeEngine, store: JournalledStore
) -> None:
    web, old, spec = await prepared(engine, Healthcheck=CHECK)
    done: list[str] = []
    replaced = await replacer(engine, store, done.append).replace(old, spec, {"kind": "update"})
    assert replaced.ok and "reports healthy" in replaced.detail
    new = engine.named("web")
    assert new is not None and new.id == replaced.new_id and new.running
    assert web.id not in engine.containers
    assert new.config["Env"] == ["A=1"]
    # Each step journalled before it is taken, and taken in the documented order.
    assert store.writes == [*STEPS[:-1], "finish:updated"]
    assert done == list(STEPS[:-1])
    assert store.journal_open() == []


async def test_a_failed_start_puts_the_old_container_back_running_under_its_name(
    engine: FakeEngine, store: JournalledStore
) -> None:
    web, old, spec = await prepared(engine)
    engine.refuse("start", "port is already allocated", when=lambda ref: ref != web.id)
    replaced = await replacer(engine, store).replace(old, spec, {"kind": "update"})
    assert not replaced.ok and replaced.new_id is None
    assert replaced.detail.startswith("starting the new container: port is already allocated")
    assert "removed the new container" in replaced.detail
    assert f"renamed {aside_name('web', web.id)} back to web" in replaced.detail
    assert list(engine.containers) == [web.id] and web.name == "web" and web.running
    assert store.writes == ["stop", "rename", "create", "connect", "start", "rollback",
                            "finish:rolled_back"]


async def test_an_unhealthy_new_container_is_rolled_back_with_the_last_probe(
    engine: FakeEngine, store: JournalledStore
) -> None:
    web, old, spec = await prepared(engine, Healthcheck=CHECK)

    def unhealthy(container: FakeContainer) -> None:
        container.health = "unhealthy" if container.id != web.id else None

    engine.on_start = unhealthy
    replaced = await replacer(engine, store).replace(old, spec, {"kind": "update"})
    assert not replaced.ok
    assert "reports unhealthy (last check exit code 1: probe)" in replaced.detail
    assert list(engine.containers) == [web.id] and web.name == "web" and web.running
    assert store.writes[-3:] == ["health", "rollback", "finish:rolled_back"]


async def test_a_new_container_that_exits_is_rolled_back(
    engine: FakeEngine, store: JournalledStore
) -> None:
    web, old, spec = await prepared(engine)

    def exits(container: FakeContainer) -> None:
        if container.id != web.id:
            container.running, container.exit_code = False, 3

    engine.on_start = exits
    replaced = await replacer(engine, store).replace(old, spec, {"kind": "update"})
    assert not replaced.ok and "exited with code 3" in replaced.detail
    assert engine.named("web") is web and web.running


async def test_an_old_container_that_cannot_be_removed_leaves_the_update_done_and_says_so(
    engine: FakeEngine, store: JournalledStore
) -> None:
    web, old, spec = await prepared(engine)
    engine.refuse("remove_container", "device or resource busy", when=lambda ref: ref == web.id)
    replaced = await replacer(engine, store).replace(old, spec, {"kind": "update"})
    assert replaced.ok and replaced.new_id is not None
    aside = aside_name("web", web.id)
    assert (f"the old container {aside} could not be removed (removing the old container: "
            "device or resource busy)") in replaced.detail
    assert web.name == aside and not web.running
    assert store.writes[-2:] == ["remove_old", "finish:updated"]


async def test_keep_open_leaves_the_journal_at_dependents_until_finished(
    engine: FakeEngine, store: JournalledStore
) -> None:
    _, old, spec = await prepared(engine)
    replace = replacer(engine, store)
    replaced = await replace.replace(old, spec, {"kind": "update"}, keep_open=True)
    assert replaced.ok and [e.step for e in store.journal_open()] == ["dependents"]
    assert replaced.journal_id in replace.active
    await replace.finish(replaced.journal_id, "updated")
    assert store.journal_open() == [] and not replace.active


async def interrupted_after(
    engine: FakeEngine, store: Store, step: str
) -> tuple[FakeContainer, JournalEntry]:
    """A replacement of web whose process died once `step` was done; its open journal."""

    def dies(done: str) -> None:
        if done == step:
            raise KeyboardInterrupt  # the process dies: the journal stays where it was

    web, old, spec = await prepared(engine)
    with pytest.raises(KeyboardInterrupt):
        await replacer(engine, store, after_step=dies).replace(old, spec, {"kind": "update"})
    [entry] = store.journal_open()
    return web, entry


async def test_a_journal_left_at_health_with_a_healthy_new_container_settles_as_updated(
    engine: FakeEngine, store: JournalledStore
) -> None:
    web, entry = await interrupted_after(engine, store, "health")
    assert entry.step == "health"
    outcome, text = await replacer(engine, store).settle(entry)
    assert outcome == "updated" and "removed the old one" in text
    assert web.id not in engine.containers and engine.named("web") is not None


async def test_a_journal_left_at_create_settles_by_restoring_the_old_container(
    engine: FakeEngine, store: JournalledStore
) -> None:
    web, entry = await interrupted_after(engine, store, "create")
    outcome, text = await replacer(engine, store).settle(entry)
    assert outcome == "rolled_back" and "removed the new container" in text
    assert list(engine.containers) == [web.id] and web.name == "web" and web.running


async def test_a_restore_without_the_old_container_says_it_is_gone(
    engine: FakeEngine, store: JournalledStore
) -> None:
    web, _, _ = await prepared(engine)
    del engine.containers[web.id]
    journal = {"name": "web", "old_id": web.id, "aside": aside_name("web", web.id)}
    text = await replacer(engine, store).restore(journal, None)
    assert f"the old container {web.id[:12]} no longer exists" in text
