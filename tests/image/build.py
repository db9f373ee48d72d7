"""Build DockWarden's image for the tests the way `make image` does, without any public registry.

The base is the locally made Debian image (tests/services/base_image.py); the wheels come from
this machine's own pip configuration (`pip wheel` on the host, `WHEELS_ONLY=1` in the build).
The image is tagged by a hash of everything it is built from, so a session whose sources did
not change reuses the image an earlier session built on the same engine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

from tests.services import WORK_ROOT
from tests.services.base_image import ensure_base_image

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "dockwarden-test"
BUILDER_REPOSITORY = "dockwarden-test-builder"
# What the Dockerfile's .dockerignore lets in, besides the wheels.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
CONTEXT_DIRS = ("bot", "adapters")
# When each image key was last used, by any session on this machine: another session may be
# running on an image this one does not know, and only keys nobody used for a while go.
USED_DIR = WORK_ROOT / "image-keys"
FORGET_AFTER = 3 * 3600.0  # seconds


class ImageBuildFailed(RuntimeError):
    """docker build stopped with an error; the message names the log."""


def _wheels(logfile: Path) -> Path:
    """The project's dependency wheels (and hatchling) from the host's pip, cached by inputs."""
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    key = hashlib.sha256(pyproject + sys.version.encode()).hexdigest()[:16]
    wheels = WORK_ROOT / "wheels" / key
    if wheels.exists():
        return wheels
    wheels.parent.mkdir(parents=True, exist_ok=True)
    with open(wheels.parent / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if wheels.exists():
            return wheels
        partial = wheels.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with open(logfile, "ab") as out:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(partial), str(ROOT),
                 "hatchling"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False,
            )
        if done.returncode != 0:
            raise ImageBuildFailed(f"pip wheel failed ({done.returncode}); see {logfile}")
        for own in partial.glob("dockwarden-*.whl"):
            own.unlink()
        partial.rename(wheels)
    return wheels


def _sources(workdir: Path) -> Path:
    """This session's copy of the sources the image is built from, taken once: every image
    of a session (v1 and v2 of the self-update tests too) is built from the same code, even
    while the working tree changes under a long run."""
    snapshot = workdir / "sources"
    if snapshot.exists():
        return snapshot
    partial = workdir / "sources.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in CONTEXT_FILES:
        shutil.copy2(ROOT / name, partial / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in CONTEXT_DIRS:
        shutil.copytree(ROOT / name, partial / name, ignore=ignore)
    partial.rename(snapshot)
    return snapshot


def _context(target: Path, sources: Path, wheels: Path) -> str:
    """Copy the build context into `target`; returns the hash of its contents."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(sources, target)
    shutil.copytree(wheels, target / "build" / "wheels")
    digest = hashlib.sha256()
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        rel = path.relative_to(target).as_posix()
        digest.update(rel.encode() + b"\0")
        digest.update(path.name.encode() if rel.startswith("build/") else path.read_bytes())
    return digest.hexdigest()[:16]


def _build(client: docker.DockerClient, context: Path, tag: str, logfile: Path,
           **options: object) -> None:
    with open(logfile, "a") as out:
        for chunk in client.api.build(path=str(context), tag=tag, rm=True, forcerm=True,
                                      decode=True, **options):
            if "stream" in chunk:
                out.write(chunk["stream"])
            if "error" in chunk:
                out.write(json.dumps(chunk) + "\n")
                raise ImageBuildFailed(f"docker build of {tag} failed: {chunk['error'].strip()}"
                                       f" (log {logfile})")


def build_image(
    client: docker.DockerClient,
    workdir: Path,
    *,
    version: str = "0.1.0",
) -> str:
    """DockWarden's image on `client`'s engine (built, or reused by hash); returns its tag."""
    logfile = workdir / "image-build.log"
    workdir.mkdir(parents=True, exist_ok=True)
    base = ensure_base_image(client)
    wheels = _wheels(logfile)
    context = workdir / f"context-{version}"
    key = _context(context, _sources(workdir), wheels)
    base_id = client.images.get(base).id
    key = hashlib.sha256(f"{key} {base_id} {version}".encode()).hexdigest()[:16]
    tag = f"{REPOSITORY}:{key}"
    _mark_used(key)
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(tag)
        return tag
    args = {"BASE_IMAGE": base, "WHEELS_ONLY": "1", "VERSION": version, "REVISION": key}
    # The builder stage gets a tag of its own so that it can be removed, not left dangling.
    _build(client, context, f"{BUILDER_REPOSITORY}:{key}", logfile, buildargs=args,
           target="builder")
    _build(client, context, tag, logfile, buildargs=args)
    _forget_older(client)
    return tag


def _mark_used(key: str) -> None:
    USED_DIR.mkdir(parents=True, exist_ok=True)
    (USED_DIR / key).touch()


def _recently_used(key: str) -> bool:
    try:
        return time.time() - (USED_DIR / key).stat().st_mtime < FORGET_AFTER
    except OSError:
        return False


def _forget_older(client: docker.DockerClient) -> None:
    """Remove the tags of builds nobody used lately (vfs keeps a full copy per layer)."""
    for repository in (REPOSITORY, BUILDER_REPOSITORY):
        for image in client.images.list(name=repository):
            for tag in image.tags:
                repo, _, key = tag.rpartition(":")
                if repo == repository and not _recently_used(key.split("-")[0]):
                    with contextlib.suppress(docker.errors.APIError):
                        client.images.remove(tag, noprune=False)


def derive(client: docker.DockerClient, image: str, variant: str, config: dict[str, Any]) -> str:
    """`image` with its config changed (labels, health check) and nothing else, tagged
    `<image>-<variant>-<hash of the changes>` and reused. The new config on the same layers goes
    in by `docker load`, which takes the layers it already has from the engine: no copy of the
    root filesystem (a commit of a container costs two on vfs). Fields given replace the
    image's, and the mappings among them (Labels, Healthcheck) are merged into the image's, as a
    commit does."""
    changes = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    tag = f"{image}-{variant}-{changes}"
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(tag)
        return tag
    archive = _config_only_archive(client.api.inspect_image(image), tag, config)
    for event in client.api.load_image(archive):
        if "error" in event:
            raise ImageBuildFailed(f"docker load of {tag} failed: {event['error']}")
    client.images.get(tag)  # raises if the engine did not take it
    return tag


def _config_only_archive(attrs: dict[str, Any], tag: str, changes: dict[str, Any]) -> bytes:
    """A `docker save` archive of the image `attrs` describes, with `changes` in its config,
    that names its layers but holds none of them (the engine has them all)."""
    merged = dict(attrs["Config"])
    for key, value in changes.items():
        before = merged.get(key)
        merged[key] = {**before, **value} if isinstance(before, dict) and isinstance(value, dict) \
            else value
    layers = attrs["RootFS"]["Layers"]
    image_config = json.dumps({
        "architecture": attrs["Architecture"], "os": attrs["Os"], "created": attrs["Created"],
        "config": merged, "rootfs": {"type": "layers", "diff_ids": layers},
    }).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [tag],
                            "Layers": [f"{n}/layer.tar" for n in range(len(layers))]}]).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("config.json", image_config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive.getvalue()
