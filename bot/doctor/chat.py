"""`dockwarden doctor` asks each chat platform: who am I, and may I post where alerts go?

Plain HTTP (httpx) against TELEGRAM_API_BASE_URL and DISCORD_API_BASE_URL, so the core imports
no chat library. Tokens never reach a finding: Telegram's URL carries the token, so only an
exception's type or the API's own description is reported, with the token cut out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bot.chat.text_safety import redact
from bot.config.settings import Settings
from bot.doctor.checks import Finding

TIMEOUT = 10.0  # seconds per platform request

# Discord permission bits (developer documentation, "Permissions")
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
NEEDED = {VIEW_CHANNEL: "View Channel", SEND_MESSAGES: "Send Messages", EMBED_LINKS: "Embed Links"}


class _Refused(Exception):
    """The platform answered with an error: status and its own description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


async def platform_findings(settings: Settings, *, timeout: float = TIMEOUT) -> list[Finding]:
    """Ask every configured platform, all at once; one list of findings, in a stable order."""
    asks = []
    if settings.telegram_bot_token is not None:
        asks.append(telegram_findings(settings, timeout=timeout))
    if settings.discord_bot_token is not None:
        asks.append(discord_findings(settings, timeout=timeout))
    return [f for group in await asyncio.gather(*asks) for f in group]


# -- Telegram ------------------------------------------------------------------------------------


async def telegram_findings(settings: Settings, *, timeout: float = TIMEOUT) -> list[Finding]:
    """getMe, then getChat and the bot's own membership in each alert chat."""
    assert settings.telegram_bot_token is not None
    token = settings.telegram_bot_token.get_secret_value()
    base = f"{settings.telegram_api_base_url}/bot{token}"

    async def call(http: httpx.AsyncClient, method: str, **params: Any) -> Any:
        response = await http.post(f"{base}/{method}", data=params)
        try:
            body = response.json()
        except ValueError:
            raise _Refused(response.status_code, f"HTTP {response.status_code}") from None
        if not body.get("ok"):
            said = str(body.get("description") or response.status_code)
            raise _Refused(response.status_code, redact(said, [token]))
        return body["result"]

    async with httpx.AsyncClient(timeout=timeout) as http:
        try:
            me = await call(http, "getMe")
        except _Refused as exc:
            return [Finding("chat", "telegram", False, _telegram_refused(exc))]
        except httpx.HTTPError as exc:
            where = settings.telegram_api_base_url
            return [Finding("chat", "telegram", False,
                            f"cannot reach {where} ({type(exc).__name__})")]
        name = me.get("username")
        findings = [Finding("chat", "telegram", True,
                            f"Telegram accepts TELEGRAM_BOT_TOKEN: the bot is @{name}")]
        for chat_id in settings.telegram_chat_ids:
            findings.append(await _telegram_chat(call, http, chat_id, int(me["id"])))
    return findings


def _telegram_refused(exc: _Refused) -> str:
    if exc.status in (401, 404):
        return (f"Telegram refused TELEGRAM_BOT_TOKEN ({exc.status} {exc.description}); copy the "
                "token again from @BotFather")
    return f"Telegram answered getMe with {exc.status}: {exc.description}"


async def _telegram_chat(call: Any, http: httpx.AsyncClient, chat_id: int, bot_id: int) -> Finding:
    subject = f"telegram chat {chat_id}"
    try:
        chat = await call(http, "getChat", chat_id=chat_id)
        kind = chat.get("type", "?")
        name = chat.get("title") or chat.get("username") or chat.get("first_name") or ""
        if kind == "private":
            return Finding("chat", subject, True, f"private chat with {name}; the bot may post")
        member = await call(http, "getChatMember", chat_id=chat_id, user_id=bot_id)
    except _Refused as exc:
        hint = ("; add the bot to that chat (for a private chat, send it /start first)"
                if exc.status in (400, 403) else "")
        return Finding("chat", subject, False, f"{exc.description}{hint}")
    except httpx.HTTPError as exc:
        return Finding("chat", subject, False, f"no answer ({type(exc).__name__})")
    status = member.get("status")
    may_post = {
        "creator": True,
        "administrator": kind != "channel" or bool(member.get("can_post_messages")),
        "member": kind != "channel",
        "restricted": bool(member.get("can_send_messages")),
    }.get(str(status), False)
    text = f"{kind} {name!r}; the bot is {status}"
    if not may_post:
        return Finding("chat", subject, False, f"{text}: it may not post there (alerts would fail)")
    return Finding("chat", subject, True, f"{text}; the bot may post")


# -- Discord -------------------------------------------------------------------------------------


async def discord_findings(settings: Settings, *, timeout: float = TIMEOUT) -> list[Finding]:
    """/users/@me, then the alert channel and the bot's permissions in it."""
    assert settings.discord_bot_token is not None
    token = settings.discord_bot_token.get_secret_value()
    api = settings.discord_api_base_url
    headers = {"Authorization": f"Bot {token}"}

    async def get(http: httpx.AsyncClient, path: str) -> Any:
        response = await http.get(f"{api}{path}", headers=headers)
        if response.status_code != 200:
            try:
                message = str(response.json().get("message", ""))
            except ValueError:
                message = ""
            raise _Refused(response.status_code, redact(message, [token]))
        return response.json()

    async with httpx.AsyncClient(timeout=timeout) as http:
        try:
            me = await get(http, "/users/@me")
        except _Refused as exc:
            text = (f"Discord refused DISCORD_BOT_TOKEN ({exc.status}); copy the token again "
                    "from the Developer Portal's Bot page" if exc.status == 401
                    else f"Discord answered /users/@me with {exc.status} {exc.description}")
            return [Finding("chat", "discord", False, text)]
        except httpx.HTTPError as exc:
            return [Finding("chat", "discord", False,
                            f"cannot reach {api} ({type(exc).__name__})")]
        findings = [Finding("chat", "discord", True,
                            f"Discord accepts DISCORD_BOT_TOKEN: the bot is {me.get('username')}")]
        if settings.discord_channel_id is not None:
            findings.append(await _discord_channel(get, http, settings.discord_channel_id,
                                                   int(me["id"])))
    return findings


async def _discord_channel(get: Any, http: httpx.AsyncClient, channel_id: int,
                           bot_id: int) -> Finding:
    subject = f"discord channel {channel_id}"
    try:
        channel = await get(http, f"/channels/{channel_id}")
        guild_id = channel.get("guild_id")
        if guild_id is None:
            return Finding("chat", subject, True, "a direct-message channel; the bot may post")
        guild = await get(http, f"/guilds/{guild_id}")
        member = await get(http, f"/guilds/{guild_id}/members/{bot_id}")
    except _Refused as exc:
        why = {403: "the bot cannot see it (Missing Access): invite it to that server and "
                    "channel", 404: "no such channel (check DISCORD_CHANNEL_ID)"}
        text = why.get(exc.status, f"{exc.status} {exc.description}")
        return Finding("chat", subject, False, text)
    except httpx.HTTPError as exc:
        return Finding("chat", subject, False, f"no answer ({type(exc).__name__})")
    allowed = channel_permissions(guild, member, channel, bot_id)
    missing = [name for bit, name in NEEDED.items() if not allowed & bit]
    where = f"#{channel.get('name', channel_id)}"
    if missing:
        return Finding("chat", subject, False,
                       f"{where}: the bot lacks {', '.join(missing)} there (alerts would fail)")
    return Finding("chat", subject, True, f"{where}: the bot may post alerts with buttons")


def channel_permissions(guild: dict[str, Any], member: dict[str, Any], channel: dict[str, Any],
                        user_id: int) -> int:
    """The member's permissions in the channel: roles, then @everyone, role and member
    overwrites, in the order Discord applies them."""
    if str(guild.get("owner_id")) == str(user_id):
        return ~0
    roles = {str(r["id"]): int(r.get("permissions") or 0) for r in guild.get("roles", [])}
    guild_id = str(guild["id"])
    mine = {str(r) for r in member.get("roles", [])}
    allowed = roles.get(guild_id, 0)
    for role in mine:
        allowed |= roles.get(role, 0)
    if allowed & ADMINISTRATOR:
        return ~0
    overwrites = {str(o["id"]): o for o in channel.get("permission_overwrites", [])}

    def bits(overwrite: dict[str, Any] | None, key: str) -> int:
        return int(overwrite.get(key) or 0) if overwrite else 0

    everyone = overwrites.get(guild_id)
    allowed = (allowed & ~bits(everyone, "deny")) | bits(everyone, "allow")
    deny = allow = 0
    for role in mine:
        deny |= bits(overwrites.get(role), "deny")
        allow |= bits(overwrites.get(role), "allow")
    allowed = (allowed & ~deny) | allow
    own = overwrites.get(str(user_id))
    return (allowed & ~bits(own, "deny")) | bits(own, "allow")
