"""Docker 26.1 from Debian 13 with the containerd image store, beside the system's Docker.

Nothing is installed over the system: `fetch()` downloads the `docker.io` and `containerd`
packages of Debian 13 with a private apt configuration and unpacks them with `dpkg -x` under
TRIXIE_ROOT (kept between runs). `ContainerdStoreEngine` starts that dockerd with its own socket,
data root, exec root and bridge, the containerd snapshotter feature, the `native` snapshotter
(no overlay mounts needed) and its own containerd (first on PATH, managed by that dockerd under
its exec root). runc is the system's: Debian 13's needs a newer glibc than Debian 12 has.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.services import WORK_ROOT
from tests.services.engine import Engine

TRIXIE_ROOT = WORK_ROOT / "trixie"
PACKAGES = ("docker.io", "containerd")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MIRROR = os.environ.get("DOCKWARDEN_TEST_TRIXIE_MIRROR", "http://deb.debian.org/debian")
UNPACKED = TRIXIE_ROOT / "root"
DOCKERD = UNPACKED / "usr" / "sbin" / "dockerd"


class NewerEngineUnavailable(RuntimeError):
    """The Debian 13 engine is not unpacked here (or cannot be fetched)."""


def unpacked() -> bool:
    """Whether the Debian 13 dockerd and containerd are unpacked and complete."""
    return (UNPACKED / ".complete").exists() and DOCKERD.exists()


def _apt_options(base: Path) -> list[str]:
    """apt options that keep every list, lock and cache under `base` (the system's untouched)."""
    return [
        "-o", f"Dir::Etc::SourceList={base / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::Etc::Preferences={base / 'preferences'}",
        "-o", "Dir::Etc::PreferencesParts=/dev/null",
        "-o", f"Dir::State={base / 'state'}",
        "-o", "Dir::State::status=/dev/null",
        "-o", f"Dir::Cache={base / 'cache'}",
        "-o", "APT::Architecture=amd64",
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
    ]


def fetch(log: Path) -> None:
    """Download and unpack Debian 13's docker.io and containerd (nothing when already there)."""
    if unpacked():
        return
    fetch_packages(PACKAGES, UNPACKED, log)


def fetch_packages(packages: Sequence[str], into: Path, log: Path) -> None:
    """`apt-get download` Debian 13's `packages` and `dpkg -x` them into `into` (marked
    complete with `.complete`); raises NewerEngineUnavailable saying why when it cannot."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise NewerEngineUnavailable("apt-get and dpkg are needed to fetch Debian 13's packages")
    apt = TRIXIE_ROOT / "apt"
    debs = TRIXIE_ROOT / "debs"
    for d in (apt / "state" / "lists" / "partial", apt / "cache" / "archives" / "partial", debs):
        d.mkdir(parents=True, exist_ok=True)
    signed = f" [signed-by={KEYRING}]" if KEYRING.exists() else ""
    (apt / "sources.list").write_text(f"deb{signed} {MIRROR} trixie main\n")
    (apt / "preferences").write_text("")
    options = _apt_options(apt)
    with open(log, "ab") as out:
        for argv, cwd in ((["apt-get", *options, "update"], None),
                          (["apt-get", *options, "download", *packages], debs)):
            done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                raise NewerEngineUnavailable(f"{' '.join(argv[:1] + argv[-1:])} failed "
                                             f"({done.returncode}); see {log}")
        shutil.rmtree(into, ignore_errors=True)
        for package in packages:
            found = sorted(debs.glob(f"{package}_*.deb"))
            if not found:
                raise NewerEngineUnavailable(f"apt-get download left no {package} package")
            subprocess.run(["dpkg", "-x", str(found[-1]), str(into)], check=True,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    (into / ".complete").write_text(" ".join(packages) + "\n")


class ContainerdStoreEngine(Engine):
    """The Debian 13 dockerd with the containerd image store, always our own process."""

    store = "containerd"

    def __init__(self, root: Path | None = None) -> None:
        super().__init__(root or WORK_ROOT / "engine-c8d", force_own=True)

    def start(self) -> str:
        """Start the Debian 13 dockerd; raises NewerEngineUnavailable when not unpacked."""
        if not unpacked():
            raise NewerEngineUnavailable(
                f"Debian 13's Docker is not unpacked under {TRIXIE_ROOT}: run "
                "`python -m tests.services prepare`")
        self._start_own(another_engine=True)
        return self.url

    def _dockerd(self) -> str:
        return str(DOCKERD)

    def _daemon_options(self) -> list[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "daemon.json"
        config.write_text(json.dumps({"features": {"containerd-snapshotter": True}}))
        return [f"--config-file={config}", "--storage-driver=native"]

    def _daemon_env(self) -> dict[str, str]:
        # Its own containerd and shims first; runc (and iptables, ip) from the system.
        ours = [str(UNPACKED / "usr" / "bin"), str(UNPACKED / "usr" / "sbin")]
        return {**os.environ, "PATH": ":".join([*ours, os.environ.get("PATH", "")])}
