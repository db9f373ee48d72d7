"""How each registry is spoken to over TLS, taken from where the Docker engine keeps it.

The engine decides per registry (and DockWarden follows it, so that what the engine can pull
DockWarden can check):

- Insecure: named by `--insecure-registry` (`docker info` → RegistryConfig: IndexConfigs with
  `Secure: false`, or an address in InsecureRegistryCIDRs, which always holds loopback). Such a
  registry is spoken to without certificate checks or over plain HTTP; certs.d is not read.
  `DOCKWARDEN_INSECURE_REGISTRIES` adds to the engine's list.
- Otherwise HTTPS, trusting the system store plus every `*.crt` in
  `/etc/docker/certs.d/<host[:port]>/`, and presenting `<name>.cert` with `<name>.key` as the
  client certificate when the registry asks for one. A `.key` without its `.cert` (or the other
  way round) is an error, as it is for the engine. Docker Hub uses the system store alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain.reference import DOCKER_HUB
from bot.errors import RegistryUnreachable
from bot.registry.wire import is_insecure, is_loopback, split_host

log = logging.getLogger(__name__)

DEFAULT_CERTS_DIR = "/etc/docker/certs.d"
SYSTEM_STORE = "the system store"
# How often a registry's certs.d directory is looked at again for added or changed files.
_RECHECK_SECONDS = 30.0


def engine_insecure_registries(info: Mapping[str, Any]) -> tuple[str, ...]:
    """The registries and CIDRs the engine treats as insecure, from its `/info` document."""
    config = info.get("RegistryConfig")
    if not isinstance(config, Mapping):
        return ()
    found: list[str] = []
    indexes = config.get("IndexConfigs")
    if isinstance(indexes, Mapping):
        for name, index in indexes.items():
            if isinstance(index, Mapping) and index.get("Secure") is False:
                found.append(str(index.get("Name") or name))
    cidrs = config.get("InsecureRegistryCIDRs")
    if isinstance(cidrs, list):
        found.extend(str(cidr) for cidr in cidrs if isinstance(cidr, str) and "/" in cidr)
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class TlsSetup:
    """What verifies one registry's certificate, and the client certificate it is shown."""

    registry: str
    directory: Path | None  # the certs.d directory read; None for Docker Hub
    cas: tuple[Path, ...] = ()
    client_cert: tuple[Path, Path] | None = None
    # None: the system store as it is (the transport's default context).
    context: ssl.SSLContext | None = field(default=None, compare=False)

    def describe(self) -> str:
        """`the system store`, or the certs.d files in use (for logs and `doctor`)."""
        parts = [SYSTEM_STORE, *(str(ca) for ca in self.cas)]
        text = " + ".join(parts)
        if self.client_cert is not None:
            text += f"; client certificate {self.client_cert[0]}"
        return text


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a file in the directory is added, removed or rewritten."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return ()
    except OSError as exc:
        return (("?", exc.errno or 0, 0),)
    out = []
    for entry in entries:
        with contextlib.suppress(OSError):
            st = entry.stat()
            out.append((entry.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _fail(registry: str, directory: Path, why: str) -> RegistryUnreachable:
    return RegistryUnreachable(
        f"cannot use the TLS files for {registry} in {directory}: {why}", registry=registry
    )


def load_setup(registry: str, directory: Path) -> TlsSetup:
    """Read a registry's certs.d directory as the engine does (raises RegistryUnreachable)."""
    try:
        names = sorted(p.name for p in directory.iterdir() if p.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return TlsSetup(registry, directory)
    except OSError as exc:
        raise _fail(registry, directory, exc.strerror or str(exc)) from None
    cas = tuple(directory / n for n in names if n.endswith(".crt"))
    pairs: list[tuple[Path, Path]] = []
    for name in names:
        if name.endswith(".cert"):
            key = name[: -len(".cert")] + ".key"
            if key not in names:
                raise _fail(registry, directory, f"client certificate {name} has no {key} "
                            "(CA certificates must end in .crt)")
            pairs.append((directory / name, directory / key))
        elif name.endswith(".key") and name[: -len(".key")] + ".cert" not in names:
            raise _fail(registry, directory,
                        f"key {name} has no client certificate {name[:-4]}.cert")
    if not cas and not pairs:
        return TlsSetup(registry, directory)
    # The system store stays trusted beside the registry's own CAs, as for the engine.
    context = ssl.create_default_context()
    for ca in cas:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError, ValueError) as exc:
            why = f"{ca.name} is no usable CA certificate ({exc})"
            raise _fail(registry, directory, why) from None
    if len(pairs) > 1:
        log.warning("%s: several client certificates in %s; presenting %s",
                    registry, directory, pairs[0][0].name)
    client = pairs[0] if pairs else None
    if client is not None:
        try:
            context.load_cert_chain(str(client[0]), str(client[1]))
        except (ssl.SSLError, OSError, ValueError) as exc:
            why = f"{client[0].name} with {client[1].name} is no usable pair ({exc})"
            raise _fail(registry, directory, why) from None
    return TlsSetup(registry, directory, cas, client, context)


class RegistryTls:
    """Per registry: insecure or not, and the TLS context its certificate is checked with."""

    def __init__(
        self,
        certs_dir: str | Path = DEFAULT_CERTS_DIR,
        *,
        insecure: Sequence[str] = (),
        engine_insecure: Sequence[str] = (),
    ) -> None:
        self.certs_dir = Path(certs_dir)
        self.setting_insecure = tuple(insecure)
        self.engine_insecure = tuple(engine_insecure)
        self.insecure = tuple(dict.fromkeys((*self.setting_insecure, *self.engine_insecure)))
        self._setups: dict[str, tuple[float, tuple[tuple[str, int, int], ...], TlsSetup]] = {}

    def insecure_reason(self, registry: str) -> str | None:
        """Why the registry is insecure (loopback, the engine, the setting), or None."""
        if is_loopback(registry):
            return "loopback"
        if is_insecure(registry, self.engine_insecure):
            return "insecure for the Docker engine"
        if is_insecure(registry, self.setting_insecure):
            return "in DOCKWARDEN_INSECURE_REGISTRIES"
        return None

    def setup(self, registry: str) -> TlsSetup:
        """The registry's TLS setup, re-read when its certs.d files change (raises
        RegistryUnreachable when they cannot be used)."""
        if registry == DOCKER_HUB:
            return TlsSetup(registry, None)
        now = time.monotonic()
        cached = self._setups.get(registry)
        if cached is not None and now - cached[0] < _RECHECK_SECONDS:
            return cached[2]
        # certs.d names a directory by host[:port]; an IPv6 host keeps its brackets.
        directory = self.certs_dir / registry
        signature = _signature(directory)
        if cached is not None and cached[1] == signature:
            self._setups[registry] = (now, signature, cached[2])
            return cached[2]
        setup = load_setup(registry, directory)
        if setup.context is not None:
            log.info("%s: TLS with %s", registry, setup.describe())
        self._setups[registry] = (now, signature, setup)
        return setup

    def context(self, registry: str) -> ssl.SSLContext | None:
        """The SSL context for the registry's HTTPS requests; None for the system default."""
        return self.setup(registry).context

    def untrusted_hint(self, registry: str, error: str) -> str:
        """What to do about a TLS refusal either way ("" for other errors)."""
        if registry == DOCKER_HUB:
            return ""
        directory = self.certs_dir / registry
        if "CERTIFICATE_VERIFY_FAILED" in error:
            return (f"; the registry's TLS certificate is not trusted: put its CA in "
                    f"{directory}/ca.crt, as for the Docker engine")
        if "BAD_CERTIFICATE" in error or "CERTIFICATE_REQUIRED" in error:
            return (f"; the registry refused DockWarden's client certificate (or the lack of "
                    f"one): put client.cert and client.key in {directory}/")
        return ""


async def verified_by(setup: TlsSetup, api_host: str, *, timeout: float = 10.0) -> str:
    """Which trust anchor verifies the registry's certificate: the system store or a certs.d
    file (one TLS handshake per candidate, until one verifies)."""
    host, port = split_host(api_host)
    candidates: list[tuple[str, ssl.SSLContext]] = [(SYSTEM_STORE, ssl.create_default_context())]
    for ca in setup.cas:
        only = ssl.create_default_context(cafile=str(ca))
        if setup.client_cert is not None:
            only.load_cert_chain(str(setup.client_cert[0]), str(setup.client_cert[1]))
        candidates.append((str(ca), only))
    refusals: list[str] = []
    for name, context in candidates:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port or 443), ssl=context), timeout
            )
        except ssl.SSLCertVerificationError as exc:
            refusals.append(f"{name}: {exc.verify_message}")
            continue
        except (OSError, TimeoutError) as exc:
            return f"not checked ({type(exc).__name__}: {exc})"
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout)
        return f"certificate verified with {name}"
    return "certificate not verified (" + "; ".join(refusals) + ")"
