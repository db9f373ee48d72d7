"""A second Docker engine beside the session's, that pulls Docker Hub names through a mirror.

The system's dockerd (Debian 12's), always our own process: its own socket, data root, exec
root, pidfile, containerd namespace and bridge (a 198.18.x.0/24 subnet, `--iptables=false`),
started with `--registry-mirror=<a local docker-registry>`, so `docker pull x` asks that registry
for `library/x`. Docker Hub itself must never be reached from a test: the daemon's HTTP(S) proxy
is a loopback port where nothing listens, so anything the mirror cannot serve fails right here.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.services import WORK_ROOT
from tests.services.engine import Engine
from tests.services.procs import free_port


class SecondEngine(Engine):
    """Another dockerd of the session's own; `mirror` is the URL of its registry mirror."""

    store = "classic"

    def __init__(self, mirror: str, root: Path | None = None) -> None:
        # Not "engine-<digits>": the session sweeps those as directories of dead sessions.
        super().__init__(root or WORK_ROOT / "engine-second", force_own=True)
        self.mirror = mirror

    def start(self) -> str:
        """Start the daemon (RuntimeError with its log tail when it does not come up)."""
        self._start_own(another_engine=True)
        return self.url

    def _daemon_options(self) -> list[str]:
        return ["--storage-driver=vfs", "--containerd-namespace=dockwarden-test-second",
                "--containerd-plugins-namespace=dockwarden-test-second-plugins",
                f"--registry-mirror={self.mirror}"]

    def _daemon_env(self) -> dict[str, str]:
        # Loopback is never proxied (the mirror); everything else meets a closed port.
        nowhere = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        return {**env, "HTTP_PROXY": nowhere, "HTTPS_PROXY": nowhere,
                "NO_PROXY": "localhost,127.0.0.0/8"}
