"""`python -m tests.services prepare`: install what the test services need (root on Debian).

Idempotent and quick when everything is there; prints one line per thing it does.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.services import WORK_ROOT

_PT_INTERP = 3


def is_static_elf(path: Path) -> bool:
    """Whether an ELF64 binary has no program interpreter (runs in an empty rootfs)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            phoff, = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != _PT_INTERP
               for i in range(phnum))


def _static_busybox() -> bool:
    return any(is_static_elf(Path(p)) for p in ("/bin/busybox", "/usr/bin/busybox"))


# (what, Debian package, check)
NEEDS: list[tuple[str, str, Callable[[], bool]]] = [
    ("dockerd", "docker.io", lambda: shutil.which("dockerd") is not None),
    ("docker-registry", "docker-registry", lambda: shutil.which("docker-registry") is not None),
    ("static busybox", "busybox-static", _static_busybox),
    ("htpasswd", "apache2-utils", lambda: shutil.which("htpasswd") is not None),
    # The Debian base of the image tests (tests/services/base_image.py).
    ("debootstrap", "debootstrap", lambda: shutil.which("debootstrap") is not None),
    # The Podman engine the check and update tests also run on (tests/services/podman.py).
    ("podman", "podman", lambda: shutil.which("podman") is not None),
]


def prepare() -> int:
    """Install the missing packages, fetch Debian 13's Docker and Compose; returns an exit code."""
    installed = install_packages()
    if installed != 0:
        return installed
    return fetch_newer_engine() or fetch_compose()


def fetch_newer_engine() -> int:
    """Download and unpack Debian 13's Docker beside the system's (once; cached after)."""
    from tests.services import newer_engine

    return _fetch_once("Debian 13 docker.io and containerd", "Debian 13 Docker",
                       newer_engine.TRIXIE_ROOT, newer_engine.unpacked, newer_engine.fetch,
                       "prepare-trixie.log")


def fetch_compose() -> int:
    """Download and unpack Debian 13's Compose v2 beside the system's Docker (once; cached)."""
    from tests.services import compose

    return _fetch_once("Debian 13 docker-compose", "Compose v2", compose.COMPOSE_ROOT,
                       compose.unpacked, compose.fetch, "prepare-compose.log")


def _fetch_once(what: str, short: str, into: Path, unpacked: Callable[[], bool],
                fetch: Callable[[Path], None], log_name: str) -> int:
    """Fetch what is not unpacked yet; a failure is said but not fatal (its tests skip)."""
    if unpacked():
        return 0  # cached from an earlier run: nothing to do, nothing to say
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    logfile = WORK_ROOT / log_name
    print(f"test services: fetching {what} into {into} (log {logfile})", flush=True)
    try:
        fetch(logfile)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"test services: {short} unavailable: {exc}", file=sys.stderr)
    return 0


def install_packages() -> int:
    """Install the missing packages with apt-get; returns an exit code."""
    missing = [(what, pkg) for what, pkg, present in NEEDS if not present()]
    if not missing:
        print(f"test services: {', '.join(what for what, _, _ in NEEDS)} present")
        return 0
    names = ", ".join(what for what, _ in missing)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"test services: missing {names}; install them "
              f"({' '.join(p for _, p in missing)}) as root", file=sys.stderr)
        return 1
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    logfile = WORK_ROOT / "prepare-apt.log"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [
        ("apt-get update", ["apt-get", "update"]),
        (f"apt-get install {' '.join(p for _, p in missing)}",
         ["apt-get", "install", "-y", "--no-install-recommends", *(p for _, p in missing)]),
    ]
    with open(logfile, "ab") as log:
        for label, argv in steps:
            print(f"test services: {label} (log {logfile})", flush=True)
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, env=env, check=False)
            if done.returncode != 0:
                print(f"test services: {label} failed ({done.returncode}); see {logfile}",
                      file=sys.stderr)
                return 1
    still = [what for what, _, present in NEEDS if not present()]
    if still:
        print(f"test services: still missing after install: {', '.join(still)}", file=sys.stderr)
        return 1
    print(f"test services: installed {names}")
    return 0


def main(argv: list[str]) -> int:
    """Entry point: `prepare` is the only command."""
    if argv[1:] != ["prepare"]:
        print("usage: python -m tests.services prepare", file=sys.stderr)
        return 2
    return prepare()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
