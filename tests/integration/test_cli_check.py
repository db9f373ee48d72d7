"""`dockwarden check` and `dockwarden doctor` as whole processes against the real services."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

RESULT_KEYS = {
    "container", "host", "image", "status", "local_digest", "remote_digest", "reason", "error",
    "new_tag", "current_version", "new_version",
}
ERROR_KEYS = {"kind", "message", "registry", "scheme"}
STATUSES = {"up_to_date", "update_available", "skipped", "error"}
REASONS = {"pinned_digest", "local_image", "disabled"}
KINDS = {
    "unsupported_challenge", "auth_failed", "unreachable", "rate_limited", "not_found",
    "bad_response",
}
REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, docker_host: str, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    config = tmp_path / "docker-config"
    for d in (home, config):
        d.mkdir(exist_ok=True)
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("DOCKWARDEN_", "TELEGRAM_", "DISCORD_", "DOCKER_"))
    }
    env.update(
        DOCKER_HOST=docker_host,
        DOCKER_CONFIG=str(config),
        HOME=str(home),
        PYTHONPATH=str(REPO_ROOT),
        **extra,
    )
    return env


def _dockwarden(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    # cwd is the tmp dir so no .env file of the checkout is read.
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def four(registries: Any, images: Any, containers: Any) -> dict[str, Any]:
    """An up-to-date, an outdated, a pinned and a local container; by role."""
    anon = registries.anonymous
    stem = f"dwcli/{os.getpid()}-{uuid.uuid4().hex[:6]}"
    current = images.push(anon, f"{stem}-cur", "v1", version=1)
    images.push(anon, f"{stem}-old", "v1", version=1)
    up = containers.run(f"{anon.host}/{stem}-cur:v1")
    old = containers.run(f"{anon.host}/{stem}-old:v1")
    images.push(anon, f"{stem}-old", "v1", version=2)
    pinned = containers.run(f"{anon.host}/{stem}-cur@{current}")
    local_tag = f"dwcli-local-{os.getpid()}-{uuid.uuid4().hex[:6]}:1"
    images.build_local(local_tag, 1)
    local = containers.run(local_tag)
    return {"up": up, "old": old, "pinned": pinned, "local": local}


def test_check_json_is_exactly_the_contract_document(
    tmp_path: Path, docker_host: str, four: dict[str, Any]
) -> None:
    names = [c.name for c in four.values()]
    done = _dockwarden(tmp_path, _env(tmp_path, docker_host), "check", "--json", *names)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # stdout holds the document and nothing else
    assert set(document) == {"checked_at", "results"}
    assert "T" in document["checked_at"]
    by_name = {r["container"]: r for r in document["results"]}
    assert set(by_name) == set(names)
    for result in document["results"]:
        assert set(result) == RESULT_KEYS
        assert result["status"] in STATUSES
        assert result["reason"] is None or result["reason"] in REASONS
        if result["error"] is not None:
            assert set(result["error"]) == ERROR_KEYS
            assert result["error"]["kind"] in KINDS
    assert by_name[four["up"].name]["status"] == "up_to_date"
    assert by_name[four["old"].name]["status"] == "update_available"
    assert by_name[four["pinned"].name]["reason"] == "pinned_digest"
    assert by_name[four["local"].name]["reason"] == "local_image"
    assert by_name[four["local"].name]["image"].startswith("docker.io/library/dwcli-local-")


def test_check_table_lists_each_container_with_its_status(
    tmp_path: Path, docker_host: str, four: dict[str, Any]
) -> None:
    names = [c.name for c in four.values()]
    done = _dockwarden(tmp_path, _env(tmp_path, docker_host), "check", *names)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["CONTAINER", "IMAGE", "STATUS", "DETAIL"]
    row = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert "up to date" in row[four["up"].name]
    assert "update available" in row[four["old"].name]
    assert "pinned by digest" in row[four["pinned"].name]
    assert "local image" in row[four["local"].name]
    assert lines[-1].startswith("4 checked:")


def test_check_with_an_unknown_name_exits_2_naming_it(tmp_path: Path, docker_host: str) -> None:
    name = f"no-such-{uuid.uuid4().hex[:8]}"
    done = _dockwarden(tmp_path, _env(tmp_path, docker_host), "check", name)
    assert done.returncode == 2
    assert name in done.stderr
    assert done.stdout == ""


def test_check_without_an_engine_exits_3_with_a_json_error_object(tmp_path: Path) -> None:
    where = f"unix://{tmp_path}/nothing.sock"
    done = _dockwarden(tmp_path, _env(tmp_path, where), "check", "--json")
    assert done.returncode == 3
    assert "no Docker engine answers" in done.stderr
    assert where in done.stderr
    error = json.loads(done.stdout)["error"]  # stdout holds one JSON document, even now
    assert error["kind"] == "engine_unavailable" and where in error["message"]


def test_env_file_after_the_subcommand_is_read_and_a_malformed_docker_host_is_exit_2(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path, "unused")
    del env["DOCKER_HOST"]
    settings = tmp_path / "conf" / "dockwarden.env"
    settings.parent.mkdir()
    settings.write_text("DOCKER_HOST=htp:/oops\n")
    done = _dockwarden(tmp_path, env, "check", "--json", "--env-file", str(settings), "-v")
    assert done.returncode == 2, done.stderr
    assert "DOCKER_HOST: not a Docker engine address" in done.stderr
    assert "Value error" not in done.stderr
    assert json.loads(done.stdout)["error"]["kind"] == "config"


def test_check_does_not_import_the_chat_libraries(
    tmp_path: Path, docker_host: str, four: dict[str, Any]
) -> None:
    probe = (
        "import sys\n"
        "from bot.entrypoints.cli import main\n"
        f"rc = main(['check', '--json', {four['up'].name!r}])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('telegram', 'discord'))\n"
        "print('CHAT', loaded, file=sys.stderr)\n"
        "raise SystemExit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=_env(tmp_path, docker_host),
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "CHAT []" in done.stderr


def test_doctor_reports_engine_registry_and_chat_without_printing_tokens(
    tmp_path: Path, docker_host: str, four: dict[str, Any], registries: Any
) -> None:
    secret = f"123456:{uuid.uuid4().hex}"
    from tests.services.procs import free_port

    # doctor asks Telegram: a local port where nothing listens keeps the test off the network.
    env = _env(tmp_path, docker_host, TELEGRAM_BOT_TOKEN=secret, TELEGRAM_CHAT_IDS="42",
               TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    done = _dockwarden(tmp_path, env, "doctor")
    assert secret not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("ok") and "docker" in line and "API" in line for line in lines)
    registry_lines = [line for line in lines if registries.anonymous.host in line]
    assert registry_lines and registry_lines[0].startswith("ok"), done.stdout
    assert any("TELEGRAM_BOT_TOKEN set" in line for line in lines)
    assert any(line.startswith("ok") and "database" in line and "writable" in line
               for line in lines)


def test_check_logs_no_info_line_beside_the_table(
    tmp_path: Path, docker_host: str, registries: Any, images: Any, containers: Any,
    odd_registry: Any,
) -> None:
    from tests.services.registry import RegistryService

    repo = f"dwcli/negotiate-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    images.push(registries.anonymous, repo, "v1", version=1)
    images.pull(RegistryService(name="odd", host=odd_registry.host), repo, "v1")
    odd = containers.run(f"{odd_registry.host}/{repo}:v1")
    odd_registry.challenges = ['Negotiate realm="corp"']
    done = _dockwarden(tmp_path, _env(tmp_path, docker_host), "check", odd.name)
    assert done.returncode == 0, done.stderr
    assert "unsupported_challenge" in done.stdout
    assert " INFO " not in done.stderr, done.stderr


def test_doctor_without_an_engine_fails(tmp_path: Path) -> None:
    done = _dockwarden(tmp_path, _env(tmp_path, f"unix://{tmp_path}/nothing.sock"), "doctor")
    assert done.returncode != 0
    assert done.stdout.splitlines()[0].startswith("FAIL")


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end of the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_progress_line_goes_to_a_terminal_stderr_only_when_the_pass_takes_a_while(
    tmp_path: Path, docker_host: str, registries: Any, images: Any, containers: Any,
    odd_registry: Any,
) -> None:
    from tests.services.registry import RegistryService

    repo = f"dwcli/slow-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    images.push(registries.anonymous, repo, "v1", version=1)
    images.pull(RegistryService(name="odd", host=odd_registry.host), repo, "v1")
    slow = containers.run(f"{odd_registry.host}/{repo}:v1")
    env = _env(tmp_path, docker_host)

    odd_registry.rate_limit(1, retry_after="2")  # the pass now lasts two seconds at least
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "check", slow.name], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120,
        )
        os.close(slave)
        terminal = _read_all(master).decode(errors="replace")
    finally:
        os.close(master)
    assert done.returncode == 0
    assert "checking images" in terminal
    assert "checking images" not in done.stdout
    assert slow.name in done.stdout

    odd_registry.rate_limit(1, retry_after="2")
    piped = _dockwarden(tmp_path, env, "check", slow.name)
    assert piped.returncode == 0
    assert "checking images" not in piped.stderr


def test_doctor_names_each_registrys_scheme_and_whether_credentials_were_found(
    tmp_path: Path, docker_host: str, registries: Any, images: Any, containers: Any,
    docker_config: Any,
) -> None:
    hosts = {}
    for registry in (registries.basic, registries.token):
        repo = f"dwcli/doctor-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        images.push(registry, repo, "v1", version=1)
        containers.run(f"{registry.host}/{repo}:v1")
        hosts[registry.name] = registry.host
    auths = {
        r.host: {"username": r.username, "password": r.password}
        for r in (registries.basic, registries.token)
    }

    def lines_for(config_dir: str) -> dict[str, str]:
        env = _env(tmp_path, docker_host)
        env["DOCKER_CONFIG"] = config_dir
        done = _dockwarden(tmp_path, env, "doctor")
        found = {}
        for name, host in hosts.items():
            (line,) = [x for x in done.stdout.splitlines() if f" {host}:" in x]
            found[name] = line
        assert registries.basic.password not in done.stdout + done.stderr
        return found

    with_creds = lines_for(docker_config(auths))
    assert with_creds["basic"].startswith("ok")
    assert "basic auth; credentials found" in with_creds["basic"]
    assert with_creds["token"].startswith("ok")
    assert "bearer auth; credentials found" in with_creds["token"]

    without = lines_for(docker_config({}))
    assert without["basic"].startswith("FAIL")
    assert "no credentials" in without["basic"] and "auth_failed" in without["basic"]
