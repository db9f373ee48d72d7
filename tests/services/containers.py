"""Containers (and networks, volumes) made for one test, labelled and removed afterwards."""

from __future__ import annotations

import base64
import itertools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors

from tests.services.engine import session_labels

_counter = itertools.count(1)


class ContainerFactory:
    """Runs containers labelled with the session and removes them (and their volumes) later."""

    def __init__(self, client: docker.DockerClient,
                 run_defaults: Mapping[str, Any] | None = None) -> None:
        self.client = client
        # What every run() on this engine needs unless a test says otherwise (Podman: ulimits).
        self.run_defaults = dict(run_defaults or {})
        self.created: list[Any] = []
        self.networks: list[Any] = []
        self.volumes: list[Any] = []
        # Containers that existed before this test (e.g. a module's) are not ours to remove.
        self._before = {c.id for c in self._labelled()}

    def _labelled(self) -> list[Any]:
        label = ",".join(f"{k}={v}" for k, v in session_labels().items())
        # Low-level list: the model list inspects each one and races concurrent removals.
        return [_Ref(c["Id"], self.client) for c in
                self.client.api.containers(all=True, filters={"label": label})]

    def _labels(self, given: Any) -> dict[str, str]:
        labels = dict(given or {})
        labels.update(session_labels())
        return labels

    def unique_name(self, stem: str = "dwt") -> str:
        """A container name no other session or test uses."""
        return f"{stem}-{os.getpid()}-{next(_counter)}"

    def run(self, image: str, name: str | None = None, **kwargs: Any) -> Any:
        """`docker run -d` with the session label; returns the docker Container."""
        kwargs.setdefault("detach", True)
        for key, value in self.run_defaults.items():
            kwargs.setdefault(key, value)
        kwargs["labels"] = self._labels(kwargs.get("labels"))
        container = self.client.containers.run(image, name=name or self.unique_name(), **kwargs)
        self.created.append(container)
        return container

    def network(self, name: str | None = None, **kwargs: Any) -> Any:
        """A labelled network removed at teardown."""
        kwargs["labels"] = self._labels(kwargs.get("labels"))
        net = self.client.networks.create(name or self.unique_name("dwt-net"), **kwargs)
        self.networks.append(net)
        return net

    def volume(self, name: str | None = None, **kwargs: Any) -> Any:
        """A labelled volume removed at teardown."""
        kwargs["labels"] = self._labels(kwargs.get("labels"))
        vol = self.client.volumes.create(name or self.unique_name("dwt-vol"), **kwargs)
        self.volumes.append(vol)
        return vol

    def cleanup(self) -> None:
        """Remove this test's containers, networks and volumes.

        Containers are found by label too, not only by what run() returned: code under test that
        recreates a container copies its labels, and the replacement must go as well.
        """
        doomed = {c.id: c for c in self.created}
        doomed.update({c.id: c for c in self._labelled() if c.id not in self._before})
        for c in doomed.values():
            _quietly(lambda c=c: c.remove(force=True, v=True))
        for net in self.networks:
            _quietly(net.remove)
        for vol in self.volumes:
            _quietly(lambda vol=vol: vol.remove(force=True))


class _Ref:
    """Just enough of a Container to remove it."""

    def __init__(self, cid: str, client: docker.DockerClient) -> None:
        self.id = cid
        self._client = client

    def remove(self, **kwargs: Any) -> None:
        self._client.api.remove_container(self.id, **kwargs)


def _quietly(action: Any) -> None:
    try:
        action()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code not in (404, 409):
            raise


def write_docker_config(directory: Path, auths: Mapping[str, Mapping[str, str]],
                        **extra: Any) -> str:
    """Write DIR/config.json with auths ({host: {username, password} or a raw entry}); -> DIR."""
    entries: dict[str, dict[str, str]] = {}
    for host, entry in auths.items():
        raw = dict(entry)
        if "username" in raw and "password" in raw and "auth" not in raw:
            pair = f"{raw.pop('username')}:{raw.pop('password')}".encode()
            raw["auth"] = base64.b64encode(pair).decode()
        entries[host] = raw
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"auths": entries, **extra}, indent=2))
    return str(directory)


class OwnNetwork:
    """The session's container factory, with containers on a network of the test's own.

    Keeps these tests off docker0, which other engines started on the same host may take down.
    """

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.default_network: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.factory, name)

    def run(self, image: str, name: str | None = None, **kwargs: Any) -> Any:
        if "network" not in kwargs and "network_mode" not in kwargs:
            if self.default_network is None:
                self.default_network = self.factory.network().name
            kwargs["network"] = self.default_network
        return self.factory.run(image, name=name, **kwargs)

