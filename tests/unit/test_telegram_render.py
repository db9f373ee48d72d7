"""How the Telegram adapter draws alerts and replies: escaping, pages, buttons, press lines."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import User
from telegram.error import RetryAfter

from adapters.telegram.delivery import retry_seconds
from adapters.telegram.render import (
    MESSAGE_LIMIT,
    callback_data,
    display_name,
    edited_text,
    escape,
    keyboard,
    menu_description,
    paginate,
    parse_callback_data,
    press_line,
    render_alert,
    render_reply,
    size,
)
from bot.chat.catalogue import COMMANDS, command
from bot.chat.messages import Action, Alert, AlertKind, Field, Reply
from tests.standins.telegram import ApiError, parse_html


def test_image_names_and_markup_characters_are_escaped() -> None:
    assert escape("ghcr.io/acme/my_app:1.2_rc") == "ghcr.io/acme/my_app:1.2_rc"
    assert escape("a <b> & c") == "a &lt;b&gt; &amp; c"


def test_alert_has_bold_title_text_and_bold_named_fields() -> None:
    alert = Alert(
        AlertKind.UNSUPPORTED_CHALLENGE,
        title="127.0.0.1:5000 asks for Negotiate",
        text="Only Basic & Bearer are supported.\nConfigure a token <or> drop it.",
        fields=(Field("scheme", "negotiate"), Field("image", "127.0.0.1:5000/team_a/web.app")),
    )

    [page] = render_alert(alert)

    assert page == (
        "<b>127.0.0.1:5000 asks for Negotiate</b>\n"
        "Only Basic &amp; Bearer are supported.\n"
        "Configure a token &lt;or&gt; drop it.\n"
        "<b>scheme:</b> negotiate\n"
        "<b>image:</b> 127.0.0.1:5000/team_a/web.app"
    )
    text, entities = parse_html(page)
    assert text.splitlines()[2] == "Configure a token <or> drop it."
    assert [e["type"] for e in entities] == ["bold", "bold", "bold"]


def test_long_reply_is_split_at_line_boundaries_in_order() -> None:
    lines = [f"line {i:03d} of the history" for i in range(1000)]

    pages = render_reply(Reply("\n".join(lines)))

    assert len(pages) > 1
    assert all(len(page) <= MESSAGE_LIMIT for page in pages)
    assert "\n".join(pages).split("\n") == lines


def test_a_line_longer_than_a_page_is_cut_without_breaking_an_escape() -> None:
    raw = "&" * 30

    pages = render_reply(Reply(raw), limit=12)

    assert all(size(page) <= 12 for page in pages)
    assert "".join(parse_html(page)[0] for page in pages) == raw


def test_empty_reply_still_says_something() -> None:
    assert render_reply(Reply("")) == ["(no answer)"]
    assert render_reply(Reply("\n\n")) == ["(no answer)"]


@given(st.text(alphabet=st.sampled_from("ab_.:<>&\"' \n\u00e9\U0001f433"), max_size=400))
def test_any_reply_becomes_valid_pages_that_keep_every_character(text: str) -> None:
    limit = 40
    pages = render_reply(Reply(text), limit=limit)

    assert all(size(page) <= limit for page in pages)
    plain = "".join(parse_html(page)[0] for page in pages)
    if text.strip():
        # Telegram refuses a message of only whitespace, so such a page is dropped; every
        # other character arrives, in order.
        assert "".join(plain.split()) == "".join(text.split())
        assert len(plain.replace("\n", "")) <= len(text.replace("\n", ""))


def test_buttons_carry_verb_and_target_in_callback_data() -> None:
    markup = keyboard([Action("approve", "u7"), Action("snooze", "web_1", label="Snooze 1d")])

    assert markup is not None
    [row] = markup.inline_keyboard
    assert [(b.text, b.callback_data) for b in row] == [
        ("Approve", "approve:u7"), ("Snooze 1d", "snooze:web_1"),
    ]
    assert keyboard([]) is None


def test_callback_data_over_64_bytes_is_not_drawn() -> None:
    too_long = Action("ignore", "x" * 60)

    assert callback_data(too_long) is None
    assert keyboard([too_long]) is None
    assert callback_data(Action("ignore", "x" * 57)) == "ignore:" + "x" * 57


def test_callback_data_parses_back_to_verb_and_target() -> None:
    assert parse_callback_data("approve:u7") == ("approve", "u7")
    assert parse_callback_data("snooze:web:1") == ("snooze", "web:1")
    assert parse_callback_data("approve:") is None
    assert parse_callback_data("garbage") is None
    assert parse_callback_data(None) is None


def test_press_line_is_escaped_and_appended_within_one_message() -> None:
    line = press_line("@ops_anna", "Approve", "web_1 updated <ok>")
    assert line == "@ops_anna pressed Approve: web_1 updated &lt;ok&gt;"

    assert edited_text("<b>Update</b>", line) == f"<b>Update</b>\n\n{line}"
    assert edited_text("x" * MESSAGE_LIMIT, line) == line


def test_people_are_named_by_username_else_full_name() -> None:
    assert display_name(User(1, "Anna", False, last_name="Ops", username="ops_anna")) == (
        "@ops_anna"
    )
    assert display_name(User(2, "Bob", False, last_name="Smith")) == "Bob Smith"


def test_retry_after_is_read_in_seconds_with_or_without_timedelta_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    assert retry_seconds(RetryAfter(3)) == 3.0
    assert retry_seconds(RetryAfter(dt.timedelta(seconds=1.5))) == 1.5
    monkeypatch.setenv("PTB_TIMEDELTA", "false")
    with pytest.warns(DeprecationWarning):
        exc = RetryAfter(2)  # PTB itself warns here; reading it again must not
    assert retry_seconds(exc) == 2.0


def test_pages_are_measured_as_telegram_counts_emoji() -> None:
    pages = render_reply(Reply("\U0001f433" * 3000))

    assert [size(page) for page in pages] == [4096, 6000 - 4096]


def test_lines_are_packed_whole_into_pages_and_blank_pages_dropped() -> None:
    assert paginate(["aaaa", "bbbb", "cc"], limit=9) == ["aaaa\nbbbb", "cc"]
    assert paginate(["<b>t</b>", "x"], limit=8) == ["<b>t</b>", "x"]
    assert paginate(["", " "], limit=9) == []


@pytest.mark.parametrize("raw", ["AT&T", "a < b", "<i>open", "<blink>x</blink>", "<b>x</i>"])
def test_the_standin_refuses_markup_telegram_refuses(raw: str) -> None:
    with pytest.raises(ApiError, match="can't parse entities"):
        parse_html(raw)


def test_the_menu_shows_each_commands_summary_and_how_its_arguments_are_typed() -> None:
    assert menu_description(command("status")) == command("status").summary
    assert menu_description(command("history")) == (
        f"{command('history').summary} /history [name]"
    )
    assert all(3 <= len(menu_description(spec)) <= 256 for spec in COMMANDS)
