"""Small pure rules of the registry wire protocol: schemes, Retry-After, Link pagination."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from email.utils import parsedate_to_datetime

_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*?\brel\s*=\s*"?next"?', re.IGNORECASE)
# The longest wait a Retry-After can impose: a registry asking for days (or for a date years
# ahead) would otherwise be silenced until DockWarden restarts. After this it is asked again.
MAX_RETRY_AFTER = 3600.0


def split_host(registry: str) -> tuple[str, str | None]:
    """Host and port of "host[:port]" (IPv6 in brackets); the host without brackets."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    host, sep, port = registry.rpartition(":")
    if not sep or not port.isdigit() or ":" in host:
        return registry, None
    return host, port


def is_loopback(registry: str) -> bool:
    """Whether the registry lives on this machine's loopback (Docker allows HTTP there)."""
    host, _ = split_host(registry)
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_insecure(registry: str, insecure: Iterable[str]) -> bool:
    """Whether the registry is listed as insecure, by host[:port] or by CIDR (as Docker does)."""
    host, _ = split_host(registry)
    for entry in insecure:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry in (registry.lower(), host.lower()):
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def scheme_for(registry: str, insecure: Iterable[str] = ()) -> str:
    """`http` for loopback and configured insecure registries, `https` otherwise."""
    return "http" if is_loopback(registry) or is_insecure(registry, insecure) else "https"


def api_scheme(registry: str, api_host: str, insecure: Iterable[str] = ()) -> str:
    """The scheme of a registry's API: plain HTTP when its API host or its name may use it
    (Docker Hub's API host is not its name)."""
    scheme = scheme_for(api_host, insecure)
    if scheme == "https" and api_host != registry:
        scheme = scheme_for(registry, insecure)
    return scheme


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (either form, at most an hour); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        # Thousands of digits are not turned into an int: past five they can only mean "clamp".
        digits = value.lstrip("0") or "0"
        return MAX_RETRY_AFTER if len(digits) > 5 else min(float(digits), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        return None
    try:
        wait = moment.timestamp() - now
    except (OverflowError, ValueError):
        return MAX_RETRY_AFTER
    return min(max(0.0, wait), MAX_RETRY_AFTER)


def next_link(value: str | None) -> str | None:
    """The target of a Link header's rel="next", or None."""
    if not value:
        return None
    match = _LINK_NEXT.search(value)
    return match.group(1) if match else None
