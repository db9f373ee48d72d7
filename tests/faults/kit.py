"""What the fault tests share: an outdated app image, a container holding data, the daemon as
a process (started, frozen at a journal step, signalled), and the checks of what is left."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from tests.services.engine import session_labels

ROOT = Path(__file__).resolve().parents[2]
# PID 1 ignores SIGTERM unless it traps it: this keeps `docker stop` quick.
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]


@dataclass(frozen=True)
class AppImage:
    """`name:1`, whose registry holds v2 while the engine had v1 (reset by `outdate`)."""

    name: str
    old_id: str
    old_digest: str
    new_digest: str

    @property
    def ref(self) -> str:
        return f"{self.name}:1"

    def outdate(self, client: docker.DockerClient) -> None:
        """Point the local tag back at v1, as before any update."""
        client.api.tag(self.old_id, self.name, "1")


def make_app_image(client: docker.DockerClient, images: Any, registry: Any) -> AppImage:
    """Push v1 and v2 of one repository (an anonymous volume, its own env) once."""
    repo = f"dwfaults/app-{os.getpid()}"
    name = f"{registry.host}/{repo}"
    options: dict[str, Any] = dict(cmd=SLEEPER, volumes=["/anon"])
    old_digest = images.push(registry, repo, "1", version=1, env={"APP_MODE": "v1"}, **options)
    old_id = client.images.get(f"{name}:1").id
    new_digest = images.push(registry, repo, "1", version=2, env={"APP_MODE": "v2"}, **options)
    client.images.remove(f"{name}:1")
    image = AppImage(name, old_id, old_digest, new_digest)
    image.outdate(client)
    return image


@dataclass(frozen=True)
class App:
    """A running container with configuration and data of its own."""

    name: str
    id: str


def start_app(client: docker.DockerClient, containers: Any, image: AppImage,
              **create: Any) -> App:
    """Run `image` v1 with an env var, a label, a named and an anonymous volume holding data."""
    image.outdate(client)
    network = containers.network()
    named = containers.volume()
    binds = {named.name: {"bind": "/named", "mode": "rw"}, **create.pop("binds", {})}
    name = containers.unique_name("dwt-fault")
    made = client.api.create_container(
        image.ref, name=name, environment={"KEEP": "mine"},
        labels={**session_labels(), "team": "a"},
        host_config=client.api.create_host_config(binds=binds, network_mode=network.name),
        **create,
    )
    client.api.start(made["Id"])
    app = App(name, made["Id"])
    run(client, name, "echo anon-data > /anon/f && echo named-data > /named/f")
    return app


def run(client: docker.DockerClient, name: str, command: str) -> str:
    """`docker exec NAME sh -c COMMAND`; its output."""
    code, out = client.containers.get(name).exec_run(["sh", "-c", command])
    assert code == 0, out
    return str(out.decode().strip())


def assert_left_running_intact(client: docker.DockerClient, app: App, image: AppImage) -> str:
    """The container under its name runs v1 or v2 with its configuration and data; which."""
    now = client.api.inspect_container(app.name)
    assert now["State"]["Running"], now["State"]
    digests = client.api.inspect_image(now["Image"]).get("RepoDigests") or []
    on = {f"{image.name}@{image.old_digest}": "old", f"{image.name}@{image.new_digest}": "new"}
    [which] = [on[d] for d in digests if d in on]
    assert "KEEP=mine" in now["Config"]["Env"]
    assert f"APP_MODE=v{1 if which == 'old' else 2}" in now["Config"]["Env"]
    assert now["Config"]["Labels"]["team"] == "a"
    assert run(client, app.name, "cat /anon/f /named/f") == "anon-data\nnamed-data"
    same_prefix = {c.name for c in client.containers.list(all=True,
                                                          filters={"name": app.name})}
    assert same_prefix == {app.name}, same_prefix  # nothing left renamed aside
    return which


def daemon_env(tmp_path: Path, docker_host: str, **extra: str) -> dict[str, str]:
    """The environment of a `dockwarden` process of this test (its own database)."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "DISCORD_", "DOCKWARDEN_", "DOCKER_"))
    }
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir(exist_ok=True)
    env.update({
        "DOCKER_HOST": docker_host,
        "DOCKER_CONFIG": str(config_dir),
        "DOCKWARDEN_DB": str(tmp_path / "dockwarden.db"),
        "DOCKWARDEN_LABEL_ENABLE": "true",
        "DOCKWARDEN_GRACE_PERIOD": "0.5",
        "DOCKWARDEN_HEALTH_TIMEOUT": "10",
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    return env


def wait_for_line(stream: Any, needle: str, proc: subprocess.Popen[str],
                  timeout: float = 60.0) -> list[str]:
    """Lines of `stream` up to the one containing `needle` (fails after `timeout`)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        # A thread rather than select(): readline() buffers lines select() cannot see.
        for line in iter(stream.readline, ""):
            lines.put(line)
            if needle in line:
                return
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"no {needle!r} from the process; it said:\n{''.join(seen)}")


def journal_step(db_path: str) -> str | None:
    """The step of the newest open journal in a daemon's database, read from outside."""
    if not Path(db_path).exists():
        return None
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT step FROM journal WHERE finished = 0 ORDER BY id DESC"
                         " LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return None  # not created yet
    finally:
        db.close()
    return None if row is None else str(row[0])


def open_journals(db_path: str) -> int:
    """How many journals are open in a daemon's database."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM journal WHERE finished = 0").fetchone()[0])
    finally:
        db.close()


def next_start(env: dict[str, str], cwd: Path) -> str:
    """Start `dockwarden run` (which settles interrupted updates first), then SIGTERM it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        seen = wait_for_line(proc.stderr, "DockWarden running", proc)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen) + rest
    return "".join(seen) + rest


async def next_start_here(env: dict[str, str]) -> None:
    """What `next_start` does, in this process: the daemon's start (which settles interrupted
    updates first) and its stop, with the settings `env` gives a `dockwarden` process."""
    from bot.config.settings import Settings
    from bot.entrypoints.daemon import Daemon
    from tests.unit.fakes import FakeAdapter

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=env["DOCKER_HOST"], docker_config=env["DOCKER_CONFIG"],
        db=env["DOCKWARDEN_DB"], label_enable=True,
        grace_period=float(env["DOCKWARDEN_GRACE_PERIOD"]),
        health_timeout=float(env["DOCKWARDEN_HEALTH_TIMEOUT"]),
    )
    daemon = Daemon(settings, first_pass_delay=-1, adapters=[FakeAdapter()])
    await daemon.start()
    await daemon.stop()
