"""Recognising the container this process runs in, and whether a journal's owner lives."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.selfinfo import (
    ids_from_cgroup,
    ids_from_mountinfo,
    is_alive,
    own_container_ids,
    process_identity,
    runs_inside,
)
from bot.store import JournalEntry
from bot.updater import journal_owner_alive

# /proc/self/cgroup and /proc/self/mountinfo as read inside a busybox container on Docker 20.10
# (classic store, vfs), Docker 26.1 (containerd image store, native snapshotter) and Podman 4.3,
# and on their host while those three containers ran (cgroup v1 host).
PROC = Path(__file__).parent / "data" / "proc"
ENGINES = ("classic", "containerd", "podman")


def _text(name: str) -> str:
    return (PROC / name).read_text()


def _cid(engine: str) -> str:
    return _text(f"{engine}.id").strip()


def _proc_dir(tmp_path: Path, cgroup: str, mountinfo: str) -> str:
    (tmp_path / "cgroup").write_text(cgroup)
    (tmp_path / "mountinfo").write_text(mountinfo)
    return str(tmp_path)


@pytest.mark.parametrize("engine", ENGINES)
def test_process_inside_a_container_finds_that_container_by_cgroup_and_by_mounts(
    engine: str, tmp_path: Path
) -> None:
    cid = _cid(engine)
    assert ids_from_cgroup(_text(f"{engine}.cgroup")) == {cid}
    assert ids_from_mountinfo(_text(f"{engine}.mountinfo")) == {cid}
    proc = _proc_dir(tmp_path, _text(f"{engine}.cgroup"), _text(f"{engine}.mountinfo"))
    assert runs_inside(cid, proc=proc)
    others = {_cid(e) for e in ENGINES} - {cid}
    assert not any(runs_inside(other, proc=proc) for other in others)


@pytest.mark.parametrize("engine", ENGINES)
def test_private_cgroup_namespace_falls_back_to_the_engine_file_mounts(
    engine: str, tmp_path: Path
) -> None:
    # cgroup v2's default: the container sees its own cgroup as the root.
    proc = _proc_dir(tmp_path, "0::/\n", _text(f"{engine}.mountinfo"))
    assert own_container_ids(proc=proc) == {_cid(engine)}


def test_host_mountinfo_naming_every_container_root_is_not_taken_for_being_inside(
    tmp_path: Path,
) -> None:
    host = _text("host.mountinfo")
    # The containerd store mounts each container's rootfs on the host, Podman its shm: the ids
    # are there, which is what made every update look like one of DockWarden's own container.
    assert _cid("containerd") in host and _cid("podman") in host
    proc = _proc_dir(tmp_path, _text("host.cgroup"), host)
    assert own_container_ids(proc=proc) == frozenset()
    assert not any(runs_inside(_cid(e), proc=proc) for e in ENGINES)


def test_container_sharing_another_ones_network_is_inside_only_its_own(tmp_path: Path) -> None:
    # --network container:X hands X's hostname, hosts and resolv.conf to the second container.
    proc = _proc_dir(tmp_path, _text("classic.cgroup"), _text("containerd.mountinfo"))
    assert runs_inside(_cid("classic"), proc=proc)
    assert not runs_inside(_cid("containerd"), proc=proc)


def test_podman_conmon_cgroup_is_not_the_container() -> None:
    cid = _cid("podman")
    assert ids_from_cgroup(f"1:cpu:/libpod_parent/libpod-conmon-{cid}\n") == frozenset()
    assert ids_from_cgroup(f"0::/machine.slice/libpod-{cid}.scope\n") == {cid}
    assert ids_from_cgroup(f"0::/system.slice/docker-{cid}.scope\n") == {cid}


def test_mount_point_with_escaped_characters_is_read_unescaped() -> None:
    cid = _cid("classic")
    line = (f"1 2 254:0 /my\\040docker/containers/{cid}/hostname /etc/hostname rw - ext4 "
            "/dev/vda rw\n")
    assert ids_from_mountinfo(line) == {cid}
    decoy = f"1 2 254:0 /containers/{cid}/hostname /etc/host\\040name rw - ext4 /dev/vda rw\n"
    assert ids_from_mountinfo(decoy) == frozenset()


def test_empty_id_or_unreadable_proc_is_never_inside(tmp_path: Path) -> None:
    assert not runs_inside("", proc=str(tmp_path))
    assert not runs_inside(_cid("classic"), proc=str(tmp_path / "missing"))


def test_this_test_process_is_alive_and_a_foreign_one_is_not() -> None:
    me = process_identity()
    assert is_alive(me)
    assert not is_alive({**me, "host": "elsewhere"})
    assert not is_alive({**me, "pid": 1, "pid_start": "-1"})
    assert not is_alive({})


def test_an_earlier_process_with_this_very_pid_is_not_alive() -> None:
    # A restarted container: DockWarden is pid 1 again, but not the process of the journal.
    earlier = {**process_identity(), "pid_start": "1"}
    assert not is_alive(earlier)


def _journal(owner: dict[str, object], expires: float) -> JournalEntry:
    return JournalEntry(1, "web", "health", {"owner": owner, "expires": expires}, "", False, None)


def test_journal_of_a_live_process_on_this_host_is_left_alone() -> None:
    assert journal_owner_alive(_journal(process_identity(), expires=0))
    dead = {**process_identity(), "pid": 1, "pid_start": "-1"}
    assert not journal_owner_alive(_journal(dead, expires=time.time() + 3600))


def test_journal_from_another_host_counts_as_live_until_it_expires() -> None:
    elsewhere = {"host": "another-container", "pid": 7, "pid_start": "1"}
    assert journal_owner_alive(_journal(elsewhere, expires=time.time() + 3600))
    assert not journal_owner_alive(_journal(elsewhere, expires=time.time() - 1))
