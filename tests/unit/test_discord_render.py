"""Drawing alerts and replies for Discord, and the bounded retry around every send."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.discord.delivery import ApiRedirect, deliver
from adapters.discord.render import (
    COLOURS,
    AlertButton,
    actions_view,
    alert_embed,
    chunks,
    custom_id,
    pressed_embed,
)
from bot.chat.messages import Action, Alert, AlertKind, Field
from bot.errors import DockWardenError


def alert(kind: AlertKind = AlertKind.UPDATE_AVAILABLE, **extra: object) -> Alert:
    return Alert(kind=kind, title="Update available for web", text="a newer image",
                 fields=(Field("Image", "reg/app:1"), Field("New", "sha256:" + "b" * 64)),
                 update_id="u-1", **extra)  # type: ignore[arg-type]


def http_error(status: int, headers: dict[str, str] | None = None) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="x", headers=headers or {})
    return discord.HTTPException(response, {"message": "nope", "code": 0})  # type: ignore[arg-type]


def test_every_alert_kind_has_its_own_colour_family() -> None:
    assert set(COLOURS) == set(AlertKind)
    assert alert_embed(alert(AlertKind.UPDATE_FAILED)).colour == discord.Colour.red()
    assert alert_embed(alert(AlertKind.UPDATE_SUCCEEDED)).colour == discord.Colour.green()


def test_an_alert_embed_shows_title_text_fields_and_the_update_id() -> None:
    embed = alert_embed(alert())
    assert (embed.title, embed.description) == ("Update available for web", "a newer image")
    assert [(f.name, f.value) for f in embed.fields] == [
        ("Image", "reg/app:1"), ("New", "sha256:" + "b" * 64)]
    assert embed.fields[1].inline is False  # a digest is too wide to sit beside another
    assert embed.footer.text == "update u-1"


def test_oversized_alert_parts_are_cut_to_discords_limits() -> None:
    big = Alert(kind=AlertKind.AUTH_FAILED, title="t" * 300, text="x" * 5000,
                fields=tuple(Field(f"f{i}", "v" * 2000) for i in range(30)))
    embed = alert_embed(big)
    assert len(embed.title or "") == 256 and len(embed.description or "") == 4096
    assert len(embed.fields) == 25
    assert all(len(f.value or "") == 1024 for f in embed.fields)


def test_a_press_adds_who_did_what_and_keeps_the_alert() -> None:
    original = alert_embed(alert())
    embed = pressed_embed(original, "ana", "Approve", "web updated")
    assert [f.name for f in embed.fields][-1] == "ana pressed Approve"
    assert embed.fields[-1].value == "web updated"
    assert len(original.fields) == 2  # the original embed object is not changed


def test_every_embed_text_is_markdown_escaped() -> None:
    hostile = "[Click here](https://evil.example/login) @everyone"
    embed = alert_embed(Alert(
        kind=AlertKind.UPDATE_FAILED, title="Update failed: my_app_db", text=f"**{hostile}**",
        fields=(Field("Container", "my_app_db"), Field("Detail", hostile)), update_id="u-1",
    ))
    assert embed.title == "Update failed: my\\_app\\_db"
    assert embed.description is not None and not embed.description.startswith("**")
    assert "\\[Click here]" in embed.description
    assert [f.value for f in embed.fields] == ["my\\_app\\_db", "\\[Click here]"
                                               "(https://evil.example/login) @everyone"]
    pressed = pressed_embed(embed, "_ana_", "Approve", "my_app_db: updated")
    assert pressed.fields[-1].name == "\\_ana\\_ pressed Approve"
    assert pressed.fields[-1].value == "my\\_app\\_db: updated"


def test_buttons_carry_verb_and_target_in_their_custom_id() -> None:
    view = actions_view((Action("approve", "u-1"), Action("snooze", "u-1", "Snooze 1d")))
    assert view is not None and view.timeout is None
    assert [(b.item.label, b.custom_id) for b in view.children] == [  # type: ignore[attr-defined]
        ("Approve", "dockwarden:approve:u-1"), ("Snooze 1d", "dockwarden:snooze:u-1")]


def test_no_actions_means_no_view_and_an_overlong_target_is_not_drawn() -> None:
    assert actions_view(()) is None
    assert actions_view((Action("approve", "x" * 100),)) is None


async def test_a_custom_id_from_an_old_message_rebuilds_the_button() -> None:
    cid = custom_id("ignore", "u-9")
    match = AlertButton.__discord_ui_compiled_template__.fullmatch(cid)
    assert match is not None
    button: discord.ui.Button[discord.ui.View] = discord.ui.Button(label="Ignore", custom_id=cid)
    rebuilt = await AlertButton.from_custom_id(None, button, match)  # type: ignore[arg-type]
    assert (rebuilt.verb, rebuilt.target, rebuilt.custom_id) == ("ignore", "u-9", cid)


def test_long_text_splits_at_line_ends_within_the_limit() -> None:
    text = "\n".join(f"line {i:04d} " + "x" * 40 for i in range(200))
    parts = chunks(text)
    assert len(parts) > 1 and all(len(p) <= 2000 for p in parts)
    assert all(p.startswith("line ") for p in parts)
    assert "\n".join(parts) == text


@given(st.text(alphabet=st.characters(blacklist_characters="—\r\x0b\x0c\x1c\x1d\x1e\x85"
                                      "\u2028\u2029"), max_size=5000),
       st.integers(min_value=1, max_value=300))
def test_chunks_never_exceed_the_limit_and_lose_no_text(text: str, limit: int) -> None:
    parts = chunks(text, limit)
    assert parts and all(0 < len(p) <= limit for p in parts)
    assert "".join(parts).replace("\n", "").replace("—", "") == text.replace("\n", "")


async def test_deliver_retries_rate_limits_and_connection_errors_then_succeeds() -> None:
    failures: list[BaseException] = [http_error(429, {"Retry-After": "0"}),
                                     aiohttp.ClientConnectionError("reset"), http_error(502)]
    calls = 0

    async def send() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "sent"

    assert await deliver(send, what="alert", base_delay=0) == "sent"
    assert calls == 4


async def test_deliver_gives_up_after_its_attempts_and_hides_secrets() -> None:
    async def send() -> None:
        raise aiohttp.ClientConnectionError("cannot reach /webhooks/1/s3cret")

    with pytest.raises(DockWardenError, match="after 3 attempt") as caught:
        await deliver(send, what="alert", attempts=3, base_delay=0, secrets=["s3cret"])
    assert "s3cret" not in str(caught.value)


async def test_deliver_does_not_retry_a_refusal() -> None:
    calls = 0

    async def send() -> None:
        nonlocal calls
        calls += 1
        raise http_error(403)

    with pytest.raises(DockWardenError, match="refused alert: HTTP 403"):
        await deliver(send, what="alert", base_delay=0)
    assert calls == 1


async def test_deliver_gives_up_at_once_on_a_long_rate_limit() -> None:
    async def send() -> None:
        raise http_error(429, {"Retry-After": "3600"})

    with pytest.raises(DockWardenError, match="could not deliver"):
        await asyncio.wait_for(deliver(send, what="alert"), 5)


def test_api_redirect_restores_discords_urls_when_the_last_user_exits() -> None:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    bot = ApiRedirect("http://127.0.0.1:1/api/v10/", "ws://127.0.0.1:1/gateway")
    hook = ApiRedirect("http://127.0.0.1:1/api/v10", None)
    bot.enter()
    hook.enter()
    assert discord.http.Route.BASE == "http://127.0.0.1:1/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:1/gateway"
    bot.exit()
    assert discord.http.Route.BASE == "http://127.0.0.1:1/api/v10"
    hook.exit()
    hook.exit()  # a second exit changes nothing
    assert discord.http.Route.BASE == base
    assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == gateway
