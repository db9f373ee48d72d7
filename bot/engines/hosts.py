"""The Docker hosts DockWarden watches (DOCKWARDEN_HOSTS) and the connection to each.

Each comma-separated entry is `NAME=URL` (a URL as DOCKER_HOST takes it) or the bare name of a
Docker context, read the way the docker CLI stores contexts under DOCKER_CONFIG:

    contexts/meta/<sha256 of the name>/meta.json          Endpoints.docker.{Host,SkipTLSVerify}
    contexts/tls/<sha256 of the name>/docker/{ca,cert,key}.pem

Unset: one host named `local`, DOCKER_HOST's (or the default socket). Messages name an entry by
its name and its URL without a password, and never quote TLS material (only file names).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.domain.targets import LOCAL_HOST, is_host_name
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.engines.docker import DockerEngine

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
DEFAULT_CONTEXT = "default"
ENTRY_SCHEMES = ("unix", "tcp", "ssh")
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
HIDDEN = "***"  # what stands for a URL's password in a message


@dataclass(frozen=True)
class HostTLS:
    """A context's TLS files (paths, never contents) and whether the engine's cert is verified."""

    ca: Path | None
    cert: Path | None
    key: Path | None
    verify: bool


@dataclass(frozen=True)
class Host:
    """One Docker host: name, engine URL, and the context (with its TLS) it came from, if any."""

    name: str
    url: str
    tls: HostTLS | None = None
    context: str | None = None

    def __repr__(self) -> str:
        # A URL may carry a password (ssh://user:secret@nas): reprs end up in logs.
        via = f", context={self.context!r}" if self.context is not None else ""
        return f"Host(name={self.name!r}, url={shown_url(self.url)!r}{via})"

    @property
    def where(self) -> str:
        """The engine's URL fit for a message (no password)."""
        return shown_url(self.url)


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def shown_url(url: str) -> str:
    """`url` with the password of its user part, if any, replaced by ***."""
    password = _password(url)
    return url.replace(f":{password}@", f":{HIDDEN}@") if password else url


def _hide_password(text: str, url: str) -> str:
    password = _password(url)
    return text.replace(password, HIDDEN) if password else text


def check_engine_url(url: str) -> None:
    """ConfigError unless the Docker SDK can reach an engine at `url` (ssh:// needs paramiko)."""
    from docker.errors import DockerException
    from docker.utils import parse_host

    try:
        parse_host(url)
    except (DockerException, ValueError) as exc:
        why = _hide_password(str(exc), url)
        raise ConfigError(f"not a Docker engine address ({why}); expected e.g. "
                          "unix:///var/run/docker.sock or tcp://host:2375") from None
    if url.startswith("ssh://"):
        from importlib.util import find_spec

        if find_spec("paramiko") is None:
            raise ConfigError("ssh:// engines need the ssh extra: "
                              "pip install 'dockwarden[ssh]' (it brings paramiko)")


def docker_config_dir(docker_config: str | None) -> Path:
    """Where the docker CLI keeps its configuration: DOCKER_CONFIG, else ~/.docker."""
    return Path(docker_config).expanduser() if docker_config else Path.home() / ".docker"


def parse_hosts(
    text: str | None, *, docker_host: str | None = None, docker_config: str | None = None
) -> tuple[Host, ...]:
    """DOCKWARDEN_HOSTS as Hosts (unset: `local` on `docker_host`); ConfigError naming an entry."""
    entries = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not entries:
        return (Host(LOCAL_HOST, docker_host or DEFAULT_SOCKET),)
    config = docker_config_dir(docker_config)
    hosts: dict[str, Host] = {}
    for entry in entries:
        if "=" in entry:
            host = _entry_host(entry)
        elif entry == DEFAULT_CONTEXT:  # the docker CLI's built-in context: DOCKER_HOST's engine
            host = Host(DEFAULT_CONTEXT, docker_host or DEFAULT_SOCKET)
        else:
            host = _context_host(entry, config)
        if host.name in hosts:
            raise ConfigError(f"DOCKWARDEN_HOSTS entry {_shown_entry(entry)!r}: "
                              f"the name {host.name!r} is given twice")
        hosts[host.name] = host
    return tuple(hosts.values())


def _shown_entry(entry: str) -> str:
    name, sep, url = entry.partition("=")
    return f"{name.strip()}={shown_url(url.strip())}" if sep else entry


def _entry_error(entry: str, why: str) -> ConfigError:
    return ConfigError(f"DOCKWARDEN_HOSTS entry {_shown_entry(entry)!r}: {why}")


def _check_name(entry: str, name: str) -> None:
    if not is_host_name(name):
        raise _entry_error(entry, f"{name!r} cannot name a host (a letter or digit first, then "
                                  "letters, digits, '.', '_', '-')")


def _check_url(entry: str, url: str) -> None:
    if not url:
        raise _entry_error(entry, "the engine URL is empty")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in ENTRY_SCHEMES:
        raise _entry_error(entry, f"unknown scheme {scheme or '(none)'!r}; use "
                                  f"{', '.join(s + '://' for s in ENTRY_SCHEMES)}")
    try:
        check_engine_url(url)
    except ConfigError as exc:
        raise _entry_error(entry, str(exc)) from None


def _entry_host(entry: str) -> Host:
    name, _, url = (part.strip() for part in entry.partition("="))
    _check_name(entry, name)
    _check_url(entry, url)
    return Host(name, url)


def _context_host(name: str, config: Path) -> Host:
    _check_name(name, name)
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest / "meta.json"
    if not meta.is_file():
        known = ", ".join(sorted(_context_names(config))) or "none"
        raise _entry_error(name, f"no Docker context of that name in {config / 'contexts'} "
                                 f"(contexts there: {known}); write NAME=URL for an engine URL")
    try:
        endpoint = json.loads(meta.read_text(encoding="utf-8"))["Endpoints"]["docker"]
        url = str(endpoint["Host"] or "").strip()
        skip_verify = bool(endpoint.get("SkipTLSVerify", False))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _entry_error(name, f"cannot read the context's {meta}: "
                                 f"{getattr(exc, 'strerror', None) or type(exc).__name__}") \
            from None
    except (KeyError, TypeError, AttributeError):
        raise _entry_error(name, "the Docker context has no docker endpoint") from None
    _check_url(name, url)
    tls = _context_tls(name, config / "contexts" / "tls" / digest / "docker", skip_verify)
    return Host(name, url, tls, context=name)


def _context_tls(name: str, where: Path, skip_verify: bool) -> HostTLS | None:
    """The context's TLS as the docker CLI uses it (None: no files and no SkipTLSVerify)."""
    present = {file: where / file for file in TLS_FILES if (where / file).is_file()}
    if where.is_dir() and not present:
        raise _entry_error(name, f"TLS files missing: {where} holds none of "
                                 f"{', '.join(TLS_FILES)}")
    if ("cert.pem" in present) != ("key.pem" in present):
        missing = "key.pem" if "cert.pem" in present else "cert.pem"
        raise _entry_error(name, f"TLS files missing: {missing} in {where}")
    if not present and not skip_verify:
        return None
    return HostTLS(ca=present.get("ca.pem"), cert=present.get("cert.pem"),
                   key=present.get("key.pem"), verify=not skip_verify)


def _context_names(config: Path) -> Iterator[str]:
    for meta in (config / "contexts" / "meta").glob("*/meta.json"):
        try:
            name = json.loads(meta.read_text(encoding="utf-8")).get("Name")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(name, str):
            yield name


def connect(host: Host, *, timeout: float = 60.0, lazy: bool = False) -> DockerEngine:
    """A connection to `host`'s engine (EngineUnavailable when none answers there; with `lazy`,
    at its first use instead, and tried again at each use until it does)."""
    from docker.errors import TLSParameterError
    from docker.tls import TLSConfig

    from bot.engines.docker import DockerEngine

    if host.context is None:
        # DOCKER_TLS_VERIFY / DOCKER_CERT_PATH apply, as to `docker -H URL`.
        return DockerEngine(host.url, timeout=timeout, lazy=lazy, advice=_advice(host))
    # A context carries its own TLS (or none), whatever the environment says.
    tls: TLSConfig | bool = False
    if host.tls is not None:
        cert = (str(host.tls.cert), str(host.tls.key)) if host.tls.cert and host.tls.key else None
        try:
            tls = TLSConfig(client_cert=cert, ca_cert=str(host.tls.ca) if host.tls.ca else None,
                            verify=host.tls.verify)
        except TLSParameterError:
            # The files were there at start; the SDK's own words are about its parameters.
            raise ConfigError(f"host {host.name!r}: the TLS files of context {host.context!r} "
                              "are no longer readable") from None
    return DockerEngine(host.url, tls=tls, timeout=timeout, lazy=lazy, advice=_advice(host))


def _advice(host: Host) -> str:
    """What to do about an engine that does not answer, said in the words of its setting."""
    if host.name == LOCAL_HOST and host.context is None:
        return "start Docker or set DOCKER_HOST"
    return f"start Docker there or correct the DOCKWARDEN_HOSTS entry {host.name!r}"
