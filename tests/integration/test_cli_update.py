"""`dockwarden update` as a whole process: the path of a chat /pull, progress on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from bot.domain.reference import parse_reference
from bot.store.db import Store
from tests.integration.test_cli_check import _dockwarden, _env, _read_all


def test_update_settles_the_pending_update_alerts_through_the_outbox_and_shows_progress(
    tmp_path: Path, docker_host: str, registries: Any, images: Any, containers: Any
) -> None:
    anon = registries.anonymous
    repo = f"dwcli/update-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    old = images.push(anon, repo, "v1", version=1)
    # SIGKILL: busybox's sleep ignores SIGTERM, and the stop would wait out its 10 s timeout.
    container = containers.run(f"{anon.host}/{repo}:v1", stop_signal="SIGKILL")
    new = images.push(anon, repo, "v1", version=2)
    db = tmp_path / "state.db"
    store = Store(db)
    image = str(parse_reference(f"{anon.host}/{repo}:v1"))
    pending, _ = store.add_update(container.name, image, old, new, "approve")
    store.close()
    env = _env(
        tmp_path, docker_host, DOCKWARDEN_DB=str(db), DOCKWARDEN_GRACE_PERIOD="1.5",
        TELEGRAM_BOT_TOKEN="123:not-used-by-the-command", TELEGRAM_CHAT_IDS="42",
    )

    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "update", container.name, "--yes", "--json"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=slave, text=True,
            timeout=120,
        )
        os.close(slave)
        terminal = _read_all(master).decode(errors="replace")
    finally:
        os.close(master)

    assert done.returncode == 0, terminal
    result = json.loads(done.stdout)  # the JSON contract, alone on stdout
    assert set(result) == {"container", "host", "outcome", "old_digest", "new_digest", "message"}
    assert result["outcome"] == "updated" and result["new_digest"] == new
    assert f"waiting for {container.name} to be healthy" in terminal
    assert "update_succeeded alert queued for telegram" in terminal
    store = Store(db)
    try:
        settled = store.get_update(pending.id)
        assert settled is not None and settled.state == "applied"
        (queued,) = store.outbox()
        assert queued.adapter == "telegram"
        assert json.loads(queued.payload)["kind"] == "update_succeeded"
        actions = {(h.action, h.outcome) for h in store.history(container.name)}
        assert ("pull", "requested") in actions and ("update", "updated") in actions
        assert all(h.actor.startswith("cli:") for h in store.history(container.name))
    finally:
        store.close()


def test_update_of_an_unknown_container_exits_2_as_check_does(
    tmp_path: Path, docker_host: str
) -> None:
    name = f"no-such-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path, docker_host, DOCKWARDEN_DB=str(tmp_path / "state.db"))
    done = _dockwarden(tmp_path, env, "update", name, "--yes", "--json")
    assert done.returncode == 2
    assert name in done.stderr
    assert json.loads(done.stdout)["error"]["kind"] == "container_not_found"
