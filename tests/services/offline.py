"""Keep a Python process on this machine: host names other than loopback do not resolve.

For tests whose code under test would otherwise reach a public registry (Docker Hub) should it
go wrong: `guard()` replaces socket.getaddrinfo (use it with monkeypatch), and
`python -m tests.services.offline MODULE ARGS...` runs `python -m MODULE ARGS...` guarded.
"""

from __future__ import annotations

import ipaddress
import runpy
import socket
import sys
from typing import Any

_getaddrinfo = socket.getaddrinfo


def is_local(host: object) -> bool:
    """Whether `host` (a name or an address) can only mean this machine."""
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    text = text.strip("[]").lower()
    if text == "localhost" or text.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """socket.getaddrinfo for local hosts; a resolution failure for every other."""
    if not is_local(host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests stay on this machine, not {host}")
    return _getaddrinfo(host, *args, **kwargs)


def main(argv: list[str]) -> None:
    """Run `python -m argv[1] argv[2:]` with name resolution kept to loopback."""
    socket.getaddrinfo = guarded_getaddrinfo
    sys.argv = argv[1:]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)
