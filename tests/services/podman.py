"""Podman's Docker-compatible API (`podman system service`) with storage of the session's own.

The registries.conf is private (CONTAINERS_REGISTRIES_CONF) and marks every loopback registry
insecure, as the Docker engines do by rule. Containers here need explicit ulimits: Podman asks
for a nofile and nproc limit above this machine's hard limits otherwise (RUN_DEFAULTS).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import docker
from docker.types import Ulimit

from tests.services.engine import answers
from tests.services.procs import spawn, stop, tail, wait_until

log = logging.getLogger(__name__)

RUN_DEFAULTS: dict[str, Any] = {
    "ulimits": [Ulimit(name="nofile", soft=1024, hard=1024),
                Ulimit(name="nproc", soft=4096, hard=4096)],
}


class PodmanUnavailable(RuntimeError):
    """Podman is not installed or its service would not start here."""


class PodmanEngine:
    """One `podman system service` on a socket and storage under `root`."""

    store = "podman"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"unix://{root / 'podman.sock'}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        """A docker.DockerClient on Podman's compatible API (version negotiated)."""
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.url, version="auto", timeout=180)
        return self._client

    def start(self) -> str:
        """Start the service; raises PodmanUnavailable when podman is missing or fails."""
        podman = shutil.which("podman")
        if podman is None:
            raise PodmanUnavailable("podman is not installed: run `python -m tests.services "
                                    "prepare` as root (Debian package podman)")
        for d in ("storage", "run", "tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        registries = self.root / "registries.conf"
        registries.write_text('unqualified-search-registries = []\n\n'
                              '[[registry]]\nlocation = "127.0.0.1"\ninsecure = true\n')
        config = self.root / "containers.conf"
        # No systemd here to manage cgroups or keep a journal.
        config.write_text('[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(registries),
               "CONTAINERS_CONF": str(config)}
        argv = [podman, f"--root={self.root / 'storage'}", f"--runroot={self.root / 'run'}",
                f"--tmpdir={self.root / 'tmp'}", "--storage-driver=vfs",
                "system", "service", "--time=0", self.url]
        logfile = self.root / "podman.log"
        log.info("starting podman system service on %s (log %s)", self.url, logfile)
        self.proc = spawn(argv, logfile, env=env)
        try:
            wait_until(lambda: answers(self.url, timeout=2), 60, "podman system service",
                       self.proc, logfile)
        except RuntimeError as exc:
            self.stop()
            raise PodmanUnavailable(str(exc)) from None
        return self.url

    def stop(self) -> None:
        """Remove what is left, stop the service."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                for c in self._client.api.containers(all=True):
                    self._client.api.remove_container(c["Id"], force=True, v=True)
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self.proc is not None:
            stop(self.proc, grace=20)
            self.proc = None

    def log_tail(self) -> str:
        """The end of the service's log."""
        return tail(self.root / "podman.log")
