"""Recognising the container this process runs in, and whether a journal's owner lives."""

from __future__ import annotations

import time
from pathlib import Path

from bot.selfinfo import container_ids_in, is_alive, process_identity, runs_inside
from bot.store import JournalEntry
from bot.updater import journal_owner_alive

CID = "4f6a3c2b1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"

CGROUP_V1 = f"12:pids:/docker/{CID}\n11:memory:/docker/{CID}\n"
MOUNTINFO_V2 = (
    "1434 1415 0:60 / / rw,relatime master:520 - overlay overlay rw\n"
    f"1452 1434 254:1 /var/lib/docker/containers/{CID}/hostname /etc/hostname rw - ext4 "
    "/dev/vda1 rw\n"
)


def test_container_id_is_found_in_cgroup_v1_and_mountinfo() -> None:
    assert container_ids_in(CGROUP_V1) == {CID}
    assert container_ids_in(MOUNTINFO_V2) == {CID}
    assert container_ids_in("0::/user.slice/session-3.scope\n") == set()


def test_runs_inside_reads_the_proc_files(tmp_path: Path) -> None:
    (tmp_path / "cgroup").write_text("0::/\n")
    (tmp_path / "mountinfo").write_text(MOUNTINFO_V2)
    assert runs_inside(CID, proc=str(tmp_path))
    assert not runs_inside("a" * 64, proc=str(tmp_path))


def test_this_test_process_is_alive_and_a_foreign_one_is_not() -> None:
    me = process_identity()
    assert is_alive(me)
    assert not is_alive({**me, "host": "elsewhere"})
    assert not is_alive({**me, "pid": 1, "pid_start": "-1"})
    assert not is_alive({})


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
