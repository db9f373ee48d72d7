"""The self-update's two ends without an engine: the helper's spec, and the report at start."""

from __future__ import annotations

import json
from pathlib import Path

from bot.chat.messages import AlertKind
from bot.domain.model import Basis
from bot.engines.inspect import parse_container
from bot.store.db import Store
from bot.update.self_update import META_KEY, SelfUpdateReport, _helper_spec, helper_name
from bot.usecases.delivery import Notifier
from tests.unit.fakes import NEW, OLD, FakeAdapter

OLD_INSPECT = {
    "Id": "f" * 64,
    "Name": "/dockwarden",
    "Config": {
        "Env": ["TELEGRAM_BOT_TOKEN=1:x", "DOCKWARDEN_DB=/data/dockwarden.db"],
        "Labels": {"com.docker.compose.project": "home", "team": "ops"},
        "User": "",
    },
    "HostConfig": {
        "Binds": ["/var/run/docker.sock:/var/run/docker.sock", "dw-data:/data"],
        "NetworkMode": "home_default",
        "PortBindings": {"8080/tcp": [{"HostPort": "8080"}]},
        "RestartPolicy": {"Name": "unless-stopped"},
    },
}


def test_helper_runs_the_new_image_with_the_bots_env_mounts_and_network() -> None:
    spec = _helper_spec(
        parse_container(OLD_INSPECT), "sha256:" + "2" * 64, NEW, "telegram:1 (admin)"
    )
    assert spec["image"] == "sha256:" + "2" * 64
    assert spec["name"] == helper_name("dockwarden") == "dockwarden-dockwarden-selfupdate"
    assert spec["entrypoint"] == ["python3", "-m", "bot.selfupdate"]
    assert spec["command"] == ["dockwarden", NEW, "telegram:1 (admin)", ""]
    assert spec["environment"] == OLD_INSPECT["Config"]["Env"]
    host = spec["host_config"]
    assert host["Binds"] == OLD_INSPECT["HostConfig"]["Binds"]
    assert host["NetworkMode"] == "home_default"
    assert host["AutoRemove"] is True
    # Not the bot's published port (taken) nor its restart policy (it is meant to go).
    assert "PortBindings" not in host and "RestartPolicy" not in host
    assert spec["labels"] == {
        "team": "ops", "dockwarden.enable": "false", "dockwarden.selfupdate.for": "dockwarden",
    }


def _record(store: Store, **fields: object) -> None:
    record = {"container": "dockwarden", "image": "r/dockwarden:latest", "old_digest": OLD,
              "new_digest": NEW, "actor": "telegram:1 (admin)", "state": "running"}
    record.update(fields)
    store.set_meta(META_KEY, json.dumps(record))


async def test_the_bot_that_comes_up_waits_for_the_helper_then_says_it_is_up(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path / "state.db"))
    update, _ = store.add_update("dockwarden", "r/dockwarden:latest", OLD, NEW, "approve")
    _record(store)
    chat = FakeAdapter()
    report = SelfUpdateReport(store, Notifier([chat], store, retry_delay=0), wait=30, poll=0.01)
    report.start()
    _record(store, state="done", outcome="updated", message="dockwarden now runs it")
    assert report._task is not None
    await report._task
    [alert] = chat.alerts
    assert alert.kind is AlertKind.UPDATE_SUCCEEDED
    assert "DockWarden is up again on sha256:bbbbbbbbbbbb" in alert.text
    assert store.latest_update("dockwarden").state == "applied"  # type: ignore[union-attr]
    # Said once: the next start finds the record reported.
    again = SelfUpdateReport(store, Notifier([chat], store, retry_delay=0), wait=30, poll=0.01)
    again.start()
    if again._task is not None:
        await again._task
    assert len(chat.alerts) == 1
    store.close()


async def test_a_rolled_back_self_update_is_said_by_the_old_bot_and_the_update_failed(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path / "state.db"))
    store.add_update("dockwarden", "r/dockwarden:latest", OLD, NEW, "approve")
    _record(store, state="done", outcome="rolled_back", message="unhealthy")
    chat = FakeAdapter()
    report = SelfUpdateReport(store, Notifier([chat], store, retry_delay=0), wait=30, poll=0.01)
    report.start()
    assert report._task is not None
    await report._task
    [alert] = chat.alerts
    assert alert.kind is AlertKind.UPDATE_FAILED
    assert "DockWarden is up again on sha256:aaaaaaaaaaaa" in alert.text
    assert store.latest_update("dockwarden").state == "failed"  # type: ignore[union-attr]
    store.close()


async def test_a_helper_that_never_reports_is_said_as_failed_after_the_wait(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path / "state.db"))
    _record(store)
    chat = FakeAdapter()
    report = SelfUpdateReport(store, Notifier([chat], store, retry_delay=0), wait=0.05, poll=0.01)
    report.start()
    assert report._task is not None
    await report._task
    [alert] = chat.alerts
    assert alert.kind is AlertKind.UPDATE_FAILED and "did not report" in alert.text
    store.close()


def test_helper_of_a_bot_on_the_host_network_gets_a_hostname_of_its_own() -> None:
    on_host = {**OLD_INSPECT, "HostConfig": {**OLD_INSPECT["HostConfig"], "NetworkMode": "host"}}
    spec = _helper_spec(parse_container(on_host), "sha256:" + "2" * 64, NEW, "")
    assert "NetworkMode" not in spec["host_config"]  # the default bridge, its own hostname
    over_tcp = {**on_host, "Config": {**OLD_INSPECT["Config"],
                                      "Env": ["DOCKER_HOST=tcp://127.0.0.1:2375"]}}
    spec = _helper_spec(parse_container(over_tcp), "sha256:" + "2" * 64, NEW, "")
    assert spec["host_config"]["NetworkMode"] == "host"  # it needs the loopback to reach it


def test_helper_gets_the_bots_anonymous_data_volume_too() -> None:
    socket = "/var/run/docker.sock"
    anonymous = {**OLD_INSPECT, "HostConfig": {"NetworkMode": "bridge",
                                               "Binds": [f"{socket}:{socket}"]},
                 "Mounts": [
                     {"Type": "bind", "Source": "/var/run/docker.sock",
                      "Destination": "/var/run/docker.sock", "RW": True},
                     {"Type": "volume", "Name": "3f" * 32, "Destination": "/data", "RW": True},
                 ]}
    spec = _helper_spec(parse_container(anonymous), "sha256:" + "2" * 64, NEW, "")
    assert spec["host_config"]["Mounts"] == [
        {"Type": "volume", "Source": "3f" * 32, "Target": "/data", "ReadOnly": False},
    ]
    spec = _helper_spec(parse_container(OLD_INSPECT), "sha256:" + "2" * 64, NEW, "")
    assert "Mounts" not in spec["host_config"]


def test_what_the_update_was_found_for_goes_to_the_helper_whole() -> None:
    found_for = Basis("docker.io/acme/dockwarden:1.2", OLD, new_tag="1.3")
    spec = _helper_spec(parse_container(OLD_INSPECT), "sha256:" + "2" * 64, NEW, "", found_for)
    assert Basis(**json.loads(spec["command"][3])) == found_for  # a newer tag is applied too


async def test_with_several_hosts_the_self_update_settles_the_update_of_its_host_key(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path / "state.db"))
    store.add_update("nas/dockwarden", "r/dockwarden:latest", OLD, NEW, "approve")
    store.add_update("vps/dockwarden", "r/dockwarden:latest", OLD, NEW, "approve")
    _record(store, key="nas/dockwarden", state="done", outcome="updated", message="up")
    report = SelfUpdateReport(store, Notifier([FakeAdapter()], store, retry_delay=0), wait=30,
                              poll=0.01)
    report.start()
    assert report._task is not None
    await report._task
    assert store.latest_update("nas/dockwarden").state == "applied"  # type: ignore[union-attr]
    assert store.latest_update("vps/dockwarden").state == "pending"  # type: ignore[union-attr]
    store.close()
