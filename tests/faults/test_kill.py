"""SIGKILL of the daemon at each journal step of an update, and while the engine is still
stopping the old container: the next start leaves the container running, on the old or the new
image, with its data and configuration."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.faults.kit import (
    ROOT,
    AppImage,
    assert_left_running_intact,
    daemon_env,
    journal_step,
    next_start,
    next_start_here,
    open_journals,
    start_app,
    wait_for_line,
)

# The steps after which the daemon is killed, and where the next start must leave it.
STEPS = {
    "stop": "old", "rename": "old", "create": "old", "connect": "old", "start": "old",
    "health": "new", "remove_old": "new",
}


@contextlib.contextmanager
def _driver(env: dict[str, str], tmp_path: Path, name: str,
            step: str) -> Iterator[subprocess.Popen[str]]:
    """The daemon told to /pull `name` and freeze after `step`; SIGKILLed on leaving."""
    with open(tmp_path / "driver.log", "w") as log:
        proc = subprocess.Popen(
            # Run from the test's directory (no stray .env is read), the repository on the path.
            [sys.executable, "-m", "tests.faults.driver", name, step], cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
        )
        try:
            yield proc
        finally:
            proc.kill()  # SIGKILL: no cleanup, no journal finish
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()


@pytest.mark.parametrize("step", list(STEPS))
async def test_daemon_killed_after_a_journal_step_is_settled_by_the_next_start(
    step: str, app_image: AppImage, docker_client: docker.DockerClient, containers: Any,
    docker_host: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    app = start_app(docker_client, containers, app_image)
    env = daemon_env(tmp_path, docker_host)
    with _driver(env, tmp_path, app.name, step) as driver:
        assert driver.stdout is not None
        wait_for_line(driver.stdout, f"frozen after {step}", driver)
    assert open_journals(env["DOCKWARDEN_DB"]) == 1

    # The daemon's own start, in this process (the real process's next start is in the test
    # below and in test_shutdown.py): it settles the journal before anything else.
    await next_start_here(env)

    assert "finished or undid interrupted updates" in caplog.text
    assert assert_left_running_intact(docker_client, app, app_image) == STEPS[step]
    assert open_journals(env["DOCKWARDEN_DB"]) == 0


def test_daemon_killed_while_the_engine_stops_the_old_container_leaves_it_running(
    app_image: AppImage, docker_client: docker.DockerClient, containers: Any,
    docker_host: str, tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    # Ignores SIGTERM (noting it got it), so the engine's stop lasts its whole StopTimeout and
    # ends in SIGKILL, whether or not the daemon that asked for it still lives.
    stubborn = ["sh", "-c", "trap 'touch /shared/term' TERM; while true; do sleep 0.1; done"]
    stop_timeout = 3
    app = start_app(docker_client, containers, app_image, command=stubborn,
                    stop_timeout=stop_timeout, binds={str(shared): {"bind": "/shared"}})
    env = daemon_env(tmp_path, docker_host)
    with _driver(env, tmp_path, app.name, "never"):
        for _ in range(600):
            if (shared / "term").exists():
                break
            time.sleep(0.05)
        assert (shared / "term").exists(), (tmp_path / "driver.log").read_text()
        assert journal_step(env["DOCKWARDEN_DB"]) == "stop"
    killed_at = time.monotonic()

    next_start(env, tmp_path)

    # Whatever the engine's stop did meanwhile, it is over by now.
    time.sleep(max(0.0, killed_at + stop_timeout + 1 - time.monotonic()))
    assert assert_left_running_intact(docker_client, app, app_image) == "old"
