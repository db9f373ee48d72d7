"""The `/v2/` ping: how a registry answers before any login, asked once per registry.

Its answer says how to authenticate (a challenge, or none: anonymous access). A registry reached
over plain HTTP (loopback or configured insecure) that turns out to speak TLS is moved to HTTPS
without certificate checks, as Docker does for insecure registries.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from bot.errors import ConnectFailed, RegistryError, RegistryUnreachable
from bot.registry.challenge import choose_challenge, describe, parse_www_authenticate
from bot.registry.exchange import Exchange, unexpected
from bot.registry.state import Auth, RegistryState, SharedTasks
from bot.registry.wire import split_host

log = logging.getLogger(__name__)


class Pinger:
    """Pings each registry once; every image of a registry waits for the same ping."""

    def __init__(self, exchange: Exchange, tasks: SharedTasks) -> None:
        self._exchange = exchange
        self._tasks = tasks

    async def ensure(self, state: RegistryState) -> None:
        """GET /v2/ unless it was answered already (raises RegistryError)."""
        if state.pinged:
            return
        if state.ping is None:
            state.ping = self._tasks.start(self._ping(state))
        ping = state.ping
        try:
            await asyncio.shield(ping)
        except RegistryError:
            # A failed ping is not remembered: the next pass tries again.
            if state.ping is ping:
                state.ping = None
            raise

    async def _ping(self, state: RegistryState) -> None:
        response = await self._ping_request(state)
        url = f"{state.base}/v2/"
        if response.status_code == 401:
            raw = response.headers.get_list("www-authenticate")
            offered = parse_www_authenticate(raw)
            chosen = choose_challenge(offered)
            if chosen is not None:
                state.auth = Auth(chosen, url)
            elif offered:
                # Try anonymously anyway; say "unsupported" only if that fails.
                state.unsupported = (describe(offered), ", ".join(raw))
                # Debug only: when it matters, the pass reports it (a table row, an alert).
                log.debug("%s offers only %s authentication", state.name, describe(offered))
        elif response.status_code >= 500:
            raise unexpected(state.name, response, "answering /v2/")
        state.pinged = True

    async def _ping_request(self, state: RegistryState) -> httpx.Response:
        """GET /v2/; plain HTTP meeting a TLS port moves an insecure registry to HTTPS."""
        try:
            response = await self._exchange.send(
                state.name, "GET", f"{state.base}/v2/", kind="ping"
            )
        except ConnectFailed:
            # Without a port, HTTP meant port 80 and HTTPS means 443: worth a try. With one,
            # the same port would refuse HTTPS too.
            if state.tls_fallback is None or split_host(state.name)[1] is not None:
                raise
            return await self._ping_tls(state)
        except RegistryUnreachable:
            if state.tls_fallback is None:
                raise
            return await self._ping_tls(state)
        # Go and nginx answer plain HTTP on a TLS port with 400; no registry says 400 to /v2/.
        if response.status_code == 400 and state.tls_fallback is not None:
            return await self._ping_tls(state)
        return response

    async def _ping_tls(self, state: RegistryState) -> httpx.Response:
        """HTTPS without certificate checks: what Docker does for insecure registries."""
        assert state.tls_fallback is not None
        plain, state.base, state.tls_fallback = state.base, state.tls_fallback, None
        self._exchange.verify_tls(state.name, False)
        try:
            response = await self._exchange.send(
                state.name, "GET", f"{state.base}/v2/", kind="ping"
            )
        except RegistryError:
            state.base, state.tls_fallback = plain, state.base
            self._exchange.verify_tls(state.name, True)
            raise
        log.info("%s speaks TLS: using %s without certificate checks", state.name, state.base)
        return response
