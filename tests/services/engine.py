"""The Docker engine under test: the one that answers, or a dockerd we start and stop ourselves."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors

from tests.services import SESSION_LABEL, WORK_ROOT
from tests.services.procs import pid_alive, spawn, stop, tail, wait_until

log = logging.getLogger(__name__)

DEFAULT_HOST = "unix:///var/run/docker.sock"
FORCE_ENV = "DOCKWARDEN_TEST_FORCE_ENGINE"


def answers(url: str, timeout: float = 3.0) -> bool:
    """Whether a Docker engine answers GET /_ping on `url` (unix:// or tcp://)."""
    # A raw request: the docker SDK leaks its socket when a half-started daemon resets it.
    try:
        if url.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = url.removeprefix("unix://")
        elif url.startswith(("tcp://", "http://")):
            host, _, port = url.split("://", 1)[1].rstrip("/").rpartition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (host, int(port))
        else:
            return False
    except ValueError:
        return False
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            head = sock.recv(64)
        except OSError:
            return False
    return head.startswith(b"HTTP/1.") and b" 200 " in head[:16]


_bridge_suffix = iter("abcdefghijklmnopqrstuvwxyz")


def _remove_stale_bridges() -> None:
    """Delete bridges of sessions killed before they could (named dwt<pid><letter>)."""
    out = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], check=False,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True).stdout
    for match in re.finditer(r"^\d+: (dwt(\d+)[a-z])[:@]", out, re.MULTILINE):
        if not pid_alive(int(match.group(2))):
            subprocess.run(["ip", "link", "del", match.group(1)], check=False,
                           stdin=subprocess.DEVNULL, capture_output=True)


class Engine:
    """A Docker engine for the test session; starts dockerd (vfs) only where none answers."""

    def __init__(self, root: Path | None = None, *, force_own: bool | None = None) -> None:
        self.root = root or WORK_ROOT / "engine"
        self.force_own = os.environ.get(FORCE_ENV) == "1" if force_own is None else force_own
        self.url = ""
        self.started = False
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._private_root = False
        self._bridge: str | None = None
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        """A docker.DockerClient on the engine (API version negotiated)."""
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.url, version="auto", timeout=180)
        return self._client

    def start(self) -> str:
        """Find or start an engine; returns its URL."""
        existing = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        if not self.force_own and answers(existing):
            self.url = existing
            return self.url
        self._start_own(another_engine=answers(existing))
        return self.url

    def _take_root(self) -> None:
        """Lock the engine dir; a concurrent session with its own engine gets a private dir."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = open(self.root / "lock", "w")  # noqa: SIM115 - held for the whole session
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            self.root = self.root.parent / f"{self.root.name}-{os.getpid()}"
            self.root.mkdir(parents=True, exist_ok=True)
            self._private_root = True
            return
        self._lock = lock
        self._kill_stale_daemon()

    def _kill_stale_daemon(self) -> None:
        """A dockerd whose session died still holds the data root; the lock says it is orphaned."""
        pidfile = self.root / "docker.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        # The pid may have been reused: only a dockerd on this very data root is ours to stop.
        if b"dockerd" not in cmdline or str(self.root / "data").encode() not in cmdline:
            return
        log.warning("stopping orphaned test dockerd pid %s", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _dockerd(self) -> str:
        """The dockerd binary to start."""
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise RuntimeError("no Docker engine answers and dockerd is not installed: "
                               "run `python -m tests.services prepare` as root")
        return dockerd

    def _daemon_options(self) -> list[str]:
        """Storage and containerd options of this engine's dockerd."""
        return ["--storage-driver=vfs", "--containerd-namespace=dockwarden-test",
                "--containerd-plugins-namespace=dockwarden-test-plugins"]

    def _daemon_env(self) -> dict[str, str] | None:
        """The environment dockerd runs with (None: ours)."""
        return None

    def _start_own(self, *, another_engine: bool) -> None:
        dockerd = self._dockerd()
        self._take_root()
        sock = self.root / "docker.sock"
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        argv = [
            dockerd, *self._daemon_options(),
            f"--data-root={self.root / 'data'}", f"--exec-root={self.root / 'exec'}",
            f"-H=unix://{sock}", f"--pidfile={self.root / 'docker.pid'}",
        ]
        if another_engine:
            # The other daemon owns docker0 and the iptables chains: keep off both. Not
            # --bridge=none: that makes dockerd delete docker0 under the other daemon.
            argv += [f"--bridge={self._make_bridge()}", "--iptables=false"]
        logfile = self.root / "dockerd.log"
        log.info("starting dockerd on %s (log %s)", sock, logfile)
        self.proc = spawn(argv, logfile, env=self._daemon_env())
        self.started = True
        self.url = f"unix://{sock}"
        try:
            wait_until(lambda: answers(self.url, timeout=2), 90, "dockerd", self.proc, logfile)
        except Exception:
            self.stop()
            raise

    def _make_bridge(self) -> str:
        """A bridge of our own for a second daemon (removed again at stop)."""
        _remove_stale_bridges()
        name = f"dwt{os.getpid()}{next(_bridge_suffix)}"
        # 198.18.0.0/15 (benchmarking range): outside the pools docker allocates from.
        subnet = (os.getpid() * 7 + ord(name[-1])) % 250
        for argv in (["ip", "link", "add", "name", name, "type", "bridge"],
                     ["ip", "addr", "add", f"198.18.{subnet}.1/24", "dev", name],
                     ["ip", "link", "set", name, "up"]):
            subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)
        self._bridge = name
        return name

    def stop(self) -> None:
        """Close the client; stop dockerd only if this session started it."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self.proc is not None:
            stop(self.proc, grace=30)
            self.proc = None
        if self._bridge is not None:
            subprocess.run(["ip", "link", "del", self._bridge], check=False,
                           stdin=subprocess.DEVNULL, capture_output=True)
            self._bridge = None
        if self._private_root:
            shutil.rmtree(self.root, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def log_tail(self) -> str:
        """The end of our dockerd's log (empty when we did not start one)."""
        return tail(self.root / "dockerd.log") if self.started else ""


def session_labels(session: int | None = None) -> dict[str, str]:
    """The labels marking a resource as made by this test session."""
    return {SESSION_LABEL: str(os.getpid() if session is None else session)}


def _session_of(labels: dict[str, str] | None) -> int | None:
    try:
        return int((labels or {})[SESSION_LABEL])
    except (KeyError, ValueError):
        return None


def remove_session_resources(client: docker.DockerClient, *, dead_only: bool,
                             session: int | None = None) -> dict[str, list[str]]:
    """Remove labelled resources: of dead sessions (dead_only) or of `session`; returns names."""
    def wanted(labels: dict[str, str] | None) -> bool:
        owner = _session_of(labels)
        if owner is None:
            return False
        if dead_only:
            return not pid_alive(owner)
        return owner == session

    removed: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": [], "images": []}
    flt = {"label": SESSION_LABEL}
    api = client.api
    # The low-level lists: the model lists inspect each item and race concurrent sessions.
    for c in api.containers(all=True, filters=flt):
        if wanted(c.get("Labels")):
            _quietly(lambda c=c: api.remove_container(c["Id"], force=True, v=True))
            removed["containers"].append((c.get("Names") or [c["Id"]])[0].lstrip("/"))
    for n in api.networks(filters=flt):
        if wanted(n.get("Labels")):
            _quietly(lambda n=n: api.remove_network(n["Id"]))
            removed["networks"].append(n["Name"])
    for v in api.volumes(filters=flt).get("Volumes") or []:
        if wanted(v.get("Labels")):
            _quietly(lambda v=v: api.remove_volume(v["Name"], force=True))
            removed["volumes"].append(v["Name"])
    for i in api.images(all=True, filters=flt):
        if wanted(i.get("Labels")):
            # force untags every tag; the engine still refuses while a container runs it.
            _quietly(lambda i=i: api.remove_image(i["Id"], force=True))
            removed["images"].append(i["Id"])
    return removed


def _quietly(action: Any) -> None:
    try:
        action()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        log.warning("cleanup: %s", exc)
