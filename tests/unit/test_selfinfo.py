"""Recognising the container this process runs in, and whether a journal's owner lives."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.store.journal import JournalEntry
from bot.update.reconcile import journal_owner_alive
from bot.update.selfinfo import (
    ids_from_cgroup,
    ids_from_mountinfo,
    is_alive,
    own_container_ids,
    process_identity,
    runs_inside,
)

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


_HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)
_COMPONENT = st.text(st.characters(blacklist_characters="/\n", blacklist_categories=("Cs",)),
                     min_size=1, max_size=12)
_ESCAPES = {" ": "\\040", "\t": "\\011", "\\": "\\134"}


def _escape(path: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in path)


@given(cid=_HEX64, before=st.lists(_COMPONENT, max_size=4),
       file=st.sampled_from(["hostname", "hosts", "resolv.conf"]))
def test_id_in_the_source_of_an_engine_file_mount_is_found_wherever_the_data_root_is(
    cid: str, before: list[str], file: str
) -> None:
    source = "/" + "/".join([*before, "containers", cid, file])
    line = f"88 71 254:0 {_escape(source)} /etc/{file} rw,relatime - ext4 /dev/vda rw\n"
    assert cid in ids_from_mountinfo(line)


@given(cid=_HEX64, target=st.lists(_COMPONENT, min_size=1, max_size=4))
def test_id_in_any_other_mount_is_never_taken_for_our_own(cid: str, target: list[str]) -> None:
    mount_point = "/" + "/".join(target)
    if mount_point in ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf"):
        return
    line = (f"44 43 254:0 /data/snapshots/5 {_escape(mount_point)}/{cid} rw shared:2 - ext4 "
            f"/dev/vda rw\n55 27 254:0 /containers/{cid}/hostname {_escape(mount_point)} rw - "
            "ext4 /dev/vda rw\n")
    assert ids_from_mountinfo(line) == frozenset()


@given(st.text())
def test_any_text_parses_without_error(text: str) -> None:
    assert isinstance(ids_from_mountinfo(text), frozenset)
    assert isinstance(ids_from_cgroup(text), frozenset)


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
