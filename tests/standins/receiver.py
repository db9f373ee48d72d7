"""A local HTTP receiver for Apprise: `json://` posts and an ntfy-like server (`ntfy://`).

Records every POST (path, headers, JSON body). ntfy publishes JSON `{"topic", "title",
"message"}` to the server root and gets the message back; `json://` posts its own JSON to the
URL's path. `fail_next(n)` answers the next n posts with 500, to test what Apprise does then.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Post:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """The server; `await start()`, `await close()`."""

    posts: list[Post] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._failing = 0
        self._failing_path: str | None = None
        self._ids = itertools.count(1)
        self.changed = asyncio.Event()

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def hostport(self) -> str:
        """`127.0.0.1:PORT`, for Apprise URLs."""
        return f"127.0.0.1:{self.port}"

    def fail_next(self, count: int, path: str | None = None) -> None:
        """Answer the next `count` posts (to `path` only, when given) with a 500."""
        self._failing = count
        self._failing_path = path

    def at(self, path: str) -> list[Post]:
        """The posts to one path."""
        return [p for p in self.posts if p.path == path]

    async def _post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.posts.append(Post(request.path, dict(request.headers), body))
        self.changed.set()
        if self._failing > 0 and self._failing_path in (None, request.path):
            self._failing -= 1
            return web.json_response({"code": 50001, "error": "broken on purpose"}, status=500)
        if isinstance(body, dict) and "topic" in body:  # ntfy's publish answer
            return web.json_response({"id": f"m{next(self._ids)}", "time": int(time.time()),
                                      "event": "message", "topic": body["topic"],
                                      "message": body.get("message", "")})
        return web.json_response({"ok": True})
