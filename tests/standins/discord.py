"""A local Discord: the REST endpoints and the gateway a bot uses, in aiohttp, recording all.

The real discord.py is pointed here (DISCORD_API_BASE_URL = `api_url`, DISCORD_GATEWAY_URL =
`gateway_url`). Tests drive it like Discord would: `slash()`, `autocomplete()` and `press()` push
INTERACTION_CREATE over the gateway; what the bot answers is recorded per interaction
(`Interaction.callback`, `.followups`, `.edits`), posted messages per channel (`messages`), and
`rate_limit(n)` makes the next n message posts answer 429; `drop_gateway()` closes the socket
(the client resumes, or identifies anew when `refuse_resume` is set).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

APP_ID = 1100000000000000001
BOT_ID = APP_ID
GUILD_ID = 1200000000000000001
OTHER_GUILD_ID = 1200000000000000002
CHANNEL_ID = 1300000000000000001
WEBHOOK_ID = 1400000000000000001
WEBHOOK_TOKEN = "wh-" + "x" * 66
BOT_TOKEN = "standin.bot.token-not-a-real-one"
ADMIN_ROLE_ID = 1500000000000000001
TIMESTAMP = "2026-01-01T00:00:00.000000+00:00"
EPHEMERAL = 64

_ids = itertools.count(1600000000000000001)


def snowflake() -> str:
    """A fresh id."""
    return str(next(_ids))


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly application/json: with a charset discord.py reads the body as text.
    return web.Response(
        body=json.dumps(data).encode(), status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _user(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "global_name": name, "discriminator": "0",
            "avatar": None, "bot": bot, "public_flags": 0, "flags": 0}


@dataclass
class Request:
    """One HTTP request the bot made."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Interaction:
    """An interaction sent to the bot, and what the bot answered to it."""

    id: str
    token: str
    type: int
    payload: dict[str, Any]
    callback: dict[str, Any] | None = None
    followups: list[dict[str, Any]] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    message_id: str | None = None  # the message a component press came from
    response_message_id: str | None = None  # the message the initial response made

    @property
    def answered(self) -> bool:
        """Whether the bot sent its initial response."""
        return self.callback is not None


class DiscordStandin:
    """REST + gateway in one aiohttp server on a free loopback port."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id -> commands
        self.messages: dict[str, dict[str, Any]] = {}  # id -> message (channels and webhooks)
        self.interactions: dict[str, Interaction] = {}  # token -> interaction
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.refuse_resume = False
        # GET /guilds/{id}: @everyone's permissions (View Channel, Send Messages, Embed Links);
        # the alert channel's overwrites, e.g. one denying Send Messages
        self.everyone_permissions = (1 << 10) | (1 << 11) | (1 << 14)
        self.channel_overwrites: list[dict[str, Any]] = []
        self.api_url = ""
        self.gateway_url = ""
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._seq = 0
        self._changed = asyncio.Condition()
        self._limited = 0
        self._limit_after = 0.05
        self._limit_via = False
        self._nonces: dict[str, str] = {}
        self._posts: list[str] = []  # ids of messages made by POST /channels/{id}/messages

    # -- lifecycle -------------------------------------------------------------------------

    def reserve(self) -> None:
        """Pick a free port without listening: the URLs are known, yet nothing answers there
        until `start()` (a Discord that cannot be reached at first)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self._set_urls(sock.getsockname()[1])

    def _set_urls(self, port: int) -> None:
        self._port = port
        self.api_url = f"http://127.0.0.1:{port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port (the reserved one, after `reserve()`)."""
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self._set_urls(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Close the sockets and the server."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def env(self, **extra: str) -> dict[str, str]:
        """Settings (by env name) that point a bot at this stand-in."""
        return {
            "DISCORD_BOT_TOKEN": BOT_TOKEN,
            "DISCORD_CHANNEL_ID": str(CHANNEL_ID),
            "DISCORD_API_BASE_URL": self.api_url,
            "DISCORD_GATEWAY_URL": self.gateway_url,
            **extra,
        }

    @property
    def webhook_url(self) -> str:
        """A webhook URL as Discord hands them out (its requests go to api_url)."""
        return f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"

    # -- waiting ---------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait until `predicate()` is truthy (the timeout only guards against a hang)."""
        async def wait() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(wait(), timeout)

    # -- what tests look at ----------------------------------------------------------------

    def channel_messages(self, channel_id: int = CHANNEL_ID) -> list[dict[str, Any]]:
        """Messages the bot posted to a channel (not answers to interactions), oldest first."""
        return [self.messages[i] for i in self._posts
                if self.messages[i]["channel_id"] == str(channel_id)]

    def webhook_messages(self) -> list[dict[str, Any]]:
        """Messages posted through the configured webhook."""
        return [m for m in self.messages.values() if m.get("webhook_id") == str(WEBHOOK_ID)]

    def calls(self, method: str, prefix: str) -> list[Request]:
        """Recorded requests with this method whose path starts with `prefix`."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def rate_limit(self, count: int, *, retry_after: float = 0.05, via: bool = False) -> None:
        """Answer the next `count` message posts with 429 (with a Via header only if `via`)."""
        self._limited = count
        self._limit_after = retry_after
        self._limit_via = via

    # -- the gateway -----------------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, event: str, data: Any) -> None:
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_str(json.dumps(
                {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                frame = json.loads(msg.data)
                if frame["op"] == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif frame["op"] == 2:
                    self.identifies.append(frame["d"])
                    await self._send(ws, "READY", self._ready())
                    await self._send(ws, "GUILD_CREATE", self._guild())
                    await self._notify()
                elif frame["op"] == 6:
                    self.resumes.append(frame["d"])
                    if self.refuse_resume:  # session gone: the client must identify anew
                        await ws.send_str(json.dumps({"op": 9, "d": False}))
                    else:
                        await self._send(ws, "RESUMED", {})
                    await self._notify()
        finally:
            self._sockets.discard(ws)
        return ws

    @property
    def connected(self) -> int:
        """How many gateway sockets are open."""
        return len(self._sockets)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close every gateway socket with `code` (4000: the client resumes)."""
        for ws in list(self._sockets):
            await ws.close(code=code)

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10, "user": _user(BOT_ID, "dockwarden", bot=True), "session_id": snowflake(),
            "resume_gateway_url": self.gateway_url, "guilds": [{"id": str(GUILD_ID),
                                                                "unavailable": True}],
            "application": {"id": str(APP_ID), "flags": 0},
        }

    def _channel(self) -> dict[str, Any]:
        return {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "alerts",
                "position": 0, "permission_overwrites": list(self.channel_overwrites),
                "nsfw": False, "parent_id": None}

    def _guild(self) -> dict[str, Any]:
        def role(role_id: int, name: str, position: int) -> dict[str, Any]:
            return {"id": str(role_id), "name": name, "permissions": "0", "position": position,
                    "color": 0, "hoist": False, "managed": False, "mentionable": False,
                    "flags": 0}

        return {
            "id": str(GUILD_ID), "name": "home", "unavailable": False, "owner_id": "1",
            "roles": [role(GUILD_ID, "@everyone", 0), role(ADMIN_ROLE_ID, "ops", 1)],
            "channels": [self._channel()], "members": [], "member_count": 2, "emojis": [],
            "stickers": [], "features": [], "threads": [], "stage_instances": [],
            "guild_scheduled_events": [], "voice_states": [], "presences": [], "large": False,
            "joined_at": TIMESTAMP, "premium_tier": 0, "preferred_locale": "en-US",
        }

    # -- interactions ----------------------------------------------------------------------

    async def _inject(self, type_: int, data: dict[str, Any], *, user_id: int,
                      role_ids: tuple[int, ...], guild_id: int | None,
                      message: dict[str, Any] | None = None) -> Interaction:
        await self.wait_for(lambda: self._sockets and (self.identifies or self.resumes))
        interaction_id, token = snowflake(), "itoken-" + snowflake()
        payload: dict[str, Any] = {
            "id": interaction_id, "application_id": str(APP_ID), "type": type_, "token": token,
            "version": 1, "attachment_size_limit": 8388608, "data": data, "locale": "en-US",
            "app_permissions": "0", "entitlements": [], "authorizing_integration_owners": {},
        }
        user = _user(user_id, f"user{user_id}")
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-US"
            payload["channel_id"] = str(CHANNEL_ID)
            payload["channel"] = {**self._channel(), "guild_id": str(guild_id)}
            payload["member"] = {
                "user": user, "roles": [str(r) for r in role_ids], "joined_at": TIMESTAMP,
                "deaf": False, "mute": False, "flags": 0, "nick": None, "permissions": "0",
            }
        else:
            payload["channel_id"] = "1700000000000000001"
            payload["channel"] = {"id": "1700000000000000001", "type": 1, "recipients": [user]}
            payload["user"] = user
        record = Interaction(interaction_id, token, type_, payload)
        if message is not None:
            payload["message"] = message
            record.message_id = message["id"]
        self.interactions[token] = record
        for ws in list(self._sockets):
            await self._send(ws, "INTERACTION_CREATE", payload)
        return record

    def _command_data(self, name: str, options: dict[str, str | int], guild_id: int | None,
                      focused: str | None = None) -> dict[str, Any]:
        scope = str(guild_id) if guild_id is not None and str(guild_id) in self.commands else None
        registered = self.commands.get(scope or "global", [])
        command = next((c for c in registered if c["name"] == name), None)
        data: dict[str, Any] = {
            "id": command["id"] if command else snowflake(), "name": name, "type": 1,
            "options": [{"name": k, "type": 4 if isinstance(v, int) else 3, "value": v,
                         **({"focused": True} if k == focused else {})}
                        for k, v in options.items()],
        }
        if scope is not None:
            data["guild_id"] = scope
        return data

    async def slash(self, name: str, options: dict[str, str | int] | None = None, *,
                    user_id: int, role_ids: tuple[int, ...] = (),
                    guild_id: int | None = GUILD_ID) -> Interaction:
        """A user runs `/name` with options (str, or int for integer options)."""
        data = self._command_data(name, options or {}, guild_id)
        return await self._inject(2, data, user_id=user_id, role_ids=role_ids, guild_id=guild_id)

    async def autocomplete(self, name: str, option: str, value: str, *, user_id: int,
                           guild_id: int | None = GUILD_ID) -> Interaction:
        """A user types `value` into the `option` of `/name`."""
        data = self._command_data(name, {option: value}, guild_id, focused=option)
        return await self._inject(4, data, user_id=user_id, role_ids=(), guild_id=guild_id)

    async def press(self, message_id: str, custom_id: str, *, user_id: int,
                    role_ids: tuple[int, ...] = (), guild_id: int | None = GUILD_ID
                    ) -> Interaction:
        """A user presses the button `custom_id` under message `message_id`."""
        message = self.messages[message_id]
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._inject(3, data, user_id=user_id, role_ids=role_ids,
                                  guild_id=guild_id, message=message)

    # -- REST ------------------------------------------------------------------------------

    def _message(self, body: dict[str, Any], channel_id: str, **extra: Any) -> dict[str, Any]:
        message_id = snowflake()
        message = {
            "id": message_id, "channel_id": channel_id, "author": _user(BOT_ID, "dockwarden",
                                                                        bot=True),
            "content": body.get("content") or "", "timestamp": TIMESTAMP,
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": body.get("embeds") or [],
            "components": body.get("components") or [], "pinned": False, "type": 0,
            "flags": body.get("flags") or 0, **extra,
        }
        if channel_id == str(CHANNEL_ID):
            message["guild_id"] = str(GUILD_ID)
        self.messages[message_id] = message
        return message

    def _edit(self, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
        message = self.messages[message_id]
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = body[key] if body[key] is not None else (
                    "" if key == "content" else [])
        message["edited_timestamp"] = TIMESTAMP
        return message

    def _limit(self) -> web.Response | None:
        if self._limited <= 0:
            return None
        self._limited -= 1
        headers = {"Retry-After": str(self._limit_after)}
        if self._limit_via:
            headers["Via"] = "1.1 google"
        return _json({"message": "You are being rate limited.", "retry_after": self._limit_after,
                      "global": False}, status=429, headers=headers)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw and request.content_type == "application/json" else raw
        path = "/" + request.match_info["tail"]
        self.requests.append(Request(request.method, path, dict(request.query), body,
                                     dict(request.headers)))
        try:
            return self._route(request.method, path.strip("/").split("/"), request, body)
        finally:
            await self._notify()

    def _route(self, method: str, parts: list[str], request: web.Request, body: Any
               ) -> web.Response:
        bot_call = parts[0] not in ("interactions", "webhooks")
        if bot_call and request.headers.get("Authorization") != f"Bot {BOT_TOKEN}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        match method, parts:
            case "GET", ["users", "@me"]:
                return _json(_user(BOT_ID, "dockwarden", bot=True))
            case "GET", ["oauth2", "applications", "@me"]:
                return _json({"id": str(APP_ID), "name": "dockwarden", "description": "",
                              "icon": None, "bot_public": False,
                              "bot_require_code_grant": False, "verify_key": "0" * 64,
                              "owner": _user(1, "owner"), "flags": 0, "summary": ""})
            case "PUT", ["applications", _, "commands"]:
                return _json(self._sync("global", body))
            case "PUT", ["applications", _, "guilds", guild, "commands"]:
                return _json(self._sync(guild, body))
            case "GET", ["channels", channel_id]:
                if channel_id != str(CHANNEL_ID):
                    return _json({"message": "Unknown Channel", "code": 10003}, status=404)
                return _json(self._channel())
            case "GET", ["guilds", guild_id]:
                return _json({**self._guild(), "id": guild_id, "roles": [
                    {**role, "permissions": str(self.everyone_permissions)}
                    if role["id"] == str(GUILD_ID) else role
                    for role in self._guild()["roles"]]})
            case "GET", ["guilds", _, "members", user_id]:
                return _json({"user": _user(int(user_id), "dockwarden", bot=True), "roles": [],
                              "joined_at": TIMESTAMP, "deaf": False, "mute": False, "flags": 0})
            case "POST", ["channels", channel_id, "messages"]:
                return self._limit() or self._post(body, channel_id)
            case "PATCH", ["channels", _, "messages", message_id]:
                return _json(self._edit(message_id, body))
            case "POST", ["interactions", _, token, "callback"]:
                return self._callback(token, body)
            case "POST", ["webhooks", webhook_id, token]:
                return self._webhook_post(webhook_id, token, body, request)
            case "PATCH", ["webhooks", _, token, "messages", which]:
                interaction = self.interactions[token]
                interaction.edits.append(body)
                target = interaction.message_id if which == "@original" else which
                if target is None:
                    target = interaction.response_message_id
                return _json(self._edit(str(target), body))
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _sync(self, scope: str, body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        echoed = [{**command, "id": snowflake(), "application_id": str(APP_ID), "version": "1",
                   "default_member_permissions": None, "type": command.get("type", 1)}
                  for command in body]
        self.commands[scope] = echoed
        return echoed

    def _post(self, body: dict[str, Any], channel_id: str) -> web.Response:
        nonce = body.get("nonce")
        if body.get("enforce_nonce") and nonce is not None and str(nonce) in self._nonces:
            return _json(self.messages[self._nonces[str(nonce)]])
        message = self._message(body, channel_id)
        self._posts.append(message["id"])
        if nonce is not None:
            self._nonces[str(nonce)] = message["id"]
        return _json(message)

    def _callback(self, token: str, body: dict[str, Any]) -> web.Response:
        interaction = self.interactions[token]
        interaction.callback = body
        kind, data = body["type"], body.get("data") or {}
        message: dict[str, Any] | None = None
        if kind in (4, 5):  # a message, or "thinking..." to be replaced by a follow-up
            message = self._message(data, interaction.payload["channel_id"])
            if kind == 5:
                message["flags"] = (data.get("flags") or 0) | 128
        elif kind == 7 and interaction.message_id:  # update the pressed message
            message = self._edit(interaction.message_id, data)
        elif kind == 6 and interaction.message_id:
            message = self.messages[interaction.message_id]
        answer: dict[str, Any] = {"interaction": {"id": interaction.id,
                                                  "type": interaction.type}}
        if message is not None:
            interaction.response_message_id = message["id"]
            answer["interaction"]["response_message_id"] = message["id"]
            answer["interaction"]["response_message_loading"] = kind == 5
            answer["interaction"]["response_message_ephemeral"] = bool(
                (data.get("flags") or 0) & EPHEMERAL)
            answer["resource"] = {"type": kind, "message": message}
        else:
            answer["resource"] = {"type": kind}
        return _json(answer)

    def _webhook_post(self, webhook_id: str, token: str, body: dict[str, Any],
                      request: web.Request) -> web.Response:
        if token in self.interactions:
            interaction = self.interactions[token]
            interaction.followups.append(body)
            message = self._message(body, interaction.payload["channel_id"],
                                    webhook_id=webhook_id)
            return _json(message)
        if webhook_id != str(WEBHOOK_ID) or token != WEBHOOK_TOKEN:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        limited = self._limit()
        if limited is not None:
            return limited
        message = self._message(body, "1800000000000000001", webhook_id=webhook_id)
        if request.query.get("wait") in ("1", "true", "True"):
            return _json(message)
        return web.Response(status=204)
