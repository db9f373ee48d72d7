"""`doctor`'s registry findings with credential helpers, against the real registries."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config.settings import Settings
from bot.doctor.checks import Finding, registry_findings
from bot.domain.reference import parse_reference
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from tests.services.containers import write_docker_config

pytestmark = pytest.mark.integration

BROKEN = """#!/bin/sh
echo "the keychain is locked"
exit 1
"""

# Answers only once another lookup has started too: lookups made one after another on the
# event loop (the first blocking the second) never meet, and this one then fails.
BARRIER = """#!/bin/sh
read server
touch "$DW_BARRIER_DIR/started-$$"
i=0
while [ $i -lt 40 ]; do
  if [ "$(ls "$DW_BARRIER_DIR" | grep -c started-)" -ge 2 ]; then
    echo "credentials not found in native keychain"; exit 1
  fi
  sleep 0.1; i=$((i+1))
done
echo "alone: no other lookup ran meanwhile"
exit 1
"""


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """docker-credential-dwbroken and docker-credential-dwbarrier on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("dwbroken", BROKEN), ("dwbarrier", BARRIER)):
        program = bin_dir / f"docker-credential-{name}"
        program.write_text(script)
        program.chmod(0o755)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("DW_BARRIER_DIR", str(barrier))
    yield barrier


@pytest.fixture
def two_registries(registries: Any, odd_registry: Any, images: Any) -> tuple[str, str, str]:
    """(repository, anonymous host, host of a second registry in front of it) with one image."""
    repo = f"dwdoctor/app-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    images.push(registries.anonymous, repo, "v1", version=1)
    return repo, registries.anonymous.host, odd_registry.host


async def _findings(config_dir: str, repo: str, hosts: tuple[str, ...]) -> dict[str, Finding]:
    settings = Settings(_env_file=None, DOCKER_CONFIG=config_dir)  # type: ignore[call-arg]
    refs = [parse_reference(f"{host}/{repo}:v1") for host in hosts]
    credentials = DockerCredentials(config_dir)
    async with RegistryClient(credentials=DockerCredentials(config_dir)) as client:
        found = await registry_findings(settings, client, credentials, refs)
    return {f.subject: f for f in found}


async def test_a_failing_credential_helper_fails_only_its_own_registry(
    tmp_path: Path, helpers: Path, two_registries: tuple[str, str, str]
) -> None:
    repo, anon, other = two_registries
    config = write_docker_config(tmp_path / "cfg", {}, credHelpers={anon: "dwbroken"})
    findings = await _findings(config, repo, (anon, other))

    assert set(findings) == {anon, other}
    assert not findings[anon].ok
    assert "docker-credential-dwbroken failed" in findings[anon].text
    assert "the keychain is locked" in findings[anon].text
    assert findings[other].ok, findings[other].render()


async def test_credential_lookups_of_several_registries_run_side_by_side(
    tmp_path: Path, helpers: Path, two_registries: tuple[str, str, str]
) -> None:
    repo, anon, other = two_registries
    config = write_docker_config(tmp_path / "cfg", {},
                                 credHelpers={anon: "dwbarrier", other: "dwbarrier"})
    findings = await _findings(config, repo, (anon, other))

    for host in (anon, other):
        assert findings[host].ok, findings[host].render()
        assert "no credentials" in findings[host].text
    assert len(list(helpers.iterdir())) >= 2
