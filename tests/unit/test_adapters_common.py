"""What every chat adapter does the same way: secrets, the press line, the guard, slow commands."""

from __future__ import annotations

import io
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.common import (
    NOT_STARTED,
    PartialDeliveries,
    SecretFilter,
    ask,
    failure_note,
    is_slow,
    not_running,
    press_line,
    pressed,
)
from adapters.console import ConsoleAdapter, help_line
from bot.chat.catalogue import COMMANDS, usage
from bot.chat.messages import Alert, AlertKind, Command, Reply, Sender
from bot.chat.text_safety import redact

SENDER = Sender("telegram", 1, "alice")
TOKENS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:-_", min_size=1, max_size=40)


def alert(title: str = "Update for web") -> Alert:
    return Alert(AlertKind.UPDATE_AVAILABLE, title, "text", update_id="u1")


@given(before=st.text(), after=st.text(), secret=TOKENS)
def test_a_redacted_text_never_holds_the_secret(before: str, after: str, secret: str) -> None:
    assert secret not in redact(f"{before}{secret}{after}{secret}", [secret])


def test_redact_replaces_each_secret_with_the_mark_and_skips_empty_ones() -> None:
    assert redact("a TOKEN and HOOK", ["TOKEN", "", "HOOK"]) == "a *** and ***"
    assert redact("bot123:abc/getMe", ["123:abc"], "<TOKEN>") == "bot<TOKEN>/getMe"


def test_the_secret_filter_cleans_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.unit.secret_filter")
    logger.addHandler(handler)
    guard = SecretFilter("<T>")
    guard.protect("s3cret")
    guard.attach(logger.name)
    try:
        logger.error("GET /bot%s/getMe", "s3cret")
        try:
            raise RuntimeError("url /bots3cret/send failed")
        except RuntimeError:
            logger.exception("failed")
        guard.detach(logger.name)
        logger.error("after detach: s3cret")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue()
    assert "GET /bot<T>/getMe" in lines and "url /bot<T>/send failed" in lines
    assert lines.count("s3cret") == 1, "only the record logged after detach keeps it"


def test_the_press_line_says_who_pressed_which_button_and_the_outcome() -> None:
    assert pressed("@anna", "Approve") == "@anna pressed Approve"
    assert press_line("@anna", "Approve", "web updated") == "@anna pressed Approve: web updated"


async def test_a_command_before_start_gets_the_one_private_not_started_answer() -> None:
    reply = await ask(None, Command("status", (), SENDER))
    assert reply == Reply(NOT_STARTED, ephemeral=True, refused=True)

    async def core(command: Command) -> Reply:
        return Reply(f"done: {command.name}")

    assert (await ask(core, Command("status", (), SENDER))).text == "done: status"


async def test_the_console_answers_a_line_typed_before_start_with_the_same_words() -> None:
    out = io.StringIO()
    reply = await ConsoleAdapter(out=out, interactive=False).handle_line("/status")
    assert reply is not None and reply.text == NOT_STARTED
    assert out.getvalue() == f"{NOT_STARTED}\n"


def test_the_console_help_line_lists_every_catalogue_command_with_its_usage() -> None:
    line = help_line()
    assert line.startswith("Commands: /status, ")
    assert all(usage(spec) in line for spec in COMMANDS)


def test_a_command_that_failed_gets_one_apology_naming_it() -> None:
    assert failure_note("status") == "/status failed; the bot's log has the details."


def test_an_alert_for_a_stopped_adapter_is_one_error_naming_platform_and_alert() -> None:
    assert str(not_running("Telegram", alert())) == (
        "Telegram is not running: alert 'Update for web' not sent"
    )


def test_only_the_catalogues_slow_commands_are_slow() -> None:
    assert {spec.name for spec in COMMANDS if is_slow(spec.name)} == {
        spec.name for spec in COMMANDS if spec.slow}
    assert is_slow("approve") and not is_slow("snooze")
    assert not is_slow("frobnicate"), "an unknown command is answered at once by the core"


def test_partial_deliveries_remember_places_per_alert_until_taken() -> None:
    partial: PartialDeliveries[int] = PartialDeliveries(limit=2)
    assert partial.take(alert()) == set()
    partial.remember(alert(), {1})
    assert partial.take(alert("other")) == set()
    assert partial.take(alert()) == {1}
    assert partial.take(alert()) == set(), "taken once"


@pytest.mark.parametrize("kept", [2])
def test_partial_deliveries_forget_the_oldest_beyond_their_limit(kept: int) -> None:
    partial: PartialDeliveries[int] = PartialDeliveries(limit=kept)
    for index in range(kept + 1):
        partial.remember(alert(f"a{index}"), {index})
    assert partial.take(alert("a0")) == set()
    assert [partial.take(alert(f"a{i}")) for i in range(1, kept + 1)] == [{1}, {2}]
