"""Smoke tests pinning the real test services every integration test stands on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docker
import httpx
import pytest

from tests.services import SESSION_LABEL
from tests.services.__main__ import is_static_elf
from tests.services.containers import ContainerFactory
from tests.services.engine import Engine, answers, remove_session_resources
from tests.services.images import (
    OCI_INDEX,
    OCI_MANIFEST,
    ImageFactory,
    busybox_path,
    registry_headers,
)
from tests.services.latency_proxy import LatencyProxy
from tests.services.odd_registry import OddRegistry
from tests.services.procs import pid_alive
from tests.services.registry import Registries, RegistryService

pytestmark = pytest.mark.integration

ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST,
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])


def _head(registry: RegistryService, repository: str, tag: str) -> httpx.Response:
    headers = {"Accept": ACCEPT, **registry_headers(registry, repository, "pull")}
    return httpx.head(f"{registry.url}/v2/{repository}/manifests/{tag}", headers=headers)


@pytest.mark.parametrize("which", ["anonymous", "basic", "token"])
def test_push_returns_the_digest_the_registry_serves(
        images: ImageFactory, registries: Registries, which: str) -> None:
    registry = getattr(registries, which)
    digest = images.push(registry, "smoke/app", "v1", version=1)
    r = _head(registry, "smoke/app", "v1")
    assert r.status_code == 200
    assert r.headers["Docker-Content-Digest"] == digest


def test_versions_differ_and_repush_moves_the_tag(images: ImageFactory,
                                                  registries: Registries) -> None:
    reg = registries.anonymous
    first = images.push(reg, "smoke/versions", "latest", version=1)
    second = images.push(reg, "smoke/versions", "latest", version=2)
    assert first != second
    assert _head(reg, "smoke/versions", "latest").headers["Docker-Content-Digest"] == second


def test_basic_registry_refuses_anonymous_and_wrong_password(registries: Registries) -> None:
    reg = registries.basic
    assert httpx.get(f"{reg.url}/v2/").status_code == 401
    assert httpx.get(f"{reg.url}/v2/", auth=(reg.username or "", "wrong")).status_code == 401
    assert httpx.get(f"{reg.url}/v2/", auth=(reg.username or "", reg.password or "")).status_code \
        == 200


def test_token_registry_challenges_with_its_realm(registries: Registries) -> None:
    reg = registries.token
    r = httpx.get(f"{reg.url}/v2/")
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{reg.realm}"' in challenge and f'service="{reg.service}"' in challenge


def _token(reg: RegistryService, scope: str, auth: tuple[str, str] | None) -> httpx.Response:
    return httpx.get(reg.realm or "", params={"service": reg.service or "", "scope": scope},
                     auth=auth)


def test_token_server_grants_anonymous_pull_only_under_public(
        images: ImageFactory, registries: Registries) -> None:
    reg = registries.token
    images.push(reg, "public/tool", "v1", version=1)
    images.push(reg, "private/tool", "v1", version=1)
    for repo, expected in (("public/tool", 200), ("private/tool", 401)):
        tok = _token(reg, f"repository:{repo}:pull", None)
        assert tok.status_code == 200
        r = httpx.head(f"{reg.url}/v2/{repo}/manifests/v1",
                       headers={"Accept": ACCEPT, "Authorization": f"Bearer {tok.json()['token']}"})
        assert r.status_code == expected


def test_token_server_logs_requests_and_refuses_bad_credentials(registries: Registries) -> None:
    reg = registries.token
    before = len(reg.token_requests)
    good = _token(reg, "repository:private/x:pull", (reg.username or "", reg.password or ""))
    bad = _token(reg, "repository:private/x:pull", (reg.username or "", "wrong"))
    assert good.status_code == 200 and bad.status_code == 401
    body = good.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0 and body["issued_at"]
    assert reg.token_requests[before:] == [
        ("GET", ("repository:private/x:pull",), reg.username),
        ("GET", ("repository:private/x:pull",), reg.username),
    ]


def test_identity_token_refresh_gives_a_working_token(images: ImageFactory,
                                                      registries: Registries) -> None:
    reg = registries.token
    digest = images.push(reg, "private/refresh", "v1", version=1)
    form = {"grant_type": "refresh_token", "refresh_token": reg.identity_token or "",
            "service": reg.service or "", "client_id": "dockwarden-tests",
            "scope": "repository:private/refresh:pull repository:other/x:pull"}
    r = httpx.post(reg.realm or "", data=form)
    assert r.status_code == 200
    assert reg.token_requests[-1] == (
        "POST", ("repository:private/refresh:pull", "repository:other/x:pull"), reg.username)
    head = httpx.head(f"{reg.url}/v2/private/refresh/manifests/v1",
                      headers={"Accept": ACCEPT, "Authorization": f"Bearer {r.json()['token']}"})
    assert head.headers["Docker-Content-Digest"] == digest
    refused = httpx.post(reg.realm or "", data={**form, "refresh_token": "not-a-token"})
    assert refused.status_code == 401


def test_engine_pushes_with_an_identity_token(
        images: ImageFactory, docker_client: docker.DockerClient, registries: Registries) -> None:
    reg = registries.token
    images.push(reg, "private/idtoken", "v1", version=3)
    before = len(reg.token_requests)
    docker_client.images.pull(f"{reg.host}/private/idtoken", tag="v1",
                              auth_config={"identitytoken": reg.identity_token})
    assert any(m == "POST" and u == reg.username for m, _, u in reg.token_requests[before:])


def test_multiarch_index_pulled_by_tag_records_the_index_digest(
        images: ImageFactory, registries: Registries) -> None:
    reg = registries.basic
    digest = images.push_multiarch(reg, "smoke/multi", "v1")
    r = _head(reg, "smoke/multi", "v1")
    assert r.headers["Content-Type"] == OCI_INDEX
    assert r.headers["Docker-Content-Digest"] == digest
    pulled = images.pull(reg, "smoke/multi", "v1")
    assert f"{reg.host}/smoke/multi@{digest}" in pulled.attrs["RepoDigests"]


def test_container_from_pushed_image_runs_and_reads_its_version(
        images: ImageFactory, registries: Registries, containers: ContainerFactory) -> None:
    reg = registries.anonymous
    images.push(reg, "smoke/run", "v1", version=7)
    c = containers.run(f"{reg.host}/smoke/run:v1")
    c.reload()
    assert c.status == "running"
    assert c.labels[SESSION_LABEL] == str(os.getpid())
    code, out = c.exec_run(["cat", "/version"])
    assert code == 0 and b"version 7" in out


def test_build_local_image_has_options_and_no_repo_digest(
        images: ImageFactory, docker_client: docker.DockerClient) -> None:
    name = f"dwt-local-{os.getpid()}/app:1"
    image_id = images.build_local(
        name, 1, env={"A": "b c"}, labels={"x": "y"}, healthcheck=["true"],
        volumes=["/data"], workdir="/tmp", ports=[8080], cmd=["sh", "-c", "sleep 5"])
    image = docker_client.images.get(name)
    assert image.id == image_id and image.attrs["RepoDigests"] == []
    cfg = image.attrs["Config"]
    assert "A=b c" in cfg["Env"] and cfg["Labels"]["x"] == "y"
    assert cfg["Healthcheck"]["Test"] == ["CMD", "true"]
    assert "/data" in cfg["Volumes"] and cfg["WorkingDir"] == "/tmp"
    assert "8080/tcp" in cfg["ExposedPorts"] and cfg["Cmd"] == ["sh", "-c", "sleep 5"]


def test_test_image_container_ends_on_sigterm_instead_of_waiting_for_a_kill(
        images: ImageFactory, containers: ContainerFactory) -> None:
    image = f"dwt-local-{os.getpid()}/stops:1"
    images.build_local(image, 1)
    container = containers.run(image)
    deadline = time.monotonic() + 30
    # `sleep` runs once the shell has set its trap: a SIGTERM before that would go unheard.
    while not any(p[-1].split()[0] == "sleep" for p in container.top()["Processes"]):
        assert time.monotonic() < deadline, container.top()
        time.sleep(0.1)
    container.stop(timeout=60)  # a PID 1 deaf to SIGTERM would be killed (137) after 60 s
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0


def test_leftovers_of_dead_sessions_go_and_live_ones_stay(
        images: ImageFactory, docker_client: docker.DockerClient) -> None:
    image = f"dwt-local-{os.getpid()}/leftover:1"
    images.build_local(image, 1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = dead.stdout.strip()
    live_pid = str(os.getppid())  # our parent outlives this test
    made = []
    try:
        for pid in (dead_pid, live_pid):
            labels = {SESSION_LABEL: pid}
            made.append(docker_client.containers.create(image, labels=labels))
            made.append(docker_client.networks.create(f"dwt-left-{pid}", labels=labels))
            made.append(docker_client.volumes.create(f"dwt-left-{pid}", labels=labels))
        removed = remove_session_resources(docker_client, dead_only=True)
        assert made[0].name in removed["containers"]
        assert "dwt-left-" + dead_pid in removed["networks"]
        assert "dwt-left-" + dead_pid in removed["volumes"]
        docker_client.containers.get(made[3].id)
        docker_client.networks.get(made[4].id)
        docker_client.volumes.get(made[5].name)
        assert all("dwt-left-" + live_pid not in names for names in removed.values())
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(made[0].id)
    finally:
        remove_session_resources(docker_client, dead_only=False, session=int(live_pid))


def test_dead_registry_refuses_connections(dead_registry: str) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{dead_registry}/v2/")


def test_odd_registry_proxies_faithfully_by_default(
        images: ImageFactory, registries: Registries, odd_registry: OddRegistry) -> None:
    anon = registries.anonymous
    digest = images.push(anon, "smoke/odd", "v1", version=1)
    r = httpx.head(f"{odd_registry.url}/v2/smoke/odd/manifests/v1", headers={"Accept": ACCEPT})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    assert [(q.method, q.path, q.status) for q in odd_registry.requests] == [
        ("HEAD", "/v2/smoke/odd/manifests/v1", 200)]


def test_odd_registry_misbehaves_as_programmed(
        images: ImageFactory, registries: Registries, odd_registry: OddRegistry) -> None:
    images.push(registries.anonymous, "smoke/odd", "v1", version=1)
    url = f"{odd_registry.url}/v2/smoke/odd/manifests/v1"
    odd_registry.head_digest = False
    head = httpx.head(url, headers={"Accept": ACCEPT})
    assert head.status_code == 200 and "Docker-Content-Digest" not in head.headers
    assert httpx.get(url, headers={"Accept": ACCEPT}).headers["Docker-Content-Digest"]
    odd_registry.head_allowed = False
    assert httpx.head(url).status_code == 405
    odd_registry.rate_limit(2, retry_after="3")
    limited = [httpx.get(url) for _ in range(3)]
    assert [r.status_code for r in limited] == [429, 429, 200]
    assert limited[0].headers["Retry-After"] == "3"
    odd_registry.challenges = ['Negotiate', 'Basic realm="odd"']
    refused = httpx.get(f"{odd_registry.url}/v2/")
    assert refused.status_code == 401
    assert refused.headers.get_list("www-authenticate") == ['Negotiate', 'Basic realm="odd"']
    assert httpx.get(f"{odd_registry.url}/v2/", auth=("u", "p")).status_code == 200
    odd_registry.garbage = True
    junk = httpx.get(f"{odd_registry.url}/v2/", auth=("u", "p"))
    assert junk.status_code == 200 and "Docker-Content-Digest" not in junk.headers


def test_engine_pushes_through_the_odd_registry(
        images: ImageFactory, registries: Registries, odd_registry: OddRegistry) -> None:
    front = RegistryService("odd", odd_registry.host)
    digest = images.push(front, "smoke/via-odd", "v1", version=2)
    assert _head(registries.anonymous, "smoke/via-odd", "v1").headers[
        "Docker-Content-Digest"] == digest


def test_latency_proxy_forwards_and_counts_connections(registries: Registries) -> None:
    host, port = registries.anonymous.host.split(":")
    with LatencyProxy(host, int(port), delay=0.005) as proxy, \
            httpx.Client(base_url=f"http://{proxy.host}") as client:
        statuses = [client.get("/v2/").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert proxy.connections == 1


def test_own_engine_starts_answers_and_stops_where_another_runs(
        services_dir: Path, docker_host: str) -> None:
    engine = Engine(services_dir / "own-engine", force_own=True)
    try:
        url = engine.start()
        assert engine.started and url != docker_host
        assert engine.client.ping()
        pid = engine.proc.pid if engine.proc else 0
    finally:
        engine.stop()
    assert not answers(url)
    assert not pid_alive(pid) or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_docker_config_writes_auths_docker_reads(docker_config: Callable[..., str]) -> None:
    path = docker_config({"127.0.0.1:5000": {"username": "u", "password": "p"},
                          "127.0.0.1:5001": {"identitytoken": "tok"}}, credsStore="none")
    written = json.loads((Path(path) / "config.json").read_text())
    assert written["auths"]["127.0.0.1:5000"] == {"auth": "dTpw"}
    assert written["auths"]["127.0.0.1:5001"] == {"identitytoken": "tok"}
    assert written["credsStore"] == "none"


def test_token_server_password_grant_returns_the_identity_token(registries: Registries) -> None:
    reg = registries.token
    form = {"grant_type": "password", "username": reg.username or "",
            "password": reg.password or "", "service": reg.service or "",
            "client_id": "dockwarden-tests", "access_type": "offline"}
    r = httpx.post(reg.realm or "", data=form)
    assert r.status_code == 200 and r.json()["refresh_token"] == reg.identity_token
    assert httpx.post(reg.realm or "", data={**form, "password": "wrong"}).status_code == 401


def test_stale_pidfile_naming_another_process_is_left_alone(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "docker.pid").write_text(str(sleeper.pid))
        Engine(tmp_path)._kill_stale_daemon()
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_prepare_prints_one_line_when_everything_is_present() -> None:
    done = subprocess.run([sys.executable, "-m", "tests.services", "prepare"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and "present" in done.stdout


def test_images_are_made_of_a_static_busybox() -> None:
    assert is_static_elf(busybox_path())
    assert not is_static_elf(Path(sys.executable).resolve())
