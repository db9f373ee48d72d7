"""A local Telegram Bot API server: enough of the API for python-telegram-bot to run a bot.

Serves `/bot{TOKEN}/{method}` on a free loopback port, records every call, keeps the messages the
bot sent (parsing their HTML into text + entities the way Telegram does, and refusing malformed
HTML), and lets tests inject user messages and button presses or make the next calls fail.

With `hold_polls`, it keeps holding a long poll the client gave up on (as a server does that has
not noticed the client left) and makes the next getUpdates wait until that one ends: a client
that stops mid-poll then waits for its final, acknowledging getUpdates.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

BOT_USER = {
    "id": 7000001, "is_bot": True, "first_name": "DockWarden", "username": "dockwarden_test_bot",
}

_JSON_PARAMS = {
    "reply_markup", "commands", "allowed_updates", "entities", "reply_parameters",
    "link_preview_options", "scope",
}
_INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time", "user_id"}
_BOOL_PARAMS = {"show_alert", "drop_pending_updates", "disable_notification"}
_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
         "s": "strikethrough", "code": "code", "pre": "pre"}
_BARE_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")
_STRAY_LT = re.compile(r"<(?!/?[a-zA-Z])")


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _HtmlToEntities(HTMLParser):
    """Telegram's HTML parse mode: the supported tags become entities over the plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[dict[str, Any]] = []
        self._open: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            raise ApiError(400, f"Bad Request: can't parse entities: unsupported start tag {tag!r}")
        self._open.append((tag, _utf16_len(self.text)))

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            raise ApiError(400, f"Bad Request: can't parse entities: unexpected end tag {tag!r}")
        _, start = self._open.pop()
        length = _utf16_len(self.text) - start
        if length:
            self.entities.append({"type": _TAGS[tag], "offset": start, "length": length})

    def handle_data(self, data: str) -> None:
        self.text += data


def parse_html(raw: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of an HTML-mode message; ApiError(400) where Telegram refuses."""
    if _BARE_AMP.search(raw):
        raise ApiError(400, "Bad Request: can't parse entities: unescaped '&'")
    if _STRAY_LT.search(raw):
        raise ApiError(400, "Bad Request: can't parse entities: unescaped '<'")
    parser = _HtmlToEntities()
    parser.feed(raw)
    parser.close()
    if parser._open:
        raise ApiError(400, "Bad Request: can't parse entities: unclosed tag")
    parser.entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return parser.text, parser.entities


@dataclass
class Call:
    """One request the bot made."""

    method: str
    params: dict[str, Any]


@dataclass
class _Failure:
    remaining: int
    status: int
    description: str
    parameters: dict[str, Any] | None
    chat_id: int | None


@dataclass
class TelegramStandin:
    """The server; start with `await standin.start()`, stop with `await standin.close()`."""

    token: str = "123456:TEST-token-not-a-secret"
    calls: list[Call] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    callback_answers: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    # getChat / getChatMember: chats the bot is not in, and its membership where not "member"
    unknown_chats: set[int] = field(default_factory=set)
    bot_membership: dict[int, dict[str, Any]] = field(default_factory=dict)
    hold_polls: bool = False

    def __post_init__(self) -> None:
        self._poll_lock = asyncio.Lock()
        self.polling = 0  # long polls being held now
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._callback_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._closing = asyncio.Event()
        self._failures: dict[str, list[_Failure]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The server root, what TELEGRAM_API_BASE_URL is set to."""
        return f"http://127.0.0.1:{self.port}"

    def reserve(self) -> None:
        """Pick a free port without listening: `url` is known, yet nothing answers there until
        `start()` (a Bot API that cannot be reached at first)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]

    async def start(self) -> None:
        """Listen on a free loopback port (the reserved one, after `reserve()`)."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        """Release pending long polls and stop listening."""
        self._closing.set()
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- what tests do -------------------------------------------------------------------

    def push_message(self, chat_id: int, user_id: int, text: str, username: str | None = None
                     ) -> dict[str, Any]:
        """A user writes `text` in `chat_id`; a leading /word becomes a bot_command entity."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self._user(user_id, username),
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split(" ", 1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        self._push({"message": message})
        return message

    def press_button(self, chat_id: int, user_id: int, message_id: int, data: str,
                     username: str | None = None) -> str:
        """A user presses an inline button under the bot's message; returns the query id."""
        message = self.messages[(chat_id, message_id)]
        query_id = str(next(self._callback_ids))
        self._push({"callback_query": {
            "id": query_id,
            "from": self._user(user_id, username),
            "chat_instance": f"ci{chat_id}",
            "data": data,
            "message": message,
        }})
        return query_id

    def fail_next(self, method: str, count: int = 1, *, status: int = 429,
                  retry_after: int | None = 1, description: str | None = None,
                  chat_id: int | None = None) -> None:
        """Answer the next `count` calls of `method` (to `chat_id` only, when given) with an
        error (default: a 429 rate limit)."""
        parameters = {"retry_after": retry_after} if status == 429 and retry_after else None
        text = description or (f"Too Many Requests: retry after {retry_after}" if status == 429
                               else "Bad Gateway")
        failure = _Failure(count, status, text, parameters, chat_id)
        self._failures.setdefault(method, []).append(failure)

    def clear_failures(self) -> None:
        """Forget the failures still programmed."""
        self._failures.clear()

    def sent_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in one chat, oldest first, as they stand now (after edits)."""
        return [m for (chat, _), m in sorted(self.messages.items()) if chat == chat_id]

    def calls_of(self, method: str) -> list[Call]:
        """Every call of one Bot API method, in order."""
        return [c for c in self.calls if c.method == method]

    # ---- the API ---------------------------------------------------------------------------

    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        self._new_update.set()

    @staticmethod
    def _chat(chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            return {"id": chat_id, "type": "group", "title": f"chat {chat_id}"}
        return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}

    @staticmethod
    def _user(user_id: int, username: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        if username:
            user["username"] = username
        return user

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params))
        if request.match_info["token"] != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        try:
            self._maybe_fail(method, params)
            handler: Callable[[dict[str, Any]], Any] | None = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as exc:
            return self._error(exc)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(exc: ApiError) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": exc.status,
                                "description": exc.description}
        if exc.parameters:
            body["parameters"] = exc.parameters
        return web.json_response(body, status=exc.status)

    def _maybe_fail(self, method: str, params: dict[str, Any]) -> None:
        queue = self._failures.get(method, [])
        for failure in queue:
            if failure.chat_id is None or failure.chat_id == params.get("chat_id"):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    queue.remove(failure)
                raise ApiError(failure.status, failure.description, failure.parameters)

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            loaded = await request.json()
            return dict(loaded) if isinstance(loaded, dict) else {}
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            text = value if isinstance(value, str) else str(value)
            if key in _JSON_PARAMS:
                params[key] = json.loads(text)
            elif key in _INT_PARAMS:
                params[key] = int(text) if text.lstrip("-").isdigit() else text
            elif key in _BOOL_PARAMS:
                params[key] = text == "true"
            else:
                params[key] = text
        return params

    def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(BOT_USER, can_join_groups=True, can_read_all_group_messages=False,
                    supports_inline_queries=False)

    def _api_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if chat_id in self.unknown_chats:
            raise ApiError(400, "Bad Request: chat not found")
        return self._chat(chat_id)

    def _api_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        if chat_id in self.unknown_chats:
            raise ApiError(400, "Bad Request: chat not found")
        member = self.bot_membership.get(chat_id, {"status": "member"})
        user = BOT_USER if user_id == BOT_USER["id"] else self._user(user_id, None)
        return {**member, "user": user}

    def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return True

    def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands = list(params.get("commands", []))
        return True

    def _api_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands

    def _api_close(self, params: dict[str, Any]) -> bool:
        return True

    def _api_logOut(self, params: dict[str, Any]) -> bool:
        return True

    async def _api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.hold_polls:
            return await self._poll(params)
        async with self._poll_lock:  # aiohttp lets the handler run on when the client hangs up
            return await self._poll(params)

    async def _poll(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.polling += 1
        try:
            return await self._wait_for_updates(params)
        finally:
            self.polling -= 1

    async def _wait_for_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._updates and not self._closing.is_set():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), remaining)
            except TimeoutError:
                break
        limit = int(params.get("limit") or 100)
        return self._updates[:limit]

    def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message = self._render(params)
        message.update({"message_id": next(self._message_ids), "date": int(time.time()),
                        "chat": self._chat(chat_id), "from": BOT_USER})
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        message = self.messages[key]
        rendered = self._render(params)
        if rendered["html"] == message["html"] and rendered.get("reply_markup") == message.get(
                "reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        for name in ("text", "entities", "html", "reply_markup"):
            message.pop(name, None)
        message.update(rendered, edit_date=int(time.time()))
        self.edits.append(dict(params, chat_id=key[0], message_id=key[1],
                               plain_text=rendered["text"]))
        return message

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        message = self.messages[key]
        message.pop("reply_markup", None)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.edits.append(dict(params, chat_id=key[0], message_id=key[1]))
        return message

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        if len(str(params.get("text") or "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers.append(params)
        return True

    @staticmethod
    def _render(params: dict[str, Any]) -> dict[str, Any]:
        raw = str(params.get("text", ""))
        if params.get("parse_mode") == "HTML":
            text, entities = parse_html(raw)
        else:
            text, entities = raw, []
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        as_html = raw if params.get("parse_mode") == "HTML" else html.escape(raw)
        message: dict[str, Any] = {"text": text, "html": as_html}
        if entities:
            message["entities"] = entities
        markup = params.get("reply_markup")
        if markup and markup.get("inline_keyboard"):
            for row in markup["inline_keyboard"]:
                for button in row:
                    if len(button.get("callback_data", "").encode()) > 64:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            message["reply_markup"] = markup
        return message


async def wait_for(condition: Callable[[], Any], what: str, *, timeout: float = 20.0) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)
