"""Who is this process: the container it runs in (if any), and whether a recorded owner lives.

The updater refuses to recreate the container it runs in (it would stop itself half-way), and
leaves alone the journal of an update that a live process is still carrying out.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_CONTAINER_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")


def container_ids_in(text: str) -> set[str]:
    """Every 64-hex container id mentioned in /proc/self/cgroup or /proc/self/mountinfo text."""
    return set(_CONTAINER_ID.findall(text))


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def runs_inside(container_id: str, *, proc: str = "/proc/self") -> bool:
    """Whether this process runs inside the container with that id."""
    if not container_id:
        return False
    # cgroup v1 names the container in /proc/self/cgroup; with cgroup v2 namespaces, the
    # bind mounts of /etc/hostname and friends still name it in mountinfo.
    mentioned = container_ids_in(_read(f"{proc}/cgroup")) | container_ids_in(
        _read(f"{proc}/mountinfo")
    )
    if container_id in mentioned:
        return True
    # Docker's default hostname is the short id; a lone process-wide fallback.
    return socket.gethostname() == container_id[:12]


def _start_time(pid: int) -> str | None:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # Field 22 (starttime) after the parenthesised command name, which may hold spaces.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def process_identity() -> dict[str, Any]:
    """What identifies this process across a restart of it: host, pid and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": _start_time(pid)}


def is_alive(identity: Mapping[str, Any]) -> bool:
    """Whether the process that wrote `identity` still runs (only knowable on the same host)."""
    if identity.get("host") != socket.gethostname() or not identity.get("pid"):
        return False
    pid = int(identity["pid"])
    if pid == os.getpid():
        return True
    start = _start_time(pid)
    return start is not None and start == identity.get("pid_start")
