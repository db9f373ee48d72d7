"""Registry credentials from where Docker keeps them: config.json and credential helpers.

Lookup order for a registry, as the docker CLI does it: a `credHelpers` entry for that registry,
else the default `credsStore`, else the inline `auths` entry. When a helper has nothing for the
registry, an inline `auths` entry still counts. Docker Hub is filed under several keys
(`https://index.docker.io/v1/`, `index.docker.io`, `docker.io`, `registry-1.docker.io`); they
all mean the same registry here.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain.reference import DOCKER_HUB, DOCKER_HUB_CREDENTIALS_KEY, is_docker_hub
from bot.errors import AuthFailed, ConfigError

log = logging.getLogger(__name__)

_TOKEN_USERNAME = "<token>"
_HELPER_TIMEOUT = 30.0
_HELPER_NAME = re.compile(r"[A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Credentials:
    """What to log in with: a username and password, or an identity (refresh) token."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identitytoken: str | None = field(default=None, repr=False)

    @property
    def basic(self) -> tuple[str, str] | None:
        """(username, password) when both are there, for Basic auth and token requests."""
        if self.username and self.password is not None:
            return self.username, self.password
        return None

    def __repr__(self) -> str:
        hidden = [name for name in ("password", "identitytoken") if getattr(self, name)]
        shown = ", ".join(f"{name}=<hidden>" for name in hidden)
        return f"Credentials(username={self.username!r}{', ' if shown else ''}{shown})"

    __str__ = __repr__


def registry_key(server: str) -> str:
    """The registry a config.json key or host names: scheme, path, case dropped; Hub unified."""
    host = server.strip()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB if is_docker_hub(host) else host


def helper_server_url(registry: str) -> str:
    """What a credential helper is asked for: Docker Hub's v1 URL, else the host."""
    key = registry_key(registry)
    return DOCKER_HUB_CREDENTIALS_KEY if key == DOCKER_HUB else key


@dataclass(frozen=True)
class _Config:
    """What config.json says, keyed by normalised registry."""

    auths: dict[str, Credentials | None] = field(default_factory=dict)
    helpers: dict[str, str] = field(default_factory=dict)
    store: str | None = None


class DockerCredentials:
    """Credentials read from a Docker config directory, looked up once per registry.

    The file is read at construction (a malformed one raises ConfigError) and again whenever it
    changes, so a `docker login` after start is seen. A credential helper's answer is kept for
    `helper_ttl` seconds: helpers such as ECR's hand out tokens that expire.
    """

    def __init__(self, config_dir: str | None = None, *, helper_ttl: float = 900.0) -> None:
        directory = Path(config_dir) if config_dir else Path.home() / ".docker"
        self.path = directory / "config.json"
        self.helper_ttl = helper_ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[Credentials | None, float]] = {}
        self._stamp = self._file_stamp()
        self._config = _read_config(self.path)
        self._reload_error: ConfigError | None = None

    def lookup(self, registry_host: str) -> Credentials | None:
        """Credentials for a registry, or None for anonymous access.

        Raises AuthFailed when a credential helper fails or config.json became malformed."""
        key = registry_key(registry_host)
        with self._lock:
            config = self._current_config(key)
            cached = self._cache.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
        found, from_helper = self._find(config, key)
        expires = time.monotonic() + self.helper_ttl if from_helper else math.inf
        with self._lock:
            self._cache[key] = (found, expires)
        return found

    def _current_config(self, key: str) -> _Config:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            self._cache.clear()
            try:
                self._config = _read_config(self.path)
                self._reload_error = None
                log.info("Docker config %s changed; credentials reloaded", self.path)
            except ConfigError as exc:
                self._reload_error = exc
        if self._reload_error is not None:
            raise AuthFailed(str(self._reload_error), registry=key)
        return self._config

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _find(self, config: _Config, key: str) -> tuple[Credentials | None, bool]:
        helper = config.helpers.get(key, config.store)
        used_helper = False
        if helper:
            found = run_helper(helper, helper_server_url(key), registry=key)
            used_helper = True
            if found is not None:
                log.debug("credentials for %s from docker-credential-%s", key, helper)
                return found, True
        inline = config.auths.get(key)
        if inline is not None:
            log.debug("credentials for %s from %s", key, self.path)
        return inline, used_helper


def _read_config(path: Path) -> _Config:
    """Read and check a Docker config.json; a missing or empty file is an empty config."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        log.debug("no Docker config at %s; registries will be accessed anonymously", path)
        return _Config()
    except OSError as exc:
        raise ConfigError(f"cannot read Docker config {path}: {exc.strerror}") from exc
    where = f"Docker config {path}"
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a JSON object")
    helpers = data.get("credHelpers") or {}
    if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
        raise ConfigError(f"{where}: 'credHelpers' must map registries to helper names")
    store = data.get("credsStore")
    if store is not None and not isinstance(store, str):
        raise ConfigError(f"{where}: 'credsStore' must be a string")
    for name in [store or "", *helpers.values()]:
        # The name becomes part of a program name looked up on PATH, never a path.
        if not _HELPER_NAME.fullmatch(name):
            raise ConfigError(f"{where}: {name!r} is not a credential helper name")
    return _Config(
        auths=_read_auths(data.get("auths"), where),
        helpers={registry_key(k): v for k, v in helpers.items() if v},
        store=store or None,
    )


def _read_auths(auths: Any, where: str) -> dict[str, Credentials | None]:
    if auths is None:
        return {}
    if not isinstance(auths, dict):
        raise ConfigError(f"{where}: 'auths' must be a JSON object")
    found: dict[str, Credentials | None] = {}
    # The canonical Hub key wins over its aliases; otherwise the first entry does.
    for server in sorted(auths, key=lambda s: s != DOCKER_HUB_CREDENTIALS_KEY):
        entry = auths[server]
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: auths[{server!r}] must be an object")
        creds = _read_entry(entry, f"{where}: auths[{server!r}]")
        key = registry_key(server)
        if found.get(key) is None:
            found[key] = creds
    return found


def _read_entry(entry: dict[str, Any], where: str) -> Credentials | None:
    for name in ("auth", "username", "password", "identitytoken"):
        if entry.get(name) is not None and not isinstance(entry[name], str):
            raise ConfigError(f"{where}: {name!r} must be a string")
    username: str | None = entry.get("username") or None
    password: str | None = entry.get("password") or None
    if entry.get("auth"):
        username, password = _decode_auth(entry["auth"], where)
    token: str | None = entry.get("identitytoken") or None
    if not (username or password or token):
        return None
    return Credentials(username or None, password or None, token)


def _decode_auth(value: str, where: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ConfigError(f"{where}: 'auth' is not base64 of user:password") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise ConfigError(f"{where}: 'auth' does not decode to user:password")
    return username, password


def run_helper(helper: str, server_url: str, *, registry: str) -> Credentials | None:
    """Ask `docker-credential-<helper> get` for a server's credentials; None when it has none."""
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run(
            [program, "get"],
            input=server_url.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise AuthFailed(
            f"credential helper {program} is configured for {registry} but is not on PATH",
            registry=registry,
        ) from None
    except subprocess.TimeoutExpired:
        raise AuthFailed(
            f"credential helper {program} did not answer within {_HELPER_TIMEOUT:.0f}s",
            registry=registry,
        ) from None
    except OSError as exc:
        raise AuthFailed(
            f"credential helper {program} could not be run: {exc.strerror or exc}",
            registry=registry,
        ) from None
    out = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        if "credentials not found" in f"{out}\n{err}".lower():
            return None
        # The protocol puts the error message on stdout; stderr is for diagnostics.
        said = (out or err).splitlines()[0][:200] if (out or err) else ""
        raise AuthFailed(
            f"credential helper {program} failed for {registry} (exit {done.returncode})"
            + (f": {said}" if said else ""),
            registry=registry,
        )
    return _helper_answer(program, out, registry)


def _helper_answer(program: str, out: str, registry: str) -> Credentials | None:
    try:
        answer = json.loads(out)
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        # Never echo the output: it may hold the secret.
        raise AuthFailed(
            f"credential helper {program} answered something that is not JSON", registry=registry
        )
    username = answer.get("Username")
    secret = answer.get("Secret")
    if not isinstance(username, str) or not isinstance(secret, str):
        raise AuthFailed(
            f"credential helper {program} answered without Username and Secret strings",
            registry=registry,
        )
    if not secret:
        return None
    if username == _TOKEN_USERNAME:
        return Credentials(identitytoken=secret)
    return Credentials(username or None, secret)
