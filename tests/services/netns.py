"""A network namespace joined to the host by a veth pair, for services off loopback.

Loopback registries are insecure by Docker's rule, so TLS registries are served on the
namespace's address instead: the host side of the pair is .1, the namespace side .2, in a /24
of 198.19.0.0/16 (benchmarking range, outside Docker's address pools) that no interface holds.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence

from tests.services.procs import pid_alive

_PREFIX = "dwns"
_suffix = iter("abcdefghijklmnopqrstuvwxyz")


def _ip(*argv: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *argv], check=check, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    return done.stdout


def remove_stale_namespaces() -> None:
    """Delete namespaces (and with them their veth pairs) of sessions that died."""
    for match in re.finditer(rf"^({_PREFIX}(\d+)[a-z])\b", _ip("netns", "list", check=False),
                             re.MULTILINE):
        if not pid_alive(int(match.group(2))):
            _ip("netns", "del", match.group(1), check=False)


def _free_subnet() -> str:
    """A 198.19.N /24 no interface on the host has an address in."""
    used = _ip("-o", "-4", "addr", "show", check=False) + _ip("-4", "route", check=False)
    start = os.getpid() % 150
    for step in range(150):
        prefix = f"198.19.{100 + (start + step) % 150}"
        if f"{prefix}." not in used:
            return prefix
    raise RuntimeError("no free 198.19.x.0/24 for a test network namespace")


class NetNamespace:
    """`ip netns` namespace with a veth pair; `.address` is the namespace side."""

    def __init__(self) -> None:
        letter = next(_suffix)
        self.name = f"{_PREFIX}{os.getpid()}{letter}"
        self._host_if = f"dwvh{os.getpid()}{letter}"
        self._peer_if = f"dwvp{os.getpid()}{letter}"
        self.prefix = ""
        self.created = False

    @property
    def address(self) -> str:
        """The namespace's address (reachable from the host)."""
        return f"{self.prefix}.2"

    @property
    def cidr(self) -> str:
        """The /24 the pair is in."""
        return f"{self.prefix}.0/24"

    def create(self) -> NetNamespace:
        """Make the namespace and the pair, address both ends and bring them up."""
        remove_stale_namespaces()
        self.prefix = _free_subnet()
        try:
            _ip("netns", "add", self.name)
            self.created = True
            _ip("link", "add", self._host_if, "type", "veth", "peer", "name", self._peer_if)
            _ip("link", "set", self._peer_if, "netns", self.name)
            _ip("addr", "add", f"{self.prefix}.1/24", "dev", self._host_if)
            _ip("link", "set", self._host_if, "up")
            inside = ("netns", "exec", self.name, "ip")
            _ip(*inside, "addr", "add", f"{self.address}/24", "dev", self._peer_if)
            _ip(*inside, "link", "set", self._peer_if, "up")
            _ip(*inside, "link", "set", "lo", "up")
        except (subprocess.CalledProcessError, OSError) as exc:
            self.remove()
            detail = getattr(exc, "stderr", "") or exc
            raise RuntimeError(f"cannot create network namespace {self.name}: {detail}") from None
        return self

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace (`ip netns exec` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def remove(self) -> None:
        """Delete the pair and the namespace; idempotent."""
        _ip("link", "del", self._host_if, check=False)
        if self.created:
            _ip("netns", "del", self.name, check=False)
            self.created = False
