"""One HTTP exchange with a registry: 429 and 5xx retried within bounds, failures typed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from bot.errors import AuthFailed, BadResponse, ConnectFailed, RateLimited, RegistryUnreachable
from bot.registry.limits import body_limit, read_capped
from bot.registry.tls import RegistryTls
from bot.registry.transport import NO_VERIFY, SSL_CONTEXT, AiohttpTransport
from bot.registry.wire import parse_retry_after

log = logging.getLogger(__name__)

USER_AGENT = "dockwarden/0.1"
_RATE_RETRIES = 2
_SERVER_RETRIES = 1
_SERVER_RETRY_DELAY = 0.5
_DEFAULT_RATE_WAIT = 1.0
# Followed by hand, so that each hop is checked (no https to http) and no hop's body is read.
_MAX_REDIRECTS = 5


def unexpected(registry: str, response: httpx.Response, doing: str) -> BadResponse:
    """The error for a status code the protocol does not allow here."""
    return BadResponse(
        f"{registry} answered HTTP {response.status_code} when {doing}", registry=registry
    )


class Exchange:
    """Sends requests for the registry client and counts them by kind in `stats`."""

    def __init__(
        self,
        *,
        stats: Counter[str],
        timeout: float,
        max_retry_wait: float,
        transport: httpx.AsyncBaseTransport | None,
        tls: RegistryTls | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = stats
        self._clock = clock
        # The whole request (connect, answer, body): per-read timeouts alone let a registry
        # that drips a byte at a time hold a request, and the pass behind it, forever.
        self._deadline = timeout
        # Per registry, the context its certificate is checked with (certs.d); None: default.
        self._tls = tls
        # A registry that does not accept a connection quickly is down: say so soon.
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._max_retry_wait = max_retry_wait
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        # Docker Hub's pull allowance as last reported, per registry: "100;w=21600" style values.
        self.rate_limits: dict[str, tuple[str, str]] = {}
        self._no_verify: set[str] = set()
        self._limited_until: dict[str, float] = {}

    def open(self) -> None:
        """Create the HTTP client (and its transport) if it is not there yet."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport or AiohttpTransport(),
                timeout=self._timeout,
                follow_redirects=True,
                headers={"User-Agent": USER_AGENT},
                # Proxies from the environment would bypass the transport we chose.
                trust_env=False,
            )

    def verify_tls(self, registry: str, verify: bool) -> None:
        """Check (default) or skip the certificate checks for a registry's requests."""
        if verify:
            self._no_verify.discard(registry)
        else:
            self._no_verify.add(registry)

    async def aclose(self) -> None:
        """Close every connection."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def send(
        self,
        registry: str,
        method: str,
        url: str,
        *,
        kind: str,
        authorization: str | None = None,
        accept: str | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request, 429 (Retry-After, bounded) and one 5xx retried; errors typed."""
        headers: dict[str, str] = {}
        if authorization:
            headers["Authorization"] = authorization
        if accept:
            headers["Accept"] = accept
        waited = 0.0
        rate_retries = server_retries = 0
        while True:
            self._refuse_while_limited(registry)
            self.stats[kind] += 1
            response = await self._once(registry, method, url, headers, data, kind)
            status = response.status_code
            remaining = response.headers.get("ratelimit-remaining")
            if remaining is not None:
                self.rate_limits[registry] = (
                    response.headers.get("ratelimit-limit", ""),
                    remaining,
                )
            if status != 429 and status < 500:
                return response
            wait = parse_retry_after(response.headers.get("retry-after"), time.time())
            if status == 429:
                self.stats["rate_limited"] += 1
                delay = _DEFAULT_RATE_WAIT if wait is None else wait
                if rate_retries >= _RATE_RETRIES or waited + delay > self._max_retry_wait:
                    # The rest of this pass's requests to it would only be refused as well.
                    self._limited_until[registry] = self._clock() + delay
                    raise RateLimited(
                        f"{registry} is rate limiting DockWarden; it asks to wait {delay:.0f}s",
                        registry=registry,
                        retry_after=delay,
                    )
                rate_retries += 1
            else:
                delay = _SERVER_RETRY_DELAY if wait is None else wait
                if server_retries >= _SERVER_RETRIES or waited + delay > self._max_retry_wait:
                    return response
                server_retries += 1
            self.stats["retry"] += 1
            waited += delay
            log.info("%s answered %d; retrying in %.1fs", registry, status, delay)
            await asyncio.sleep(delay)

    def _refuse_while_limited(self, registry: str) -> None:
        """Raise RateLimited, without asking, while the registry said to wait."""
        until = self._limited_until.get(registry)
        if until is None:
            return
        left = until - self._clock()
        if left <= 0:
            del self._limited_until[registry]
            return
        raise RateLimited(
            f"{registry} is rate limiting DockWarden; it asked to wait {left:.0f}s more",
            registry=registry,
            retry_after=left,
        )

    async def _once(
        self,
        registry: str,
        method: str,
        url: str,
        headers: dict[str, str],
        data: dict[str, str] | None,
        kind: str,
    ) -> httpx.Response:
        """One request with its redirects, within the deadline, its body read up to the cap."""
        self.open()
        assert self._http is not None
        target = httpx.URL(url)
        # Host and port only: a URL is never put in a message (its query is not ours to show).
        where = f"{target.host}:{target.port}" if target.port else target.host
        extensions: dict[str, Any] = {"trace": self._trace}
        if registry in self._no_verify:
            extensions[NO_VERIFY] = True
        elif self._tls is not None and target.scheme == "https":
            # The registry's own CA and client certificate also serve its token service.
            context = self._tls.context(registry)
            if context is not None:
                extensions[SSL_CONTEXT] = context
        request = self._http.build_request(
            method, target, headers=headers, data=data, extensions=extensions
        )
        try:
            async with asyncio.timeout(self._deadline):
                return await self._follow(registry, request, kind, where)
        except TimeoutError:
            raise RegistryUnreachable(
                f"{where} did not finish answering within {self._deadline:g}s", registry=registry
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            hint = self._tls.untrusted_hint(registry, str(error)) if self._tls else ""
            raise ConnectFailed(f"cannot reach {where}: {error}{hint}", registry=registry) from None
        except httpx.TimeoutException as error:
            raise RegistryUnreachable(
                f"{where} did not answer in time ({type(error).__name__})", registry=registry
            ) from None
        except httpx.TransportError as error:
            hint = self._tls.untrusted_hint(registry, str(error)) if self._tls else ""
            raise RegistryUnreachable(
                f"cannot reach {where}: {error}{hint}", registry=registry
            ) from None
        except httpx.RequestError as error:  # undecodable body, redirect loop
            raise BadResponse(
                f"{where} answered unusably ({type(error).__name__})", registry=registry
            ) from None

    async def _follow(
        self, registry: str, request: httpx.Request, kind: str, where: str
    ) -> httpx.Response:
        """Send, following redirects by hand, and read the final body up to its cap."""
        assert self._http is not None
        secure = request.url.scheme == "https"
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._http.send(request, stream=True, follow_redirects=False)
            try:
                following = response.next_request
                if following is None:
                    return await read_capped(response, body_limit(kind), registry)
            finally:
                await response.aclose()
            if secure and following.url.scheme != "https":
                # httpx drops Authorization there, but a 307 would still carry a POST's form.
                refused = AuthFailed if kind == "token" else BadResponse
                raise refused(
                    f"{where} redirected DockWarden from https to plain "
                    f"{following.url.scheme} ({following.url.host}); not followed, so that "
                    "nothing is sent in clear text",
                    registry=registry,
                )
            request = following
        raise BadResponse(
            f"{where} redirected more than {_MAX_REDIRECTS} times", registry=registry
        )

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        """Count new connections (httpx's trace extension; the aiohttp transport feeds it too)."""
        if event == "connection.connect_tcp.complete":
            self.stats["connect"] += 1
