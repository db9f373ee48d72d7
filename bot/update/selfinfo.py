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
_HEX_ID = re.compile(r"[0-9a-f]{64}")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")

# The engine bind-mounts these three files from the container's own directory
# (<data-root>/containers/<id>/ on Docker, .../overlay-containers/<id>/userdata/ on Podman).
_ENGINE_FILES = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"})


def ids_from_cgroup(text: str) -> frozenset[str]:
    """Container ids naming the cgroups this process is in (/proc/self/cgroup text)."""
    found: set[str] = set()
    for line in text.split("\n"):  # not splitlines: a path may hold a carriage return
        path = line.split(":", 2)[-1]
        for part in path.split("/"):
            # Podman's conmon sits in libpod-conmon-<id>: beside the container, not in it.
            if "conmon" not in part:
                found.update(_CONTAINER_ID.findall(part))
    return frozenset(found)


def ids_from_mountinfo(text: str) -> frozenset[str]:
    """Container ids in the sources of this process's /etc/hostname, hosts and resolv.conf.

    Only these mounts count: on the containerd image store the host's own mountinfo lists every
    running container's root filesystem, so an id elsewhere in it proves nothing.
    """
    found: set[str] = set()
    for line in text.split("\n"):  # not splitlines: a path may hold a carriage return
        fields = line.split(" ", 5)
        if len(fields) < 5 or _unescape(fields[4]) not in _ENGINE_FILES:
            continue
        found.update(p for p in _unescape(fields[3]).split("/") if _HEX_ID.fullmatch(p))
    return frozenset(found)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def own_container_ids(*, proc: str = "/proc/self") -> frozenset[str]:
    """The ids of the containers this process runs in (empty on the host)."""
    # The cgroup, when it names containers, decides: a container sharing another's network
    # (--network container:X) is given X's hostname and hosts files, yet does not run in X.
    # With a private cgroup namespace (cgroup v2's default) it reads "0::/" and names nothing.
    by_cgroup = ids_from_cgroup(_read(f"{proc}/cgroup"))
    if by_cgroup:
        return by_cgroup
    return ids_from_mountinfo(_read(f"{proc}/mountinfo"))


def runs_inside(container_id: str, *, proc: str = "/proc/self") -> bool:
    """Whether this process runs inside the container with that id."""
    return bool(container_id) and container_id in own_container_ids(proc=proc)


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
    start = _start_time(pid)
    if pid == os.getpid() and start is None:
        return True  # no /proc to tell by: this process is the one that asks
    # The same pid is not the same process: in a restarted container DockWarden is pid 1 again,
    # and the journal its previous life left must not look like its own.
    return start is not None and start == identity.get("pid_start")
