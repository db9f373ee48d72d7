"""Getting messages to Discord despite rate limits and flaky links, and where Discord is.

discord.py retries a 429 only when the answer carries a `Via` header (Discord's own edge adds
one; a proxy or a bare rate limit may not), and not at all on a refused connection. Alerts must
not be lost to either, so every send goes through `deliver`, which retries a bounded number of
times and then raises a DockWardenError that says what was lost.

discord.py has no setting for its REST base or gateway URL: both are class attributes
(`discord.http.Route.BASE`, `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`). `ApiRedirect`
sets them from DISCORD_API_BASE_URL / DISCORD_GATEWAY_URL while at least one adapter runs, and
restores discord.py's values when the last one stops. They are process-wide: every Discord
adapter in the process talks to the same Discord.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl

from bot.chat.text_safety import redact
from bot.errors import DockWardenError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRY_AFTER = 1.0  # seconds, when a 429 names no wait at all
MAX_WAIT = 60.0  # a longer wait is not worth holding an alert for; we give up and say so


def _retry_after(exc: discord.HTTPException) -> float:
    """The wait a 429 asks for: the Retry-After header, else a default."""
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("Retry-After", DEFAULT_RETRY_AFTER)))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


async def deliver(
    send: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = 5,
    base_delay: float = 0.5,
    secrets: Sequence[str] = (),
) -> T:
    """Run `send`, retrying 429s, 5xx and connection errors; raise DockWardenError when it can't."""
    problem = ""
    for attempt in range(1, attempts + 1):
        wait = base_delay * 2 ** (attempt - 1)
        try:
            return await send()
        except discord.RateLimited as exc:
            # discord.py already waited what it could; the rest is longer than we hold an alert
            raise DockWardenError(
                f"Discord rate limit while sending {what}: retry in {exc.retry_after:.0f}s"
            ) from None
        except discord.HTTPException as exc:
            if exc.status == 429:
                wait = _retry_after(exc)
            elif exc.status < 500:
                raise DockWardenError(
                    f"Discord refused {what}: HTTP {exc.status} "
                    f"{redact(exc.text, secrets)[:200]}".rstrip()
                ) from None
            problem = f"HTTP {exc.status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            problem = f"{type(exc).__name__}: {redact(str(exc), secrets)[:200]}"
        if attempt == attempts or wait > MAX_WAIT:
            break
        log.warning("sending %s to Discord failed (%s); retry %d/%d in %.2fs",
                    what, problem or "HTTP 429", attempt, attempts - 1, wait)
        await asyncio.sleep(wait)
    raise DockWardenError(
        f"could not deliver {what} to Discord after {attempt} attempt(s): {problem or 'HTTP 429'}"
    )


class ApiRedirect:
    """Points discord.py at a configured REST base / gateway while adapters run (refcounted)."""

    _users = 0
    _saved: tuple[str, yarl.URL] | None = None

    def __init__(self, api_base_url: str, gateway_url: str | None) -> None:
        self._api = api_base_url.rstrip("/")
        self._gateway = yarl.URL(gateway_url) if gateway_url else None
        self._active = False

    def enter(self) -> None:
        """Apply the configured URLs (the first user saves discord.py's own)."""
        if self._active:
            return
        cls = type(self)
        if cls._users == 0:
            cls._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        cls._users += 1
        self._active = True
        discord.http.Route.BASE = self._api
        if self._gateway is not None:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._gateway

    def exit(self) -> None:
        """Undo `enter`; the last user puts discord.py's own URLs back."""
        if not self._active:
            return
        cls = type(self)
        self._active = False
        cls._users -= 1
        if cls._users == 0 and cls._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = cls._saved
            cls._saved = None
