"""Real `docker-registry` processes behind TLS with their own CA, in a network namespace.

Three registries on the namespace's address (see netns.py): `.private_ca` (HTTPS, a server
certificate from a CA of the session's own), `.mutual` (the same, and it requires a client
certificate issued by that CA) and `.plain` (plain HTTP, for insecure-registry tests). Each
holds one small image, pushed through the registry API. Logs: <root>/<name>/registry.log.
"""

from __future__ import annotations

import atexit
import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import secrets
import shutil
import ssl
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.services.netns import NetNamespace
from tests.services.procs import port_open, spawn, stop, wait_until
from tests.services.registry import says_listening

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPOSITORY = "tls/app"
TAG = "v1"


@dataclass(frozen=True)
class Pem:
    """A certificate and its key, written as PEM files."""

    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path,
           key_path: Path) -> Pem:
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Pem(cert_path, key_path)


def make_ca(directory: Path, common_name: str = "DockWarden test CA") -> Pem:
    """A self-signed CA: `ca.crt` and `ca.key` in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(cert, key, directory / "ca.crt", directory / "ca.key")


def issue(ca: Pem, cert_path: Path, key_path: Path, *, ip: str | None = None,
          client: bool = False) -> Pem:
    """A leaf certificate from `ca`: a server one for `ip`, or a client one."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(ip or "dockwarden-test-client")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return _write(builder.sign(ca_key, hashes.SHA256()), key, cert_path, key_path)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_small_image(base_url: str, repository: str, tag: str, marker: str,
                     context: ssl.SSLContext | None = None) -> str:
    """Upload a one-layer OCI image through the registry API; returns the manifest digest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"{marker}\n".encode()
        info = tarfile.TarInfo("version")
        info.size, info.mtime = len(data), 1_700_000_000
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(buf.getvalue(), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [_sha256(buf.getvalue())]},
                         "config": {}}).encode()
    with httpx.Client(base_url=base_url, verify=context or True, timeout=30) as http:
        for blob in (layer, config):
            start = http.post(f"/v2/{repository}/blobs/uploads/")
            start.raise_for_status()
            location = str(httpx.URL(base_url).join(start.headers["Location"]))
            location += ("&" if "?" in location else "?") + f"digest={_sha256(blob)}"
            http.put(location, content=blob,
                     headers={"Content-Type": "application/octet-stream"}).raise_for_status()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": _sha256(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": _sha256(layer), "size": len(layer)}],
        }).encode()
        http.put(f"/v2/{repository}/manifests/{tag}", content=manifest,
                 headers={"Content-Type": OCI_MANIFEST}).raise_for_status()
    return _sha256(manifest)


@dataclass(frozen=True)
class TlsRegistry:
    """One of the namespace's registries: where it is and what it holds."""

    name: str
    host: str  # address:port
    scheme: str
    digest: str  # of REPOSITORY:TAG

    @property
    def url(self) -> str:
        """Base URL."""
        return f"{self.scheme}://{self.host}"


class TlsRegistries:
    """The namespace, the CA, client certificate and the three registries of a session."""

    private_ca: TlsRegistry
    mutual: TlsRegistry
    plain: TlsRegistry

    def __init__(self, root: Path) -> None:
        self.root = root
        self.netns = NetNamespace()
        self._procs: list[subprocess.Popen[bytes]] = []
        self.ca: Pem
        self.client: Pem

    def start(self) -> TlsRegistries:
        """Create everything; undo what was made if a step fails."""
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.netns.create()
        self.ca = make_ca(self.root / "pki")
        address = self.netns.address
        server = issue(self.ca, self.root / "pki" / "server.crt", self.root / "pki" / "server.key",
                       ip=address)
        self.client = issue(self.ca, self.root / "pki" / "client.cert",
                            self.root / "pki" / "client.key", client=True)
        trusting = ssl.create_default_context(cafile=str(self.ca.cert))
        with_client = ssl.create_default_context(cafile=str(self.ca.cert))
        with_client.load_cert_chain(str(self.client.cert), str(self.client.key))
        specs: list[tuple[str, int, dict[str, Any] | None, ssl.SSLContext | None]] = [
            ("private_ca", 5000, {"certificate": str(server.cert), "key": str(server.key)},
             trusting),
            ("mutual", 5001, {"certificate": str(server.cert), "key": str(server.key),
                              "clientcas": [str(self.ca.cert)]}, with_client),
            ("plain", 5002, None, None),
        ]
        for name, port, tls, context in specs:
            host = f"{address}:{port}"
            self._serve(name, host, tls)
            scheme = "https" if tls else "http"
            digest = push_small_image(f"{scheme}://{host}", REPOSITORY, TAG, name, context)
            setattr(self, name, TlsRegistry(name, host, scheme, digest))

    def _serve(self, name: str, host: str, tls: dict[str, Any] | None) -> None:
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed: "
                               "run `python -m tests.services prepare` as root")
        root = self.root / name
        (root / "storage").mkdir(parents=True, exist_ok=True)
        http: dict[str, Any] = {"addr": host, "secret": secrets.token_hex(16)}
        if tls is not None:
            http["tls"] = tls
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(root / "storage")}},
            "http": http,
            "health": {"storagedriver": {"enabled": False}},
        }
        (root / "config.yml").write_text(json.dumps(config, indent=2))
        logfile = root / "registry.log"
        proc = spawn(self.netns.exec_argv([binary, "serve", str(root / "config.yml")]), logfile)
        self._procs.append(proc)
        address, _, port = host.rpartition(":")
        wait_until(lambda: says_listening(logfile, host) and port_open(address, int(port)),
                   30, f"registry {name}", proc, logfile)

    def stop(self) -> None:
        """Stop the registries and remove the namespace; idempotent."""
        while self._procs:
            stop(self._procs.pop())
        self.netns.remove()
