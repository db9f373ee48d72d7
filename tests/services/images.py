"""Test images: `docker import` of a busybox rootfs, pushed to the test registries."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.services.engine import session_labels
from tests.services.registry import RegistryService

APPLETS = (
    "sh", "sleep", "httpd", "wget", "cat", "echo", "test", "true", "false", "ls", "mkdir",
    "env", "id", "kill", "ps", "rm", "touch", "date", "grep", "nc", "hostname", "printf",
)
# A PID 1 that ends on SIGTERM: `docker stop` (and so every update, which stops the old
# container) is over at once, instead of waiting out the 10 s stop timeout for a SIGKILL as a
# bare `sleep` (which ignores SIGTERM as PID 1) makes it.
DEFAULT_CMD = ("sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# (index, manifest, config, layer) media types of the two families.
MEDIA_TYPES = {
    "oci": (OCI_INDEX, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
    "docker": (DOCKER_LIST, DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
}


def busybox_path() -> Path:
    """The static busybox binary the images are made of."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        p = Path(candidate)
        if p.exists():
            return p
    found = shutil.which("busybox")
    if found is None:
        raise RuntimeError("busybox is not installed: run `python -m tests.services prepare`")
    return Path(found)


@cache
def _busybox_bytes() -> bytes:
    return busybox_path().read_bytes()


@cache
def rootfs_tar(marker: str) -> bytes:
    """A busybox rootfs as an uncompressed tar whose /version file holds `marker`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, *, data: bytes | None = None, mode: int = 0o644,
                link: str | None = None, kind: bytes = tarfile.REGTYPE) -> None:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000  # fixed: same marker, same layer digest
            info.mode = mode
            info.type = kind
            if link is not None:
                info.linkname = link
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        for d in ("bin", "etc", "proc", "sys", "dev", "root", "var", "usr", "data"):
            add(d, mode=0o755, kind=tarfile.DIRTYPE)
        add("tmp", mode=0o1777, kind=tarfile.DIRTYPE)
        add("bin/busybox", data=_busybox_bytes(), mode=0o755)
        for applet in APPLETS:
            add(f"bin/{applet}", link="busybox", kind=tarfile.SYMTYPE)
        add("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n")
        add("etc/group", data=b"root:x:0:\n")
        add("version", data=f"{marker}\n".encode())
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def import_changes(*, cmd: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
                   labels: Mapping[str, str] | None = None,
                   healthcheck: str | Sequence[str] | None = None,
                   volumes: Sequence[str] | None = None, workdir: str | None = None,
                   ports: Sequence[str | int] | None = None,
                   entrypoint: Sequence[str] | None = None) -> list[str]:
    """Dockerfile-style `changes` for docker import; always labels the session."""
    changes = [f"CMD {json.dumps(list(cmd if cmd is not None else DEFAULT_CMD))}"]
    if entrypoint is not None:
        changes.append(f"ENTRYPOINT {json.dumps(list(entrypoint))}")
    for key, value in (env or {}).items():
        changes.append(f"ENV {key}={json.dumps(value)}")
    for key, value in {**session_labels(), **(labels or {})}.items():
        changes.append(f"LABEL {json.dumps(key)}={json.dumps(value)}")
    if healthcheck is not None:
        if isinstance(healthcheck, str):
            changes.append(f"HEALTHCHECK {healthcheck}")
        else:
            # Fast defaults: health-gated tests should not wait half a minute per probe.
            changes.append("HEALTHCHECK --interval=1s --timeout=3s --retries=3 "
                           f"CMD {json.dumps(list(healthcheck))}")
    if volumes:
        changes.append(f"VOLUME {json.dumps(list(volumes))}")
    if workdir is not None:
        changes.append(f"WORKDIR {workdir}")
    for port in ports or ():
        changes.append(f"EXPOSE {port}")
    return changes


def registry_headers(registry: RegistryService, repository: str,
                     actions: str = "pull,push") -> dict[str, str]:
    """Authorization for talking to a test registry's HTTP API directly."""
    if registry.realm is not None:
        auth = (registry.username or "", registry.password or "")
        r = httpx.get(registry.realm, params={"service": registry.service or "",
                                              "scope": f"repository:{repository}:{actions}"},
                      auth=auth if registry.username else None, timeout=10)
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['token']}"}
    if registry.username is not None:
        basic = httpx.BasicAuth(registry.username, registry.password or "")
        req = basic.sync_auth_flow(httpx.Request("GET", registry.url))
        return {"Authorization": next(req).headers["Authorization"]}
    return {}


class ImageFactory:
    """Makes distinct busybox images, pushes them to the test registries, pulls them back."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def _import(self, name_tag: str, version: int, **options: Any) -> str:
        repo, _, tag = name_tag.rpartition(":")
        if not repo or "/" in tag:
            repo, tag = name_tag, "latest"
        data = rootfs_tar(f"{repo}:{tag} version {version}")
        out = self.client.api.import_image_from_data(
            data, repository=repo, tag=tag, changes=import_changes(**options))
        status = [json.loads(line)["status"] for line in out.splitlines() if line.strip()]
        if not status or not status[-1].startswith("sha256:"):
            raise RuntimeError(f"docker import of {name_tag} failed: {out!r}")
        image_id: str = status[-1]
        # Podman's compatible API imports without the name it was given.
        self.client.api.tag(image_id, repo, tag)
        return image_id

    def build_local(self, name_tag: str, version: int = 1, **options: Any) -> str:
        """Import a distinct image under `name_tag` that is never pushed; returns its id."""
        return self._import(name_tag, version, **options)

    def push(self, registry: RegistryService, repository: str, tag: str = "latest",
             version: int = 1, **options: Any) -> str:
        """Import version `version` as host/repository:tag, push it; returns the manifest digest."""
        name = f"{registry.host}/{repository}"
        self._import(f"{name}:{tag}", version, **options)
        digest = ""
        for event in self.client.api.push(name, tag=tag, auth_config=registry.auth_config,
                                          stream=True, decode=True):
            if "error" in event:
                raise RuntimeError(f"push of {name}:{tag} failed: {event['error']}")
            aux = event.get("aux") or {}
            if "Digest" in aux:
                digest = aux["Digest"]
            # The containerd image store says it only in words: "v1: digest: sha256:... size: N".
            said = re.search(r"\bdigest: (sha256:[0-9a-f]{64})", str(event.get("status") or ""))
            if said and not digest:
                digest = said.group(1)
        if not digest:
            raise RuntimeError(f"push of {name}:{tag} reported no digest")
        return digest

    def pull(self, registry: RegistryService, repository: str, tag: str = "latest") -> Any:
        """Pull host/repository:tag through the engine (with the registry's credentials)."""
        return self.client.images.pull(f"{registry.host}/{repository}", tag=tag,
                                       auth_config=registry.auth_config)

    def push_multiarch(self, registry: RegistryService, repository: str, tag: str = "latest",
                       version: int = 1, family: str = "oci") -> str:
        """Push an index of linux/amd64 and linux/arm64 manifests; returns the index digest.

        `family` "oci" makes an OCI index of OCI manifests, "docker" a Docker manifest list.
        """
        index_type, manifest_type, config_type, layer_type = MEDIA_TYPES[family]
        headers = registry_headers(registry, repository)
        with httpx.Client(base_url=registry.url, headers=headers, timeout=30) as http:
            entries = []
            for arch in ("amd64", "arm64"):
                tar = rootfs_tar(f"{repository}:{tag} multiarch {version} {arch}")
                layer = gzip.compress(tar, mtime=0)
                config = json.dumps({
                    "architecture": arch, "os": "linux",
                    "config": {"Cmd": list(DEFAULT_CMD), "Labels": session_labels()},
                    "rootfs": {"type": "layers", "diff_ids": [_sha256(tar)]},
                    "history": [{"created_by": "dockwarden test services"}],
                }).encode()
                for blob in (layer, config):
                    _upload_blob(http, repository, blob)
                manifest = json.dumps({
                    "schemaVersion": 2, "mediaType": manifest_type,
                    "config": {"mediaType": config_type, "digest": _sha256(config),
                               "size": len(config)},
                    "layers": [{"mediaType": layer_type, "digest": _sha256(layer),
                                "size": len(layer)}],
                }).encode()
                _put_manifest(http, repository, _sha256(manifest), manifest, manifest_type)
                entries.append({"mediaType": manifest_type, "digest": _sha256(manifest),
                                "size": len(manifest),
                                "platform": {"architecture": arch, "os": "linux"}})
            index = json.dumps({"schemaVersion": 2, "mediaType": index_type,
                                "manifests": entries}).encode()
            _put_manifest(http, repository, tag, index, index_type)
            return _sha256(index)


def _upload_blob(http: httpx.Client, repository: str, blob: bytes) -> None:
    digest = _sha256(blob)
    if http.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
        return
    start = http.post(f"/v2/{repository}/blobs/uploads/")
    if start.status_code != 202:
        raise RuntimeError(f"blob upload refused: {start.status_code} {start.text}")
    location = str(httpx.URL(str(http.base_url)).join(start.headers["Location"]))
    # Keep the upload's own query (_state): append the digest rather than replace the query.
    location += ("&" if "?" in location else "?") + f"digest={digest}"
    done = http.put(location, content=blob,
                    headers={"Content-Type": "application/octet-stream"})
    if done.status_code != 201:
        raise RuntimeError(f"blob upload failed: {done.status_code} {done.text}")


def _put_manifest(http: httpx.Client, repository: str, reference: str, body: bytes,
                  media_type: str) -> None:
    r = http.put(f"/v2/{repository}/manifests/{reference}", content=body,
                 headers={"Content-Type": media_type})
    if r.status_code != 201:
        raise RuntimeError(f"manifest put failed: {r.status_code} {r.text}")
    if r.headers.get("Docker-Content-Digest") not in (None, _sha256(body)):
        raise RuntimeError("registry computed another digest for the manifest")
