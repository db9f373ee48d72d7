"""Chat commands over fakes of the ports: authorisation, approvals, policies, read-only views."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.console import ConsoleAdapter, parse_line
from bot.chat.access import Authorizer
from bot.chat.messages import AlertKind, Sender
from bot.config.settings import Settings, load_settings
from bot.domain.durations import parse_duration
from bot.domain.model import UpdateOutcome
from bot.entrypoints.bootstrap import Core, build_core
from bot.errors import ConfigError, UpdateInProgress
from bot.store.db import Store
from tests.unit.fakes import (
    ADMIN,
    NEW,
    NEWER,
    READER,
    STRANGER,
    FakeAdapter,
    FakeChecker,
    FakeUpdater,
    cmd,
    current,
    failing,
    outdated,
    report,
)
from tests.unit.store_reads import approvers


@dataclass
class Bot:
    core: Core
    checker: FakeChecker
    updater: FakeUpdater
    adapter: FakeAdapter

    @property
    def store(self) -> Store:
        return self.core.store


@pytest.fixture
def settings() -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_admin_ids=(1,),
        discord_admin_ids=(10,),
        discord_admin_role_ids=(77,),
    )


@pytest.fixture
def bot(tmp_path: Path, settings: Settings) -> Iterator[Bot]:
    store = Store(tmp_path / "state.db")
    checker = FakeChecker(report(outdated("web"), current("db")))
    updater = FakeUpdater(store=store)
    adapter = FakeAdapter()
    core = build_core(settings, store, checker, updater, [adapter], retry_delay=0)
    yield Bot(core, checker, updater, adapter)
    store.close()


async def first_update_id(bot: Bot) -> str:
    await bot.core.runner.run()
    [alert] = [a for a in bot.adapter.alerts if a.kind is AlertKind.UPDATE_AVAILABLE]
    assert alert.update_id is not None
    return alert.update_id


# -- authorisation -------------------------------------------------------------------------------


def test_authorizer_knows_each_platforms_admins(settings: Settings) -> None:
    auth = Authorizer.from_settings(settings)
    assert auth.is_admin(Sender("telegram", 1, "a"))
    assert not auth.is_admin(Sender("telegram", 10, "b"))
    assert auth.is_admin(Sender("discord", 10, "c"))
    assert auth.is_admin(Sender("discord", 5, "d", role_ids=(3, 77)))
    assert not auth.is_admin(Sender("discord", 1, "e", role_ids=(3,)))
    assert auth.is_admin(Sender("console", 0, "console"))
    assert auth.may_read(Sender("discord", 5, "f", in_alert_place=True))
    assert not auth.may_read(Sender("discord", 5, "g"))


async def test_non_admin_approve_is_refused_recorded_and_changes_nothing(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    reply = await bot.core.router.dispatch(cmd("approve", update_id, sender=READER))
    assert reply.refused and reply.ephemeral
    assert "not allowed" in reply.text
    assert bot.updater.calls == []
    assert bot.store.get_update(update_id).state == "pending"  # type: ignore[union-attr]
    [entry] = bot.store.history()
    assert (entry.action, entry.outcome, entry.container) == ("refused", "refused", "web")
    assert "telegram:2" in (entry.actor or "")


async def test_non_admin_pull_is_refused(bot: Bot) -> None:
    reply = await bot.core.router.dispatch(cmd("pull", "web", sender=READER))
    assert reply.refused and bot.updater.calls == []


async def test_stranger_cannot_even_read(bot: Bot) -> None:
    reply = await bot.core.router.dispatch(cmd("status", sender=STRANGER))
    assert reply.refused and reply.ephemeral


async def test_reader_in_alert_chat_may_read(bot: Bot) -> None:
    for name in ("status", "updates", "history", "help", "check"):
        reply = await bot.core.router.dispatch(cmd(name, sender=READER))
        assert not reply.refused, name


# -- approving -----------------------------------------------------------------------------------


async def test_admin_approve_calls_the_updater_once_and_reports(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    reply = await bot.core.router.dispatch(cmd("approve", update_id))
    assert bot.updater.calls == [("web", NEW, "telegram:1 (admin)")]
    assert "updated" in reply.text
    assert bot.store.get_update(update_id).state == "applied"  # type: ignore[union-attr]
    assert approvers(bot.store, update_id) == ["telegram:1 (admin)"]
    assert bot.adapter.alerts[-1].kind is AlertKind.UPDATE_SUCCEEDED
    actions = [(e.action, e.outcome) for e in reversed(bot.store.history())]
    assert actions == [("approve", "approved"), ("update", "updated")]


async def test_approve_by_container_name(bot: Bot) -> None:
    await first_update_id(bot)
    await bot.core.router.dispatch(cmd("approve", "web"))
    assert [c[0] for c in bot.updater.calls] == ["web"]


async def test_approving_a_superseded_update_says_so_and_does_nothing(bot: Bot) -> None:
    old_id = await first_update_id(bot)
    bot.checker.reports = [report(outdated("web", remote=NEWER))]
    await bot.core.runner.run()
    newer = bot.store.latest_update("web")
    assert newer is not None
    reply = await bot.core.router.dispatch(cmd("approve", old_id))
    assert "no longer current" in reply.text and newer.id in reply.text
    assert bot.updater.calls == []


async def test_approving_twice_says_already_applied(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    await bot.core.router.dispatch(cmd("approve", update_id))
    reply = await bot.core.router.dispatch(cmd("approve", update_id))
    assert "already applied" in reply.text
    assert len(bot.updater.calls) == 1


async def test_failed_update_alerts_and_can_be_approved_again(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    bot.updater.outcome = UpdateOutcome.ROLLED_BACK
    reply = await bot.core.router.dispatch(cmd("approve", update_id))
    assert "rolled_back" in reply.text
    assert bot.adapter.alerts[-1].kind is AlertKind.UPDATE_FAILED
    assert bot.store.get_update(update_id).state == "failed"  # type: ignore[union-attr]
    bot.updater.outcome = UpdateOutcome.UPDATED
    await bot.core.router.dispatch(cmd("approve", update_id))
    assert len(bot.updater.calls) == 2


async def test_update_in_progress_leaves_the_update_approvable(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    bot.updater.raises = UpdateInProgress("web is being updated")
    reply = await bot.core.router.dispatch(cmd("approve", update_id))
    assert "not started" in reply.text
    assert bot.store.get_update(update_id).state == "pending"  # type: ignore[union-attr]


async def test_unknown_update_id(bot: Bot) -> None:
    reply = await bot.core.router.dispatch(cmd("approve", "zzzzzz"))
    assert "No update" in reply.text and bot.updater.calls == []


async def test_pull_updates_to_the_newest_digest_and_closes_the_pending_update(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    await bot.core.router.dispatch(cmd("pull", "web"))
    assert bot.updater.calls == [("web", None, "telegram:1 (admin)")]
    assert bot.store.get_update(update_id).state == "applied"  # type: ignore[union-attr]


# -- policies ------------------------------------------------------------------------------------


async def test_auto_policy_updates_then_reports(bot: Bot) -> None:
    bot.checker.reports = [report(outdated("web", policy="auto"))]
    await bot.core.runner.run()
    assert bot.updater.calls == [("web", NEW, "policy:auto")]
    assert [a.kind for a in bot.adapter.alerts] == [AlertKind.UPDATE_SUCCEEDED]
    await bot.core.runner.run()
    assert len(bot.updater.calls) == 1


async def test_notify_policy_never_updates_by_itself(bot: Bot) -> None:
    bot.checker.reports = [report(outdated("web", policy="notify"))]
    await bot.core.runner.run()
    [alert] = bot.adapter.alerts
    assert alert.actions == () and bot.updater.calls == []


# -- ignore and snooze ---------------------------------------------------------------------------


async def test_ignore_suppresses_that_digest_until_a_newer_one(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    reply = await bot.core.router.dispatch(cmd("ignore", update_id))
    assert "Ignored" in reply.text
    assert bot.store.get_update(update_id).state == "ignored"  # type: ignore[union-attr]
    bot.store.unsay(f"update|web|{NEW}")  # even if it were never said, it stays quiet
    before = len(bot.adapter.alerts)
    await bot.core.runner.run()
    assert len(bot.adapter.alerts) == before
    bot.checker.reports = [report(outdated("web", remote=NEWER))]
    await bot.core.runner.run()
    assert bot.adapter.alerts[-1].kind is AlertKind.UPDATE_AVAILABLE


async def test_snooze_suppresses_alerts_for_the_container(bot: Bot) -> None:
    reply = await bot.core.router.dispatch(cmd("snooze", "web", "2h"))
    assert "Snoozed web" in reply.text
    await bot.core.runner.run()
    assert bot.adapter.alerts == []
    assert bot.store.history()[0].action == "snooze"


async def test_snooze_button_uses_the_update_id_and_a_default_duration(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    reply = await bot.core.router.dispatch(cmd("snooze", update_id))
    assert "Snoozed web" in reply.text
    assert bot.store.snoozed_until("web") is not None


def test_durations() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1d") == timedelta(days=1)
    for bad in ("", "soon", "5", "2x", "0m"):
        with pytest.raises(Exception):  # noqa: B017 - UsageError, answered to the sender
            parse_duration(bad)


async def test_bad_duration_answers_with_usage(bot: Bot) -> None:
    reply = await bot.core.router.dispatch(cmd("snooze", "web", "soon"))
    assert "Usage: /snooze" in reply.text


async def test_a_snooze_of_ten_million_days_is_a_usage_error_not_a_crash(bot: Bot) -> None:
    for huge in ("10000000d", "9" * 400 + "w", "52w2d"):
        reply = await bot.core.router.dispatch(cmd("snooze", "web", huge))
        assert "at most 365d" in reply.text and "Usage: /snooze" in reply.text
    assert bot.store.snoozed_until("web") is None
    reply = await bot.core.router.dispatch(cmd("snooze", "web", "52w"))
    assert "Snoozed web" in reply.text


# -- read-only -----------------------------------------------------------------------------------


async def test_status_shows_last_pass_counts_and_pending_updates(bot: Bot) -> None:
    assert "none yet" in (await bot.core.router.dispatch(cmd("status"))).text
    update_id = await first_update_id(bot)
    text = (await bot.core.router.dispatch(cmd("status"))).text
    assert "2 containers: 1 up to date, 1 with updates" in text
    assert "Pending updates: 1" in text and update_id in text


async def test_status_shows_rate_limits(bot: Bot) -> None:
    bot.checker.reports = [report(failing("hub", kind="rate_limited", registry="docker.io"))]
    await bot.core.runner.run()
    assert "Rate limited: docker.io" in (await bot.core.router.dispatch(cmd("status"))).text


async def test_check_runs_the_same_pass_and_posts_its_alerts(bot: Bot) -> None:
    reply = await bot.core.router.dispatch(cmd("check", "web"))
    assert bot.checker.calls == [["web"]]
    assert "1 new alerts" in reply.text
    assert [a.kind for a in bot.adapter.alerts] == [AlertKind.UPDATE_AVAILABLE]


async def test_updates_lists_pending_with_pages(bot: Bot) -> None:
    assert (await bot.core.router.dispatch(cmd("updates"))).text == "No pending updates."
    bot.checker.reports = [report(*(outdated(f"c{i:02}") for i in range(13)))]
    await bot.core.runner.run()
    first = (await bot.core.router.dispatch(cmd("updates"))).text
    assert "page 1/2" in first and "c09" in first and "c10" not in first
    assert "/updates 2" in first
    second = (await bot.core.router.dispatch(cmd("updates", "2"))).text
    assert "c12" in second


async def test_history_for_one_container(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    await bot.core.router.dispatch(cmd("approve", update_id))
    await bot.core.router.dispatch(cmd("snooze", "db", "1h"))
    text = (await bot.core.router.dispatch(cmd("history", "web"))).text
    assert "approve web: approved" in text and "db" not in text


async def test_help_lists_every_command_from_docstrings(bot: Bot) -> None:
    text = (await bot.core.router.dispatch(cmd("help", sender=READER))).text
    for name in ("status", "check", "updates", "approve", "pull", "ignore", "snooze", "history"):
        assert f"/{name}" in text
    assert "Approve an update" in text and "not you" in text


async def test_unknown_command(bot: Bot) -> None:
    reply = await bot.core.router.dispatch(cmd("frobnicate", sender=ADMIN))
    assert "Unknown command" in reply.text


async def test_completions_offer_containers_and_update_ids(bot: Bot) -> None:
    update_id = await first_update_id(bot)
    assert await bot.core.router.completions("container", "w", READER) == ["web"]
    assert await bot.core.router.completions("update", "", ADMIN) == [update_id]


async def test_completions_are_empty_for_those_who_may_not_read(bot: Bot) -> None:
    await first_update_id(bot)
    assert await bot.core.router.completions("container", "", STRANGER) == []
    assert await bot.core.router.completions("update", "", STRANGER) == []


# -- what strangers can make the bot do ----------------------------------------------------------


async def test_a_flood_of_refusals_costs_one_history_row_and_one_log_line(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    replies = [await bot.core.router.dispatch(cmd("status", sender=STRANGER))
               for _ in range(2000)]
    assert all(r.refused for r in replies)
    answered = [r for r in replies if not r.silent]
    assert len(answered) == bot.core.router.refusals.answers  # then the flood is not answered
    [entry] = bot.store.history(limit=100)
    assert (entry.action, entry.detail) == ("refused", "/status")
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


async def test_refusals_of_one_sender_do_not_silence_another(bot: Bot) -> None:
    other = Sender("telegram", 4, "other", in_alert_place=False)
    for _ in range(10):
        await bot.core.router.dispatch(cmd("status", sender=STRANGER))
    reply = await bot.core.router.dispatch(cmd("pull", "web", sender=other))
    assert reply.refused and not reply.silent
    assert [e.actor for e in bot.store.history()] == ["telegram:4 (other)", "telegram:3 (stranger)"]


async def test_the_next_window_records_again_and_says_how_many_were_left_out(bot: Bot) -> None:
    now = [0.0]
    bot.core.router.refusals.clock = lambda: now[0]
    for _ in range(7):
        await bot.core.router.dispatch(cmd("status", sender=STRANGER))
    now[0] += bot.core.router.refusals.window
    reply = await bot.core.router.dispatch(cmd("status", sender=STRANGER))
    assert not reply.silent and "recorded" in reply.text
    newest, first = bot.store.history()
    assert first.detail == "/status"
    assert newest.detail == "/status (+6 more refused, not recorded)"


async def test_refused_arguments_are_stored_truncated(bot: Bot) -> None:
    huge = "x" * 100_000
    sender = Sender("telegram", 5, "y" * 5000, in_alert_place=False)
    await bot.core.router.dispatch(cmd("pull", huge, huge, sender=sender))
    [entry] = bot.store.history()
    assert len(entry.detail) <= 200
    assert entry.container is not None and len(entry.container) <= 64
    assert entry.actor is not None and len(entry.actor) <= 100


async def test_unknown_command_name_is_not_echoed_in_full(bot: Bot) -> None:
    reply = await bot.core.router.dispatch(cmd("z" * 5000, sender=STRANGER))
    assert "Unknown command" in reply.text and len(reply.text) < 100


async def test_a_pass_prunes_history_older_than_the_retention(bot: Bot) -> None:
    old = bot.store.record("refused", "refused", actor="telegram:3 (stranger)", detail="/status")
    with bot.store.transaction() as db:
        db.execute("UPDATE history SET at = '2000-01-01T00:00:00+00:00' WHERE id = ?", (old,))
    bot.store.record("snooze", "snoozed", container="db", detail="recent")
    await bot.core.runner.run()
    assert [e.detail for e in bot.store.history()] == ["recent"]


def test_history_retention_setting_is_validated() -> None:
    assert Settings(_env_file=None).history_retention == timedelta(days=90)  # type: ignore[call-arg]
    kept = load_settings(_env_file=None, DOCKWARDEN_HISTORY_RETENTION="12w")
    assert kept.history_retention == timedelta(weeks=12)
    for bad in ("forever", "0d", "1h", "10000000d", "99999999999999999999999d"):
        with pytest.raises(ConfigError, match="DOCKWARDEN_HISTORY_RETENTION"):
            load_settings(_env_file=None, DOCKWARDEN_HISTORY_RETENTION=bad)


# -- /check --------------------------------------------------------------------------------------


async def test_check_joins_the_pass_under_way_instead_of_starting_another(bot: Bot) -> None:
    bot.checker.delay = 0.05
    scheduled = asyncio.create_task(bot.core.runner.run())
    await asyncio.sleep(0)  # the scheduled pass holds the lock
    assert bot.core.runner.running
    replies = await asyncio.gather(
        bot.core.router.dispatch(cmd("check", sender=READER)),
        bot.core.router.dispatch(cmd("check", "web")),
    )
    await scheduled
    assert bot.checker.calls == [None]
    assert all("Checked 2 containers" in r.text for r in replies)


async def test_check_of_other_names_waits_and_runs_its_own_pass(bot: Bot) -> None:
    bot.checker.delay = 0.01
    partial = asyncio.create_task(bot.core.runner.run(["db"]))
    await asyncio.sleep(0)
    await bot.core.router.dispatch(cmd("check", "web"))
    await partial
    assert bot.checker.calls == [["db"], ["web"]]


async def test_non_admins_get_a_cool_down_between_checks_and_admins_do_not(bot: Bot) -> None:
    first = await bot.core.router.dispatch(cmd("check", sender=READER))
    assert "Checked" in first.text
    again = await bot.core.router.dispatch(cmd("check", sender=READER))
    assert "try again in" in again.text and again.ephemeral
    other_reader = Sender("telegram", 6, "reader2", in_alert_place=True)
    refused = await bot.core.router.dispatch(cmd("check", sender=other_reader))
    assert "try again in" in refused.text
    assert len(bot.checker.calls) == 1
    assert "Checked" in (await bot.core.router.dispatch(cmd("check", sender=ADMIN))).text
    assert len(bot.checker.calls) == 2
    bot.core.router.open_checks.seconds = 0
    assert "Checked" in (await bot.core.router.dispatch(cmd("check", sender=READER))).text


# -- the console adapter -------------------------------------------------------------------------


def test_console_lines_become_admin_commands() -> None:
    command = parse_line("  /Approve abc123 \n")
    assert command is not None
    assert (command.name, command.args) == ("approve", ("abc123",))
    assert command.sender.platform == "console" and command.sender.in_alert_place
    assert parse_line("   ") is None


async def test_console_prints_alerts_and_answers_typed_commands(bot: Bot) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(out=out, interactive=False)
    await console.start(bot.core.router.dispatch)
    bot.core.notifier.adapters = [console]
    await bot.core.runner.run()
    assert "--- update_available ---" in out.getvalue()
    update_id = bot.store.updates()[0].id
    reply = await console.handle_line(f"approve {update_id}")
    assert reply is not None and not reply.refused
    assert bot.updater.calls == [("web", NEW, "console:0 (console)")]
    await console.stop()


async def test_console_reads_commands_from_its_input_stream(bot: Bot) -> None:
    read_fd, write_fd = os.pipe()
    out = io.StringIO()
    with os.fdopen(read_fd) as stdin:
        console = ConsoleAdapter(out=out, stdin=stdin, interactive=True)
        await console.start(bot.core.router.dispatch)
        os.write(write_fd, b"/status\n")
        for _ in range(500):
            if "Pending updates" in out.getvalue():
                break
            await asyncio.sleep(0.01)
        await console.stop()
    os.close(write_fd)
    assert "Pending updates: 0" in out.getvalue()
