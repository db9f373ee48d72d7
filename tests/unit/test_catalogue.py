"""The command catalogue: each command declared once, and the router doing what it says."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chat.catalogue import COMMANDS, command, usage
from bot.chat.handlers import HANDLERS
from bot.chat.router import CommandRouter
from bot.config.settings import Settings
from bot.entrypoints.bootstrap import build_core
from bot.store.db import Store
from tests.unit.fakes import READER, FakeAdapter, FakeChecker, FakeUpdater, cmd, current, report

NAMES = [spec.name for spec in COMMANDS]


@pytest.fixture
def router(tmp_path: Path) -> Iterator[CommandRouter]:
    store = Store(tmp_path / "state.db")
    settings = Settings(_env_file=None, telegram_admin_ids=(1,))  # type: ignore[call-arg]
    core = build_core(settings, store, FakeChecker(report(current("web"))),
                      FakeUpdater(store=store), [FakeAdapter()], retry_delay=0)
    yield core.router
    store.close()


def test_every_catalogue_command_has_a_route_and_every_route_an_entry(
    router: CommandRouter,
) -> None:
    assert list(router.routes) == NAMES
    assert len(set(NAMES)) == len(NAMES)
    assert set(HANDLERS) == set(NAMES)  # no handler without a catalogue entry either


def test_usage_shows_required_and_optional_arguments() -> None:
    assert usage(command("status")) == "/status"
    assert usage(command("snooze")) == "/snooze <name|id> [duration]"
    assert usage(command("check")) == "/check [name...]"
    assert usage(command("approve")) == "/approve <id|name>"


def test_arguments_read_in_order_required_first_and_a_list_only_last() -> None:
    for spec in COMMANDS:
        required = [a.required for a in spec.arguments]
        assert required == sorted(required, reverse=True), spec.name
        assert all(not a.name.endswith("...") for a in spec.arguments[:-1]), spec.name
        assert len({a.name for a in spec.arguments}) == len(spec.arguments), spec.name


def test_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        command("frobnicate")


def test_admins_only_and_slow_commands_are_the_ones_the_adapters_knew() -> None:
    assert {s.name for s in COMMANDS if s.changes_state} == {
        "approve", "pull", "ignore", "snooze", "rollback"}
    assert {s.name for s in COMMANDS if s.slow} == {"check", "approve", "pull", "rollback"}


def test_texts_fit_telegram_menus_and_discord_slash_commands() -> None:
    for spec in COMMANDS:
        assert 3 <= len(spec.summary) <= 100, spec.name  # Discord: 1-100, Telegram: 3-256
        for argument in spec.arguments:
            assert 1 <= len(argument.help) <= 100, (spec.name, argument.name)


async def test_help_lists_the_catalogue_in_order_with_usage_and_summary(
    router: CommandRouter,
) -> None:
    lines = (await router.dispatch(cmd("help", sender=READER))).text.splitlines()
    assert len(lines) == len(COMMANDS)
    for line, spec in zip(lines, COMMANDS, strict=True):
        assert line.startswith(f"{usage(spec)} — {spec.summary}")
        assert ("(admins only; not you)" in line) is spec.changes_state


async def test_a_reader_is_refused_exactly_the_commands_that_change_state(
    router: CommandRouter,
) -> None:
    for spec in COMMANDS:
        reply = await router.dispatch(cmd(spec.name, "web", sender=READER))
        assert reply.refused is spec.changes_state, spec.name


async def test_required_arguments_are_required_and_optional_ones_optional(
    router: CommandRouter,
) -> None:
    for spec in COMMANDS:
        reply = await router.dispatch(cmd(spec.name))
        required = any(a.required for a in spec.arguments)
        assert (f"Usage: {usage(spec)}" in reply.text) is required, spec.name
    # the duration of /snooze may be left out: the default applies
    assert "Snoozed web" in (await router.dispatch(cmd("snooze", "web"))).text


async def test_a_store_that_refuses_a_write_is_answered_as_a_failure_not_a_crash(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.db", busy_timeout=0.05)
    settings = Settings(_env_file=None, telegram_admin_ids=(1,))  # type: ignore[call-arg]
    router = build_core(settings, store, FakeChecker(report()), FakeUpdater(store=store),
                        retry_delay=0).router
    locker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # the database locked by someone else meanwhile
        reply = await router.dispatch(cmd("snooze", "web", "1h"))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        store.close()
    assert reply.text.startswith("/snooze failed: ") and not reply.ephemeral
