"""Compose v2 for the tests: Debian 13's `docker-compose` package (2.26), unpacked privately.

Debian 12's `docker-compose` is the old Python 1.29, so nothing is installed over the system:
`fetch()` downloads Debian 13's package with the private apt setup of newer_engine.py and unpacks
it under COMPOSE_ROOT (kept between runs). `Compose` runs that binary against one engine; it is
also a Docker CLI plugin, so `plugin_config()` gives a DOCKER_CONFIG under which `docker compose`
finds it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.services import newer_engine
from tests.services.engine import session_labels
from tests.services.newer_engine import NewerEngineUnavailable

COMPOSE_ROOT = newer_engine.TRIXIE_ROOT / "compose"
PACKAGES = ("docker-compose",)
BINARY = COMPOSE_ROOT / "usr" / "libexec" / "docker" / "cli-plugins" / "docker-compose"


class ComposeUnavailable(RuntimeError):
    """Compose v2 is not unpacked here (or cannot be fetched)."""


def unpacked() -> bool:
    """Whether Debian 13's Compose v2 is unpacked and complete."""
    return (COMPOSE_ROOT / ".complete").exists() and BINARY.exists()


def fetch(log: Path) -> None:
    """Download and unpack Debian 13's docker-compose (nothing when already there)."""
    if unpacked():
        return
    try:
        newer_engine.fetch_packages(PACKAGES, COMPOSE_ROOT, log)
    except NewerEngineUnavailable as exc:
        raise ComposeUnavailable(str(exc)) from None


def plugin_config(where: Path) -> Path:
    """A DOCKER_CONFIG directory whose cli-plugins hold Compose (for `docker compose`)."""
    plugins = where / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    if not link.exists():
        link.symlink_to(BINARY)
    return where


class Compose:
    """`docker compose` (v2) against one engine, in a project directory."""

    def __init__(self, docker_host: str, config: Path) -> None:
        if not unpacked():
            raise ComposeUnavailable(
                f"Compose v2 is not unpacked under {COMPOSE_ROOT}: run "
                "`python -m tests.services prepare`")
        self.docker_host = docker_host
        self.config = plugin_config(config)

    def version(self) -> str:
        """The short version Compose reports (`2.26.1`)."""
        return self.run(Path.cwd(), "version", "--short").stdout.strip()

    def run(self, project: Path, *args: str, env: Mapping[str, str] | None = None,
            check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`docker compose ARGS` in `project`; raises with Compose's output when it fails."""
        environment = {**os.environ, "DOCKER_HOST": self.docker_host,
                       "DOCKER_CONFIG": str(self.config), **(env or {})}
        done = subprocess.run([str(BINARY), *args], cwd=project, env=environment,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed ({done.returncode}): "
                               f"{done.stderr.strip() or done.stdout.strip()}")
        return done

    @contextmanager
    def project(self, where: Path, name: str,
                services: Mapping[str, Mapping[str, Any]]) -> Iterator[Path]:
        """Project `name` of `services` (compose.yaml written in `where`, every service and the
        default network labelled with the session) brought up with `up -d`; `down` after."""
        labels = session_labels()
        spec = {
            "name": name,
            "services": {
                service: {"stop_grace_period": "1s", **config,
                          "labels": {**labels, **dict(config.get("labels") or {})}}
                for service, config in services.items()
            },
            "networks": {"default": {"labels": labels}},
        }
        (where / "compose.yaml").write_text(json.dumps(spec, indent=2))
        try:
            self.run(where, "up", "-d")
            yield where
        finally:
            self.run(where, "down", "--volumes", "--timeout", "1", check=False)
