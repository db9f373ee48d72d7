"""The SQLite store: migrations, pending updates, approvals, ignores, snoozes, dedup keys,
the last pass's snapshot."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.domain.model import CheckStatus, UpdateState
from bot.errors import StoreError
from bot.store.connection import utcnow
from bot.store.db import Store
from bot.store.meta import LastPass
from bot.store.safety import SafetyStore
from bot.store.schema import MIGRATIONS
from tests.unit.fakes import NEW, NEWER, OLD
from tests.unit.store_reads import approvers


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def _version_1_file(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute(
        "INSERT INTO journal (container, step, data, started_at, updated_at)"
        " VALUES ('web', 'pulled', '{\"old\": 1}', 't0', 't0')"
    )
    db.execute(
        "INSERT INTO history (at, container, action, actor, outcome, detail)"
        " VALUES ('t0', 'web', 'update', 'cli', 'updated', 'ok')"
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_version_1_file_migrates_to_2_keeping_journal_and_history(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_1_file(path)
    store = Store(path)
    try:
        assert store.schema_version == len(MIGRATIONS) >= 2
        [entry] = store.journal_open()
        assert (entry.container, entry.step, entry.data) == ("web", "pulled", {"old": 1})
        [history] = store.history()
        assert (history.action, history.outcome, history.detail) == ("update", "updated", "ok")
        update, created = store.add_update("web", "r/web:latest", OLD, NEW, "approve")
        assert created and update.state == "pending"
    finally:
        store.close()


def test_pending_update_and_approval_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = Store(path)
    update, _ = first.add_update("web", "r/web:latest", OLD, NEW, "approve")
    other, _ = first.add_update("db", "r/db:latest", OLD, NEW, "approve")
    assert first.approve_update(other.id, "telegram:1 (admin)")
    first.mark_said("update|web|" + NEW)
    first.close()

    second = Store(path)
    try:
        assert second.get_update(update.id) == update
        assert second.get_update(other.id).state == "approved"  # type: ignore[union-attr]
        assert approvers(second, other.id) == ["telegram:1 (admin)"]
        assert second.was_said("update|web|" + NEW)
        assert [u.id for u in second.updates()] == [update.id]
    finally:
        second.close()


def test_update_ids_are_short_unique_and_one_per_container_digest(store: Store) -> None:
    first, created = store.add_update("web", "r/web:latest", OLD, NEW, "approve")
    again, created_again = store.add_update("web", "r/web:latest", OLD, NEW, "approve")
    assert created and not created_again
    assert again.id == first.id
    assert len(first.id) == 6 and first.id.isalnum()
    ids = {store.add_update(f"c{i}", "r/c:latest", OLD, NEW, "approve")[0].id for i in range(50)}
    assert len(ids) == 50


def test_newer_digest_supersedes_the_pending_update(store: Store) -> None:
    old, _ = store.add_update("web", "r/web:latest", OLD, NEW, "approve")
    newer, _ = store.add_update("web", "r/web:latest", OLD, NEWER, "approve")
    assert store.get_update(old.id).state == "superseded"  # type: ignore[union-attr]
    assert store.newer_update(old) == newer
    assert store.latest_update("web") == newer


def test_approval_happens_once(store: Store) -> None:
    update, _ = store.add_update("web", "r/web:latest", OLD, NEW, "approve")
    assert store.approve_update(update.id, "a")
    assert not store.approve_update(update.id, "b")
    assert approvers(store, update.id) == ["a"]


def test_ignore_whole_container_or_one_digest(store: Store) -> None:
    store.ignore("web", NEW)
    assert store.is_ignored("web", NEW)
    assert not store.is_ignored("web", NEWER)
    store.ignore("db")
    assert store.is_ignored("db", NEWER)


def test_snooze_ends_at_its_time(store: Store) -> None:
    now = utcnow()
    store.snooze("web", now + timedelta(hours=2))
    assert store.snoozed_until("web", now) is not None
    assert store.snoozed_until("web", now + timedelta(hours=3)) is None
    assert store.snoozed_until("db", now) is None


def test_said_keys_match_by_literal_prefix(store: Store) -> None:
    store.mark_said("problem|reg_1|auth_failed")
    store.mark_said("problem|regX1|unreachable")
    assert store.said_keys("problem|reg_1|") == ["problem|reg_1|auth_failed"]
    store.unsay("problem|reg_1|auth_failed")
    assert store.said_keys("problem|reg_1|") == []


def test_outbox_keeps_undelivered_alerts_until_done(store: Store) -> None:
    item_id = store.outbox_add("telegram", '{"x": 1}', "down")
    store.outbox_failed(item_id, "still down")
    [item] = store.outbox("telegram")
    assert item.attempts == 2
    store.outbox_done(item_id)
    assert store.outbox() == []


def test_update_interrupted_by_a_restart_is_pending_again_with_its_approval(
    tmp_path: Path,
) -> None:
    first = Store(tmp_path / "s.db")
    update, _ = first.add_update("web", "r/web:latest", OLD, NEW, "approve")
    first.approve_update(update.id, "telegram:1 (admin)")
    first.close()
    second = Store(tmp_path / "s.db")
    try:
        assert [u.id for u in second.reopen_interrupted()] == [update.id]
        assert second.get_update(update.id).state == "pending"  # type: ignore[union-attr]
        assert approvers(second, update.id) == ["telegram:1 (admin)"]
        assert second.reopen_interrupted() == []
    finally:
        second.close()


def test_nested_transactions_commit_once_and_roll_back_together(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.mark_said("a")
            store.record("x", "y")
            raise RuntimeError("boom")
    assert not store.was_said("a") and store.history() == []
    with store.transaction():
        store.mark_said("b")
    assert store.was_said("b")


def test_a_failed_commit_rolls_back_and_later_writes_still_land(
    store: Store, tmp_path: Path
) -> None:
    # A deferred foreign key fails at COMMIT, the way a full disk or an I/O error would.
    with store.transaction() as db:
        db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE child (p INTEGER REFERENCES parent (id)"
                   " DEFERRABLE INITIALLY DEFERRED)")
    store._db.execute("PRAGMA foreign_keys = ON")  # outside any transaction
    with pytest.raises(StoreError):
        with store.transaction() as db:
            store.record("lost", "with the failed commit")
            db.execute("INSERT INTO child VALUES (1)")
    store.record("check", "ok")
    other = Store(tmp_path / "state.db")  # another connection sees only what was committed
    try:
        assert [h.action for h in other.history()] == ["check"]
    finally:
        other.close()


def test_a_locked_database_is_a_store_error_and_the_store_writes_again_once_free(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.db", busy_timeout=0.05)
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        jid = store.journal_begin("web", "stop", {"old_id": "a"})
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreError, match="locked"):
            store.journal_step(jid, "rename")
        with pytest.raises(StoreError, match="locked"):
            store.record("update", "failed")
        assert store.journal_open()[0].step == "stop"  # reads go on meanwhile
        other.execute("ROLLBACK")
        store.journal_step(jid, "rename")
        assert store.journal_open()[0].step == "rename"
    finally:
        other.close()
        store.close()


def test_a_full_database_is_a_store_error_and_reads_still_work(store: Store) -> None:
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # as a disk with no room left
    with pytest.raises(StoreError, match="full"):
        for _ in range(200):
            store.record("update", "failed", detail="x" * 2000)
    assert store.history(limit=1) is not None
    assert store.journal_open() == []


def test_a_closed_store_is_a_store_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.close()
    with pytest.raises(StoreError):
        store.journal_begin("web", "stop", {})
    with pytest.raises(StoreError):
        store.journal_open()


def _file_at_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:version]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
def test_a_file_of_every_older_schema_migrates_to_the_newest(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.db"
    _file_at_version(path, version)
    store = Store(path)
    try:
        assert store.schema_version == len(MIGRATIONS) == 6
        update, created = store.add_update("web", "r/web:1", OLD, NEW, "approve", new_tag="2")
        assert created and update.new_tag == "2" and update.brings == "{}"
    finally:
        store.close()


def test_a_file_written_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    _file_at_version(path, len(MIGRATIONS))
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer DockWarden"):
        Store(path)


def test_no_last_pass_before_the_first_pass(store: Store) -> None:
    assert store.last_pass() is None


def test_the_last_pass_reads_back_as_written_and_survives_reopening(tmp_path: Path) -> None:
    last = LastPass(
        checked_at=utcnow().replace(microsecond=0),
        counts={CheckStatus.UP_TO_DATE: 3, CheckStatus.UPDATE_AVAILABLE: 1,
                CheckStatus.SKIPPED: 0, CheckStatus.ERROR: 2},
        rate_limited={"registry-1.docker.io": "429 Too Many Requests"},
    )
    first = Store(tmp_path / "s.db")
    first.set_last_pass(last)
    first.close()
    second = Store(tmp_path / "s.db")
    try:
        assert second.last_pass() == last
        assert last.total == 6
    finally:
        second.close()


def test_the_next_pass_reads_back_to_the_second_in_its_own_time_zone(store: Store) -> None:
    assert store.next_pass() is None
    at = datetime(2026, 3, 29, 2, 30, 15, 999, tzinfo=timezone(timedelta(hours=2)))
    store.set_next_pass(at)
    assert store.next_pass() == at.replace(microsecond=0)
    assert store.get_meta("next_pass") == "2026-03-29T02:30:15+02:00"


def test_a_last_pass_kept_without_rate_limits_still_reads(store: Store) -> None:
    # The snapshot is JSON in the meta table; a file from before rate limits were kept lacks them.
    store.set_meta("last_pass", '{"checked_at": "2026-01-02T03:04:05+00:00", "counts":'
                   ' {"up_to_date": 1, "update_available": 0, "skipped": 0, "error": 0}}')
    last = store.last_pass()
    assert last is not None
    assert last.checked_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert last.counts[CheckStatus.UP_TO_DATE] == 1 and last.rate_limited == {}


def test_an_image_config_is_kept_per_digest_and_an_update_keeps_what_it_brings(
    store: Store,
) -> None:
    assert store.image_config(NEW) is None
    store.keep_image_config(NEW, '{"version": "2"}')
    assert store.image_config(NEW) == '{"version": "2"}' and store.image_config(OLD) is None
    update, _ = store.add_update("web", "r/web:latest", OLD, NEW, "approve")
    store.set_update_brings(update.id, '{"version": ["1", "2"]}')
    assert store.get_update(update.id).brings == '{"version": ["1", "2"]}'  # type: ignore[union-attr]


def test_no_module_outside_the_store_speaks_sql() -> None:
    # Every table is read and written by its module in bot/store, so a newcomer finds it there.
    root = Path(__file__).resolve().parents[2]
    speaking = [
        str(path.relative_to(root))
        for folder in ("bot", "adapters")
        for path in sorted((root / folder).rglob("*.py"))
        if "store" not in path.relative_to(root).parts
        and any(word in path.read_text() for word in ("sqlite3", ".execute(", "executemany("))
    ]
    assert speaking == []


def test_a_rolled_back_update_is_pending_again_and_its_alert_may_be_said_again(
    store: Store,
) -> None:
    update, _ = store.add_update("web", "r/web:latest", OLD, NEW, "approve")
    store.set_update_state(update.id, UpdateState.APPLIED)
    store.mark_said(f"update|web|{NEW}")
    store.mark_said(f"update|db|{NEW}")
    SafetyStore(store).reopen("web", NEW)
    again = store.get_update(update.id)
    assert again is not None and (again.state, again.detail) == ("pending", "rolled back")
    assert not store.was_said(f"update|web|{NEW}") and store.was_said(f"update|db|{NEW}")
