"""Compose's labels on a recreated container, and the containers that depend on it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.chat.alert_texts import result_alert
from bot.chat.messages import AlertKind
from bot.check.checker import decide, plan_workload
from bot.config.settings import Settings
from bot.domain.model import Policy, UpdateOutcome, UpdateResult, Workload, compose_of
from bot.domain.reference import ImageRef
from bot.engines.inspect import parse_container, parse_image
from bot.entrypoints.bootstrap import build_core
from bot.store.db import Store
from bot.update.compose import (
    carry_compose_labels,
    depends_on,
    followers,
    links_to,
)
from bot.update.links import renamed_links
from bot.update.spec import build_create_spec
from bot.update.updater import Updater
from tests.unit.fake_engine import FakeEngine
from tests.unit.fakes import FakeAdapter, FakeChecker, FakeUpdater, cmd, outdated, report

OLD_IMAGE = "sha256:" + "a" * 64
NEW_IMAGE = "sha256:" + "b" * 64
REPO = "registry.test/shop/web"
NEW_DIGEST = "sha256:" + "2" * 64


def compose_labels(service: str, **extra: str) -> dict[str, str]:
    """The labels Compose 2.26 writes on a container of project `shop`."""
    return {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": service,
        "com.docker.compose.config-hash": "c0ffee",
        "com.docker.compose.image": OLD_IMAGE,
        "com.docker.compose.depends_on": "",
        "com.docker.compose.version": "2.26.1",
        **extra,
    }


class Registry:
    """Every repository's current digest is NEW_DIGEST."""

    async def remote_digest(self, ref: ImageRef) -> str:
        return NEW_DIGEST


def updater_on(engine: FakeEngine, store: Store) -> Updater:
    """An updater of the fake engine's containers, NEW_DIGEST being every image's newest."""
    return Updater(engine, Registry(), store,  # type: ignore[arg-type]
                   health_timeout=5, grace_period=0)


def test_compose_image_label_names_the_new_image_and_the_config_hash_stays() -> None:
    labels = carry_compose_labels(compose_labels("web"), NEW_IMAGE)
    assert labels["com.docker.compose.image"] == NEW_IMAGE
    assert labels["com.docker.compose.config-hash"] == "c0ffee"


def test_a_container_compose_did_not_make_gets_no_compose_label() -> None:
    assert carry_compose_labels({"team": "a"}, NEW_IMAGE) == {"team": "a"}


def test_create_spec_on_a_new_image_writes_compose_image_label_for_it() -> None:
    container = parse_container({
        "Id": "1" * 64, "Name": "/shop-web-1", "Image": OLD_IMAGE,
        "Config": {"Image": f"{REPO}:1", "Labels": compose_labels("web")},
        "HostConfig": {"NetworkMode": "shop_default"},
    })
    image = parse_image({"Id": OLD_IMAGE, "Config": {"Labels": {"vendor": "acme"}}})
    spec = build_create_spec(container, image, image=f"{REPO}:1", image_id=NEW_IMAGE)
    labels = spec.body["Labels"]
    assert isinstance(labels, dict)
    assert labels["com.docker.compose.image"] == NEW_IMAGE
    assert labels["com.docker.compose.service"] == "web"


def test_depends_on_label_names_the_services_before_their_conditions() -> None:
    label = "web:service_started:false,db:service_healthy:true"
    assert depends_on({"com.docker.compose.depends_on": label}) == {"web", "db"}
    assert depends_on({"com.docker.compose.depends_on": ""}) == set()
    assert compose_of(compose_labels("web")) == "shop/web"
    assert compose_of({"team": "a"}) is None


def test_network_links_name_their_target() -> None:
    on_network = parse_container({"Id": "3" * 64, "Name": "/app", "NetworkSettings": {
        "Networks": {"shop_default": {"Links": ["shop-web-1:backend"]}}}})
    assert links_to(on_network, "shop-web-1")
    assert not links_to(on_network, "shop-db-1")


async def test_followers_are_the_same_projects_dependents_and_linkers_only() -> None:
    engine = FakeEngine()
    engine.add_image(f"{REPO}:1", digest="sha256:" + "1" * 64)
    web = engine.run("shop-web-1", f"{REPO}:1", Labels=compose_labels("web"))
    engine.run("shop-app-1", f"{REPO}:1", Labels=compose_labels(
        "app", **{"com.docker.compose.depends_on": "web:service_started:false"}))
    engine.run("shop-db-1", f"{REPO}:1", Labels=compose_labels("db"))
    other = compose_labels("app", **{"com.docker.compose.project": "blog",
                                     "com.docker.compose.depends_on": "web:service_started:false"})
    engine.run("blog-app-1", f"{REPO}:1", Labels=other)
    target = parse_container(web.inspect())

    found = await followers(engine, target)

    assert [c.name for c in found] == ["shop-app-1"]
    assert await followers(engine, target, skip=["shop-app-1"]) == []


async def test_an_update_restarts_the_dependent_after_the_new_container_and_says_so(
    store: Store,
) -> None:
    engine = FakeEngine()
    engine.add_image(f"{REPO}:1", digest="sha256:" + "1" * 64)
    engine.publish(REPO, NEW_DIGEST)
    engine.run("shop-web-1", f"{REPO}:1", Labels=compose_labels("web"))
    engine.run("shop-app-1", f"{REPO}:1", Labels=compose_labels(
        "app", **{"com.docker.compose.depends_on": "web:service_started:false"}))

    updater = updater_on(engine, store)
    result = await updater.update("shop-web-1")

    assert result.outcome is UpdateOutcome.UPDATED, result.message
    assert "restarted shop-app-1, which depends on it" in result.message
    web = engine.named("shop-web-1")
    assert web is not None
    assert web.config["Labels"]["com.docker.compose.image"] == web.image_id != OLD_IMAGE
    started = [target for method, target in engine.calls if method in ("start", "restart")]
    assert started[-1] == engine.named("shop-app-1").id  # type: ignore[union-attr]


def test_an_update_found_on_a_compose_container_names_its_project_and_service() -> None:
    workload = Workload("shop-web-1", "1" * 64, f"{REPO}:1", OLD_IMAGE,
                        (f"{REPO}@sha256:{'1' * 64}",), labels=compose_labels("web"))
    plan = plan_workload(workload, label_enable=False, default_policy=Policy.APPROVE)
    assert decide(plan, NEW_DIGEST).compose == "shop/web"


async def test_update_alert_and_status_show_the_compose_project_and_service(
    store: Store,
) -> None:
    settings = Settings(_env_file=None, telegram_admin_ids=(1,))  # type: ignore[call-arg]
    found = replace(outdated("shop-web-1"), compose="shop/web")
    adapter = FakeAdapter()
    core = build_core(settings, store, FakeChecker(report(found)), FakeUpdater(store=store),
                      [adapter], retry_delay=0)
    await core.runner.run()

    [alert] = [a for a in adapter.alerts if a.kind is AlertKind.UPDATE_AVAILABLE]
    fields = {f.name: f.value for f in alert.fields}
    assert (fields["Compose project"], fields["Compose service"]) == ("shop", "web")
    status = (await core.router.dispatch(cmd("status"))).text
    assert "shop-web-1 (compose shop/web)" in status


def test_links_moved_to_the_old_container_point_at_the_name_again() -> None:
    links = ["/web-dockwarden-old-0123456789ab:/app/backend", "/db:/app/db"]
    assert renamed_links(links, "web-dockwarden-old-0123456789ab", "web") == [
        "/web:/app/backend", "/db:/app/db"]


@pytest.mark.parametrize("outcome", [UpdateOutcome.UPDATED, UpdateOutcome.ROLLED_BACK,
                                     UpdateOutcome.FAILED])
def test_the_result_alert_names_the_compose_project_and_service(outcome: UpdateOutcome) -> None:
    result = UpdateResult("shop-web-1", outcome, OLD_IMAGE, NEW_DIGEST, "why", compose="shop/web")
    fields = {f.name: f.value for f in result_alert(result, update_id=None, actor=None).fields}
    assert (fields["Compose project"], fields["Compose service"]) == ("shop", "web")
    plain = replace(result, compose=None)
    assert "Compose project" not in {f.name for f in
                                     result_alert(plain, update_id=None, actor=None).fields}


async def test_an_update_result_carries_the_compose_project_and_service(store: Store) -> None:
    engine = FakeEngine()
    engine.add_image(f"{REPO}:1", digest="sha256:" + "1" * 64)
    engine.publish(REPO, NEW_DIGEST)
    engine.run("shop-web-1", f"{REPO}:1", Labels=compose_labels("web"))
    engine.run("solo", f"{REPO}:1")

    updater = updater_on(engine, store)
    result = await updater.update("shop-web-1")
    assert result.outcome is UpdateOutcome.UPDATED and result.compose == "shop/web"
    engine.refuse("create", "no space left on device")
    assert (await updater.update("solo")).compose is None
