"""Real `docker-registry` (distribution 2.8) processes: anonymous, htpasswd Basic, token auth."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.services.procs import free_port, spawn, stop, wait_until
from tests.services.token_server import TokenRequest, TokenServer

log = logging.getLogger(__name__)

TEST_USER = "dwuser"


@dataclass(frozen=True)
class RegistryService:
    """One registry as tests see it: where it is and how to log in."""

    name: str
    host: str
    username: str | None = None
    password: str | None = None
    realm: str | None = None
    service: str | None = None
    identity_token: str | None = None
    token_server: TokenServer | None = field(default=None, repr=False)
    storage: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The registry's base URL (plain HTTP on loopback)."""
        return f"http://{self.host}"

    @property
    def token_requests(self) -> list[TokenRequest]:
        """What the token server was asked, oldest first (empty for non-token registries)."""
        return self.token_server.requests if self.token_server is not None else []

    @property
    def auth_config(self) -> dict[str, str] | None:
        """The docker SDK auth_config for this registry's user (None when anonymous)."""
        if self.username is None or self.password is None:
            return None
        return {"username": self.username, "password": self.password}


class DeadRegistry(str):
    """"127.0.0.1:PORT" where nothing listens; also has `.host` and `.url` like a registry."""

    @property
    def host(self) -> str:
        """The host:port itself."""
        return str(self)

    @property
    def url(self) -> str:
        """Base URL nobody answers on."""
        return f"http://{self}"


class RegistryProcess:
    """A docker-registry serving one config on a free loopback port."""

    def __init__(self, name: str, root: Path, auth: dict[str, Any] | None = None) -> None:
        self.name = name
        self.root = root / name
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.auth = auth
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start on a free port; another port if a concurrent session took this one meanwhile."""
        for attempt in range(3):
            try:
                self._start_once()
                return
            except RuntimeError:
                if self.proc is None or self.proc.poll() is None or attempt == 2:
                    raise
                self.port = free_port()
                self.host = f"127.0.0.1:{self.port}"

    def _start_once(self) -> None:
        """Write the config, start the registry and wait until /v2/ answers."""
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed: "
                               "run `python -m tests.services prepare` as root")
        storage = self.root / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(storage)},
                        "delete": {"enabled": True}, "cache": {"blobdescriptor": "inmemory"}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.auth:
            config["auth"] = self.auth
        cfg = self.root / "config.yml"
        # YAML is a superset of JSON: no YAML library needed.
        cfg.write_text(json.dumps(config, indent=2))
        logfile = self.root / "registry.log"
        self.proc = spawn([binary, "serve", str(cfg)], logfile)
        # Our own "listening" line first: a concurrent session may own this port and answer.
        wait_until(lambda: says_listening(logfile, self.host) and self._answers(), 30,
                   f"registry {self.name}", self.proc, logfile)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1):
                return True
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the process; idempotent."""
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def says_listening(logfile: Path, host: str) -> bool:
    try:
        return f"listening on {host}" in logfile.read_text(errors="replace")
    except OSError:
        return False


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry, as distribution's htpasswd auth requires."""
    exe = shutil.which("htpasswd")
    if exe is not None:
        out = subprocess.run([exe, "-Bbn", user, password], check=True, capture_output=True,
                             stdin=subprocess.DEVNULL, text=True)
        return out.stdout.strip()
    try:
        import bcrypt  # type: ignore[import-not-found]
    except ImportError as exc:
        raise RuntimeError("htpasswd (apache2-utils) is not installed: "
                           "run `python -m tests.services prepare` as root") from exc
    hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
    return f"{user}:{hashed.decode()}"


class Registries:
    """The three registries of a session: `.anonymous`, `.basic`, `.token`."""

    anonymous: RegistryService
    basic: RegistryService
    token: RegistryService

    def __init__(self, root: Path) -> None:
        self.root = root
        self._procs: list[RegistryProcess] = []
        self._token_server: TokenServer | None = None

    def start(self) -> Registries:
        """Start all three (and the token server); stops what started if one fails."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        anon = RegistryProcess("anonymous", self.root)
        anon.start()
        self._procs.append(anon)
        self.anonymous = RegistryService("anonymous", anon.host, storage=anon.root / "storage")

        password = secrets.token_urlsafe(12)
        htpasswd = self.root / "basic" / "htpasswd"
        htpasswd.parent.mkdir(parents=True, exist_ok=True)
        htpasswd.write_text(htpasswd_line(TEST_USER, password) + "\n")
        basic = RegistryProcess("basic", self.root, {
            "htpasswd": {"realm": "dockwarden-test-basic", "path": str(htpasswd)}})
        basic.start()
        self._procs.append(basic)
        self.basic = RegistryService("basic", basic.host, TEST_USER, password,
                                     storage=basic.root / "storage")

        token_password = secrets.token_urlsafe(12)
        service = "dockwarden-test-registry"
        ts = TokenServer(service=service, issuer="dockwarden-test-issuer",
                         users={TEST_USER: token_password},
                         cert_path=self.root / "token" / "token-signer.crt")
        ts.start()
        self._token_server = ts
        tok = RegistryProcess("token", self.root, {"token": {
            "realm": ts.realm, "service": service, "issuer": ts.issuer,
            "rootcertbundle": str(ts.cert_path)}})
        tok.start()
        self._procs.append(tok)
        self.token = RegistryService(
            "token", tok.host, TEST_USER, token_password, realm=ts.realm, service=service,
            identity_token=ts.identity_token(TEST_USER), token_server=ts,
            storage=tok.root / "storage")

    def __iter__(self) -> Any:
        return iter((self.anonymous, self.basic, self.token))

    def stop(self) -> None:
        """Stop every registry and the token server; idempotent."""
        for proc in reversed(self._procs):
            proc.stop()
        self._procs.clear()
        if self._token_server is not None:
            self._token_server.stop()
            self._token_server = None
