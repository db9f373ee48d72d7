"""Inspect answers parsed once at the engine boundary: typed views, clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engines.inspect import parse_container, parse_image, parse_summary
from bot.errors import EngineError, MalformedInspect

CONTAINER: dict[str, Any] = {
    "Id": "c" * 64,
    "Name": "/web",
    "Image": "sha256:" + "a" * 64,
    "RestartCount": 2,
    "State": {
        "Running": True, "Restarting": False, "ExitCode": 0, "StartedAt": "t0",
        "Health": {"Status": "unhealthy", "Log": [{"ExitCode": 1, "Output": "boom\n"}]},
    },
    "Config": {
        "Image": "nginx:1.25", "Env": ["A=1"], "Labels": {"x": "y"}, "User": "app",
        "StopTimeout": 30, "Healthcheck": {"Test": ["CMD", "true"]},
    },
    "HostConfig": {
        "NetworkMode": "shop", "AutoRemove": False, "VolumesFrom": ["data:ro"],
        "Binds": ["/srv:/srv"], "Mounts": [{"Type": "volume", "Target": "/t", "ReadOnly": True}],
    },
    "Mounts": [{"Type": "volume", "Name": "v1", "Destination": "/d", "RW": False}],
    "NetworkSettings": {"Networks": {"shop": {
        "NetworkID": "n1", "Aliases": ["web"], "Links": None, "DriverOpts": None,
        "IPAMConfig": {"IPv4Address": "10.0.0.5"},
    }}},
}


def test_a_container_answer_becomes_a_typed_view() -> None:
    view = parse_container(CONTAINER)
    assert (view.id, view.name, view.image, view.image_id) == (
        "c" * 64, "web", "nginx:1.25", "sha256:" + "a" * 64)
    assert view.running and view.has_healthcheck and view.restart_count == 2
    assert view.state.health == "unhealthy" and view.state.health_log[0].output == "boom\n"
    assert view.stop_timeout == 30 and view.env == ("A=1",) and view.labels == {"x": "y"}
    assert view.network_mode == "shop" and view.volumes_from == ("data:ro",)
    assert view.host_mounts[0].destination == "/t" and not view.host_mounts[0].rw
    assert view.mounts[0].name == "v1" and not view.mounts[0].rw
    net = view.networks[0]
    assert (net.network, net.aliases, net.ipv4_address) == ("shop", ("web",), "10.0.0.5")


def test_the_kept_config_is_a_private_read_only_copy() -> None:
    raw: dict[str, Any] = {"Id": "c" * 64, "Config": {"Env": ["A=1"]}}
    view = parse_container(raw)
    raw["Config"]["Env"].append("B=2")
    assert view.config["Env"] == ["A=1"]
    with pytest.raises(TypeError):
        view.config["Env"] = []  # type: ignore[index]


def test_a_minimal_answer_reads_as_a_stopped_container_on_the_default_network() -> None:
    view = parse_container({"Id": "c" * 64})
    assert not view.running and view.network_mode == "default" and view.networks == ()
    assert not view.has_healthcheck and view.stop_timeout is None


def test_a_disabled_healthcheck_is_no_healthcheck() -> None:
    view = parse_container({"Id": "c", "Config": {"Healthcheck": {"Test": ["NONE"]}}})
    assert not view.has_healthcheck


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({}, "Id"),
        ({"Id": 5}, "Id"),
        ({"Id": "c", "Config": {"Env": "A=1"}}, "Config.Env"),
        ({"Id": "c", "State": {"Running": "yes"}}, "State.Running"),
        ({"Id": "c", "Config": []}, "Config"),
        ({"Id": "c", "NetworkSettings": {"Networks": {"n": {"Aliases": [1]}}}},
         "NetworkSettings.Networks.n.Aliases"),
        ({"Id": "c", "Mounts": [{"Destination": 3}]}, "Mounts[0].Destination"),
    ],
)
def test_a_malformed_container_answer_names_the_field(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(MalformedInspect) as caught:
        parse_container(raw)
    assert caught.value.key == key and key in str(caught.value)
    assert isinstance(caught.value, EngineError)


def test_an_answer_that_is_no_object_is_malformed() -> None:
    with pytest.raises(MalformedInspect, match="not an object"):
        parse_container(["c"])


def test_an_image_answer_becomes_a_typed_view() -> None:
    view = parse_image({"Id": "sha256:" + "a" * 64, "RepoTags": ["x:1"],
                        "RepoDigests": ["x@sha256:" + "b" * 64], "Config": {"Cmd": ["a"]}})
    assert view.repo_tags == ("x:1",) and view.repo_digests[0].startswith("x@")
    assert view.config["Cmd"] == ["a"]
    with pytest.raises(MalformedInspect, match="RepoTags"):
        parse_image({"Id": "sha256:1", "RepoTags": "x:1"})


def test_a_list_entry_becomes_a_summary() -> None:
    view = parse_summary({"Id": "c", "Names": ["/a"], "HostConfig": {"NetworkMode": "host"}})
    assert view.names == ("/a",) and view.network_mode == "host"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["Name", "Image", "State", "Config", "HostConfig", "Mounts",
                     "NetworkSettings", "RestartCount"]),
    json_values,
))
def test_any_json_answer_parses_or_raises_malformed_inspect(raw: dict[str, Any]) -> None:
    try:
        parse_container({"Id": "c" * 64, **raw})
    except MalformedInspect:
        pass
