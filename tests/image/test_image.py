"""DockWarden's image, built as `make image` builds it, run against the real engine."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import aiohttp
import docker
import pytest

from tests.services import WORK_ROOT
from tests.services.procs import free_port
from tests.standins.discord import DiscordStandin
from tests.standins.telegram import TelegramStandin, wait_for

pytestmark = pytest.mark.integration

SOCKET = "/var/run/docker.sock"


def _socket(engine_socket: str) -> dict[str, dict[str, str]]:
    return {engine_socket: {"bind": SOCKET, "mode": "rw"}}


def test_image_has_oci_labels_state_in_data_and_no_build_tools(
    dockwarden_image: str, docker_client: docker.DockerClient, containers: Any
) -> None:
    image = docker_client.images.get(dockwarden_image)
    config = image.attrs["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"]
    assert "org.opencontainers.image.source" in labels
    assert "DOCKWARDEN_DB=/data/dockwarden.db" in config["Env"]
    assert "/data" in config["Volumes"] and config["WorkingDir"] == "/data"
    assert "DOCKWARDEN_HTTP_LISTEN=0.0.0.0:8080" in config["Env"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Entrypoint"] == ["dockwarden"] and config["Cmd"] == ["run"]
    probe = (
        "import importlib.util as u, os, shutil, sys; "
        "tools = [t for t in ('gcc', 'cc', 'pip', 'pip3', 'curl') if shutil.which(t)]; "
        "mods = [m for m in ('pip', 'pytest', 'mypy', 'ruff', 'hypothesis') if u.find_spec(m)]; "
        "caches = [c for c in ('/root/.cache/pip', '/src') if os.path.exists(c)]; "
        "print(tools, mods, caches); sys.exit(bool(tools or mods or caches))"
    )
    runner = containers.run(dockwarden_image, entrypoint=["python3", "-c", probe])
    status = runner.wait(timeout=60)["StatusCode"]
    assert status == 0, runner.logs().decode()


def test_image_check_json_sees_the_test_containers(
    dockwarden_image: str, engine_socket: str, images: Any, containers: Any, registries: Any
) -> None:
    anon = registries.anonymous
    repo = f"dwimage/app-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    images.push(anon, repo, "v1", version=1)
    outdated = containers.run(f"{anon.host}/{repo}:v1")
    new = images.push(anon, repo, "v1", version=2)
    runner = containers.run(
        dockwarden_image, command=["check", "--json"], volumes=_socket(engine_socket),
        network_mode="host",  # the test registries listen on this machine's loopback
    )
    status = runner.wait(timeout=120)["StatusCode"]
    out = runner.logs(stdout=True, stderr=False).decode()
    assert status == 0, runner.logs().decode()
    results = {r["container"]: r for r in json.loads(out)["results"]}
    assert results[outdated.name]["status"] == "update_available"
    assert results[outdated.name]["remote_digest"] == new
    assert results[runner.name]["status"] == "skipped"  # itself: an image built here


def _series(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def _health(container: Any) -> str:
    await asyncio.to_thread(container.reload)
    return str(container.attrs["State"].get("Health", {}).get("Status", "none"))


async def test_daemon_container_becomes_healthy_with_both_chats_connected(
    dockwarden_image: str, engine_socket: str, containers: Any,
    docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    telegram, discord = TelegramStandin(), DiscordStandin()
    await telegram.start()
    await discord.start()
    port = free_port()
    env = {
        "DOCKWARDEN_HTTP_LISTEN": f"127.0.0.1:{port}",
        "DOCKWARDEN_LABEL_ENABLE": "true",  # this test needs no other container checked
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_BASE_URL": telegram.url,
        "TELEGRAM_CHAT_IDS": "-1001",
        **discord.env(),
    }
    try:
        daemon = await asyncio.to_thread(
            containers.run, dockwarden_image, environment=env, volumes=_socket(engine_socket),
            network_mode="host",  # the chat stand-ins listen on this machine's loopback
            # The image's own health test, asked every second instead of every 30 s.
            healthcheck={"interval": 1_000_000_000, "timeout": 5_000_000_000, "retries": 3},
        )
        await wait_for(lambda: any(c.method == "getUpdates" for c in telegram.calls),
                       "the Telegram adapter to poll", timeout=90)
        await discord.wait_for(lambda: discord.identifies, timeout=60)
        for _ in range(120):
            if await _health(daemon) == "healthy":
                break
            await asyncio.sleep(0.5)
        assert await _health(daemon) == "healthy", daemon.logs().decode()[-3000:]
        async with aiohttp.ClientSession() as http:
            for _ in range(120):  # the first pass runs ~10 s after the start
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    series = _series(await response.text())
                if series.get('dockwarden_check_passes_total{outcome="ok"}', 0) >= 1:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # idle: the pass is over, both chats connected
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                series = _series(await response.text())
    finally:
        await telegram.close()
        await discord.close()
    assert series['dockwarden_check_passes_total{outcome="ok"}'] >= 1
    rss = series["process_resident_memory_bytes"]
    size = docker_client.images.get(dockwarden_image).attrs["Size"]
    figures = f"image size {size / 1e6:.1f} MB; daemon idle RSS {rss / 1e6:.1f} MB"
    (WORK_ROOT / "image-figures.txt").write_text(figures + "\n")
    print(figures)
    assert rss < 100e6, figures  # the target: under 100 MB with Telegram and Discord connected
