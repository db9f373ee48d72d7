"""Recreate arguments from inspect data: what is carried over, what the new image decides."""

from __future__ import annotations

import copy
from typing import Any

from bot.engines.inspect import ContainerInspect, parse_container, parse_image
from bot.update.spec import (
    CreateSpec,
    anonymous_volumes,
    build_create_spec,
    legacy_links,
    shares_network_of,
    strip_image_defaults,
)

OLD_ID = "1696d3929a4cdbe9f2d6e3a6b8686398e021646dd86c0195c43b75a8a79bffa1"
ANON = "719d220f025da048a7f4d8b018b8d33aae7dbb88e876448fb40e2b8f91b2231d"
ANON_MOUNT = "1695ee00da1015736676f5ea8ce6a03074b8c9583a31d3844a89ac6187bbbf8e"
IMAGE_VOLUME = "5d5b9c3ea6c8d4e1f0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081"

OLD_IMAGE: dict[str, Any] = {
    "Id": "sha256:" + "a" * 64,
    "Config": {
        "Env": ["PATH=/usr/bin:/bin", "APP_MODE=v1", "GREETING=hello"],
        "Cmd": ["/app", "serve"],
        "Entrypoint": ["/entry.sh"],
        "Labels": {"org.opencontainers.image.version": "1", "vendor": "acme"},
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "User": "app",
        "StopSignal": "SIGQUIT",
        "Healthcheck": {"Test": ["CMD", "/app", "ping"], "Interval": 1000000000},
    },
}


def inspect_data(**config_overrides: Any) -> dict[str, Any]:
    """`docker inspect` of a compose-made container on a user network, trimmed."""
    config: dict[str, Any] = {
        "Hostname": OLD_ID[:12],
        "Domainname": "",
        "User": "app",
        "AttachStdin": False,
        "Tty": False,
        "OpenStdin": False,
        "ExposedPorts": {"80/tcp": {}, "9090/tcp": {}},
        "Env": ["TZ=Europe/Paris", "PATH=/usr/bin:/bin", "APP_MODE=v1", "GREETING=hello"],
        "Cmd": ["/app", "serve"],
        "Image": "127.0.0.1:5000/shop/web:1",
        "Volumes": {"/data": {}, "/cache": {}},
        "WorkingDir": "/srv",
        "Entrypoint": ["/entry.sh"],
        "OnBuild": None,
        "Labels": {
            "com.docker.compose.project": "shop",
            "com.docker.compose.service": "web",
            "org.opencontainers.image.version": "1",
            "vendor": "someone-else",
        },
        "StopSignal": "SIGQUIT",
        "StopTimeout": 30,
        "Healthcheck": {"Test": ["CMD", "/app", "ping"], "Interval": 1000000000},
    }
    config.update(config_overrides)
    return {
        "Id": OLD_ID,
        "Name": "/shop-web-1",
        "Image": OLD_IMAGE["Id"],
        "Config": config,
        "HostConfig": {
            "Binds": ["shop_db:/named", "/srv/conf:/etc/app:ro"],
            "NetworkMode": "shop_default",
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]},
            "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
            "Links": ["/db:/shop-web-1/database"],
            "Mounts": [{"Type": "volume", "Target": "/anon2"}],
            "VolumesFrom": None,
            "LogConfig": {"Type": "json-file", "Config": {}},
        },
        "Mounts": [
            {"Type": "volume", "Name": "shop_db", "Destination": "/named", "RW": True},
            {"Type": "bind", "Source": "/srv/conf", "Destination": "/etc/app", "RW": False},
            {"Type": "volume", "Name": ANON_MOUNT, "Destination": "/anon2", "RW": True},
            {"Type": "volume", "Name": ANON, "Destination": "/cache", "RW": True},
            {"Type": "volume", "Name": IMAGE_VOLUME, "Destination": "/data", "RW": True},
        ],
        "NetworkSettings": {
            "Networks": {
                "shop_default": {
                    "IPAMConfig": {"IPv4Address": "172.29.0.10"},
                    "Links": None,
                    "Aliases": ["shop-web-1", "web", OLD_ID[:12]],
                    "NetworkID": "7abbb7137c32",
                    "IPAddress": "172.29.0.10",
                    "MacAddress": "02:42:ac:1d:00:0a",
                    "DriverOpts": None,
                },
                "shop_back": {
                    "IPAMConfig": None,
                    "Links": ["cache:kv"],
                    "Aliases": ["web-back", OLD_ID[:12]],
                    "NetworkID": "8bcccc",
                    "DriverOpts": None,
                },
            }
        },
    }


def spec_of(container: dict[str, Any], **options: Any) -> CreateSpec:
    """The create spec of an inspect answer, on the old image above."""
    return build_create_spec(parse_container(container), parse_image(OLD_IMAGE), **options)


def spec_body(**config_overrides: Any) -> dict[str, Any]:
    container = inspect_data(**config_overrides)
    return spec_of(container, image="127.0.0.1:5000/shop/web:1").body


def test_env_from_the_old_image_is_dropped_and_explicit_env_kept() -> None:
    assert spec_body()["Env"] == ["TZ=Europe/Paris"]


def test_env_override_of_an_image_variable_is_kept() -> None:
    body = spec_body(Env=["APP_MODE=debug", "PATH=/usr/bin:/bin", "GREETING=hello"])
    assert body["Env"] == ["APP_MODE=debug"]


def test_labels_equal_to_the_old_image_are_dropped_compose_labels_kept() -> None:
    assert spec_body()["Labels"] == {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "vendor": "someone-else",
    }


def test_cmd_entrypoint_workdir_user_healthcheck_stopsignal_of_the_image_are_dropped() -> None:
    body = spec_body()
    for key in ("Cmd", "Entrypoint", "WorkingDir", "User", "Healthcheck", "StopSignal"):
        assert key not in body, key


def test_explicit_command_is_kept_and_the_new_image_entrypoint_applies() -> None:
    body = spec_body(Cmd=["/app", "migrate"])
    assert body["Cmd"] == ["/app", "migrate"]
    assert "Entrypoint" not in body


def test_cmd_beside_an_explicit_entrypoint_is_kept_even_when_equal_to_the_image() -> None:
    body = spec_body(Entrypoint=["/bin/sh", "-c"])
    assert body["Entrypoint"] == ["/bin/sh", "-c"]
    assert body["Cmd"] == ["/app", "serve"]


def test_explicit_user_workdir_and_healthcheck_are_kept() -> None:
    check = {"Test": ["CMD-SHELL", "true"], "Interval": 2000000000}
    body = spec_body(User="0:0", WorkingDir="/tmp", Healthcheck=check)
    assert (body["User"], body["WorkingDir"], body["Healthcheck"]) == ("0:0", "/tmp", check)


def test_exposed_ports_and_volumes_of_the_image_are_dropped_others_kept() -> None:
    body = spec_body()
    assert body["ExposedPorts"] == {"9090/tcp": {}}
    assert body["Volumes"] == {"/cache": {}}


def test_stop_timeout_and_image_reference_are_carried() -> None:
    body = spec_body()
    assert body["StopTimeout"] == 30
    assert body["Image"] == "127.0.0.1:5000/shop/web:1"


def test_default_hostname_is_dropped_but_an_explicit_one_kept() -> None:
    assert "Hostname" not in spec_body()
    assert spec_body(Hostname="web.local")["Hostname"] == "web.local"


def test_host_config_keeps_ports_restart_policy_and_binds() -> None:
    host = spec_body()["HostConfig"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["Binds"][:2] == ["shop_db:/named", "/srv/conf:/etc/app:ro"]


def test_anonymous_volumes_are_mounted_again_by_name() -> None:
    host = spec_body()["HostConfig"]
    assert f"{ANON}:/cache" in host["Binds"]
    assert f"{IMAGE_VOLUME}:/data" in host["Binds"]
    assert host["Mounts"] == [{"Type": "volume", "Target": "/anon2", "Source": ANON_MOUNT}]


def test_anonymous_volume_detection_ignores_named_volumes_and_binds() -> None:
    found = {m.destination for m in anonymous_volumes(parse_container(inspect_data()))}
    assert found == {"/anon2", "/cache", "/data"}


def test_volumes_from_destinations_are_not_mounted_twice() -> None:
    container = inspect_data()
    spec = spec_of(container, image="x:1", shared_destinations={"/cache"})
    assert not any(b.endswith(":/cache") for b in spec.body["HostConfig"]["Binds"])


def test_read_only_anonymous_volume_stays_read_only() -> None:
    container = inspect_data()
    container["Mounts"][3]["RW"] = False
    assert f"{ANON}:/cache:ro" in spec_of(container, image="x:1").body["HostConfig"]["Binds"]


def test_legacy_links_become_create_form() -> None:
    assert legacy_links(["/db:/shop-web-1/database"]) == ["db:database"]
    assert spec_body()["HostConfig"]["Links"] == ["db:database"]


def test_primary_network_keeps_aliases_and_static_ip_without_the_short_id() -> None:
    endpoints = spec_body()["NetworkingConfig"]["EndpointsConfig"]
    assert endpoints == {
        "shop_default": {
            "IPAMConfig": {"IPv4Address": "172.29.0.10"},
            "Aliases": ["shop-web-1", "web"],
        }
    }


def test_other_networks_are_connected_after_create_with_aliases_and_links() -> None:
    spec = spec_of(inspect_data(), image="x:1")
    assert [n.network for n in spec.extra_networks] == ["shop_back"]
    back = spec.extra_networks[0]
    assert back.aliases == ("web-back",) and back.links == ("cache:kv",)
    assert back.ipv4_address is None


def test_default_bridge_gets_no_endpoint_config() -> None:
    container = inspect_data()
    container["HostConfig"]["NetworkMode"] = "default"
    container["NetworkSettings"]["Networks"] = {
        "bridge": {"IPAMConfig": None, "Aliases": None, "NetworkID": "b1"}
    }
    spec = spec_of(container, image="x:1")
    assert "NetworkingConfig" not in spec.body and spec.extra_networks == ()


def test_network_namespace_sharer_points_at_the_new_container_and_drops_conflicts() -> None:
    container = inspect_data()
    container["HostConfig"]["NetworkMode"] = "container:" + "b" * 64
    container["Config"]["Hostname"] = "b" * 12
    container["Config"]["MacAddress"] = "02:42:ac:11:00:02"
    spec = spec_of(container, image="x:1", network_container="c" * 64)
    assert spec.body["HostConfig"]["NetworkMode"] == "container:" + "c" * 64
    for key in ("Hostname", "MacAddress", "ExposedPorts", "NetworkingConfig"):
        assert key not in spec.body, key
    assert spec.extra_networks == ()


def test_shares_network_of_matches_full_id_or_name() -> None:
    target = parse_container({"Id": "b" * 64, "Name": "/vpn"})

    def sharer(mode: str) -> ContainerInspect:
        return parse_container({"Id": "d" * 64, "HostConfig": {"NetworkMode": mode}})

    for mode in ("container:" + "b" * 64, "container:vpn", "container:" + "b" * 12):
        assert shares_network_of(sharer(mode), target)
    assert not shares_network_of(sharer("container:other"), target)
    assert not shares_network_of(sharer("bridge"), target)


def test_building_a_spec_leaves_the_inspect_data_untouched() -> None:
    container = inspect_data()
    before = copy.deepcopy(container)
    view = parse_container(container)
    kept = copy.deepcopy(dict(view.config)), copy.deepcopy(dict(view.host_config))
    build_create_spec(view, parse_image(OLD_IMAGE), image="x:1")
    assert container == before
    # The view's documents nest mutable JSON: building must copy, not edit them.
    assert (dict(view.config), dict(view.host_config)) == kept


def test_strip_image_defaults_with_an_image_that_sets_nothing() -> None:
    config = {"Env": ["A=1"], "Cmd": ["sleep", "1"], "Labels": {"x": "y"}, "Image": "i"}
    out = strip_image_defaults(config, {"Env": None, "Cmd": None, "Labels": None})
    assert out == {"Env": ["A=1"], "Cmd": ["sleep", "1"], "Labels": {"x": "y"},
                   "ExposedPorts": None, "Volumes": None}
