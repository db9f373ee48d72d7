"""A Debian base image made on this machine, for building DockWarden's image in the tests.

`debootstrap --variant=minbase --include=python3,python3-venv bookworm` from the Debian mirror
the machine's apt already uses, then `docker import`: nothing is pulled from a public registry.
The root filesystem is kept (as a tarball) under WORK_ROOT between runs and the image by its
tag, so only the first run on a machine pays for debootstrap; concurrent sessions share both
under a file lock.
"""

from __future__ import annotations

import fcntl
import logging
import re
import shutil
import subprocess
from pathlib import Path

import docker
import docker.errors

from tests.services import WORK_ROOT

log = logging.getLogger(__name__)

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv")
# Bump the suffix when the recipe changes, so a stale cached base is not reused.
BASE_IMAGE = f"dockwarden-test-base:{SUITE}-1"
ROOT = WORK_ROOT / f"debian-{SUITE}"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _sources_text() -> list[str]:
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    texts = []
    for path in files:
        try:
            texts.append(path.read_text(errors="replace"))
        except OSError:
            continue
    return texts


def debian_mirror(texts: list[str] | None = None, suite: str = SUITE) -> str:
    """The URI apt uses for `suite` (one-line or deb822 sources), not a security mirror."""
    for text in _sources_text() if texts is None else texts:
        for line in text.splitlines():
            match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s", line + " ")
            if match and match.group(2) == suite and "security" not in match.group(1):
                return match.group(1)
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (ln.partition(":") for ln in stanza.splitlines())
                if not k.lstrip().startswith("#") and v
            )
            uris, suites = fields.get("uris", "").split(), fields.get("suites", "").split()
            if "deb" in fields.get("types", "").split() and suite in suites:
                for uri in uris:
                    if "security" not in uri:
                        return uri
    return FALLBACK_MIRROR


def _rootfs_tarball(logfile: Path) -> Path:
    """The debootstrapped root filesystem as a tarball (made once, kept under WORK_ROOT)."""
    tarball = ROOT / "rootfs.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is missing: run `python -m tests.services prepare` as root")
    target = ROOT / "rootfs"
    shutil.rmtree(target, ignore_errors=True)
    mirror = debian_mirror()
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
            str(target), mirror]
    log.info("debootstrap %s from %s (log %s)", SUITE, mirror, logfile)
    with open(logfile, "ab") as out:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              check=False)
    if done.returncode != 0:
        raise RuntimeError(f"debootstrap failed ({done.returncode}); see {logfile}")
    # What apt downloaded, and documentation, are of no use in an image (slim images drop them).
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (target / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    for docs in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"):
        shutil.rmtree(target / docs, ignore_errors=True)
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(target), "-cf", str(partial), "."], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    partial.rename(tarball)
    shutil.rmtree(target, ignore_errors=True)
    return tarball


def ensure_base_image(client: docker.DockerClient) -> str:
    """The base image's tag on `client`'s engine, made (and cached) when it is not there."""
    try:
        client.images.get(BASE_IMAGE)
        return BASE_IMAGE
    except docker.errors.ImageNotFound:
        pass
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be making it right now
        tarball = _rootfs_tarball(ROOT / "debootstrap.log")
        try:
            client.images.get(BASE_IMAGE)
            return BASE_IMAGE
        except docker.errors.ImageNotFound:
            pass
        repository, tag = BASE_IMAGE.split(":")
        with open(tarball, "rb") as data:
            # A generator: requests sends it chunked properly (a file object it does not).
            chunks = iter(lambda: data.read(1 << 20), b"")
            client.api.import_image_from_stream(chunks, repository=repository, tag=tag,
                                                changes=[f"ENV {PATH_ENV}"])
    client.images.get(BASE_IMAGE)  # raises if the import did not make it
    return BASE_IMAGE
