"""The daemon's HTTP server over the real engine and registry: /metrics after a real pass."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bot.config.settings import Settings
from bot.entrypoints.daemon import Daemon
from tests.unit.fakes import FakeAdapter


def _series(text: str) -> dict[str, float]:
    """Prometheus text as {series with labels: value}."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def test_metrics_reflect_a_real_pass_and_its_registry_requests(
    tmp_path: Path, docker_host: str, images: Any, containers: Any, registries: Any
) -> None:
    anon = registries.anonymous
    repo = f"dwhttp/app-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    images.push(anon, repo, "v1", version=1)
    containers.run(f"{anon.host}/{repo}:v1", labels={"dockwarden.enable": "true"})
    images.push(anon, repo, "v1", version=2)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        docker_host=docker_host,
        docker_config=str(config_dir),
        db=str(tmp_path / "state.db"),
        label_enable=True,
        http_listen="127.0.0.1:0",
    )
    daemon = Daemon(settings, first_pass_delay=-1, adapters=[FakeAdapter()])
    core = await daemon.start()
    try:
        assert daemon.http is not None
        base = f"http://127.0.0.1:{daemon.http.port}"
        summary = await core.runner.run()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                series = _series(await response.text())
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["last_pass_ok"] is True
    finally:
        await daemon.stop()
    found = Counter(r.status.value for r in summary.report.results)
    assert found["update_available"] >= 1
    for status in ("up_to_date", "update_available", "skipped", "error"):
        key = f'dockwarden_containers{{host="local",status="{status}"}}'
        assert series[key] == found[status]
    assert series['dockwarden_updates_available{host="local"}'] == found["update_available"]
    assert series["dockwarden_check_pass_duration_seconds_count"] == 1
    assert series["dockwarden_last_pass_timestamp_seconds"] > 0
    ok = f'dockwarden_registry_requests_total{{outcome="ok",registry="{anon.host}"}}'
    assert series[ok] >= 1
    assert series["process_resident_memory_bytes"] > 0
