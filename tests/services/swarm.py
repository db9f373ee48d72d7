"""A swarm manager for the tests: a dockerd of its own, in its own network namespace.

Never the shared engine (`swarm init` there would change it for everyone), and never a second
dockerd in the host's network namespace (swarm's ingress and gwbridge networks would be made
there). Its namespace has only a loopback, so the registries the tests push to are mirrored into
it: a second `docker-registry` process in the namespace serves the same storage directory on the
same `127.0.0.1:<port>`, and an image reference means the same thing inside and outside.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

from tests.services.procs import spawn, stop, tail, wait_until
from tests.services.registry import RegistryService, says_listening


class SwarmUnavailable(RuntimeError):
    """A private dockerd could not be started here (tools missing, no privileges)."""


class SwarmEngine:
    """Start with `start()`; `client` and `url` reach the manager; `stop()` removes everything."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: docker.DockerClient | None = None
        self.url = ""
        self._mirrors: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> SwarmEngine:
        """Start dockerd in a new network namespace and `swarm init` it (or SwarmUnavailable)."""
        for tool in ("dockerd", "unshare", "nsenter", "ip"):
            if shutil.which(tool) is None:
                raise SwarmUnavailable(f"{tool} is not installed")
        # A short path: unix socket paths (dockerd's, containerd's) must stay under 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="dwswarm-"))
        sock = self.root / "docker.sock"
        script = (
            "ip link set lo up && exec dockerd --storage-driver=vfs --iptables=false "
            f"--data-root={self.root / 'data'} --exec-root={self.root / 'exec'} -H unix://{sock} "
            f"--pidfile={self.root / 'docker.pid'} --containerd-namespace=dwswarm-{os.getpid()} "
            f"--containerd-plugins-namespace=dwswarm-{os.getpid()}-plugins"
        )
        # `unshare` without --fork and the shell's `exec`: the pid is dockerd's, in the namespace.
        self.proc = spawn(["unshare", "--net", "sh", "-c", script], self.root / "dockerd.log")
        self.url = f"unix://{sock}"
        deadline = time.monotonic() + 60
        while self.client is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SwarmUnavailable("a private dockerd did not start: "
                                       + tail(self.root / "dockerd.log"))
            if sock.exists():
                try:
                    self.client = docker.DockerClient(base_url=self.url, version="auto")
                except docker.errors.DockerException:
                    time.sleep(0.2)
            else:
                time.sleep(0.2)
        self.client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
        return self

    def mirror(self, registry: RegistryService) -> None:
        """Serve `registry`'s storage on its own address inside the namespace (once)."""
        if registry.host in self._mirrors:
            return
        assert self.proc is not None and self.root is not None and registry.storage is not None
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise SwarmUnavailable("docker-registry is not installed")
        config = registry.storage.parent / "config.yml"
        logfile = self.root / f"mirror-{registry.name}.log"
        proc = spawn(["nsenter", "-t", str(self.proc.pid), "-n", binary, "serve", str(config)],
                     logfile)
        self._mirrors[registry.host] = proc
        wait_until(lambda: says_listening(logfile, registry.host), 30,
                   f"mirror of registry {registry.name}", proc, logfile)

    def stop(self) -> None:
        """Stop the mirrors and dockerd, remove the directory; idempotent."""
        for proc in self._mirrors.values():
            stop(proc)
        self._mirrors.clear()
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        if self.proc is not None:
            stop(self.proc, grace=30)
            self.proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
