"""An httpx transport that sends requests through one aiohttp ClientSession.

httpx stays the API; at a fan-out of hundreds of small requests its own connection pool costs
more CPU than the network takes, while aiohttp's pool keeps up. Bodies are passed on exactly as
received (aiohttp's decompression is off) so that httpx decodes them once, as it would itself.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
import yarl
from multidict import CIMultiDict

_CHUNK = 64 * 1024
# Request extension: skip certificate checks (Docker's "insecure registry" over HTTPS).
NO_VERIFY = "dockwarden.no_verify"
# Request extension: the ssl.SSLContext to verify with (a registry's own CA, client certificate).
SSL_CONTEXT = "dockwarden.ssl_context"

Trace = Callable[[str, dict[str, Any]], Any]


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts in aiohttp's terms."""
    t: dict[str, float | None] = request.extensions.get("timeout", {})
    connect, read, pool = t.get("connect"), t.get("read"), t.get("pool")
    # aiohttp's `connect` covers waiting for a pooled slot plus opening the socket.
    acquire = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(
        total=None, connect=acquire, sock_connect=connect, sock_read=read, ceil_threshold=3600
    )


def _map_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception that means what an aiohttp failure means."""
    # ClientResponseError's text holds the URL; its `message` alone says what went wrong.
    reason = exc.message if isinstance(exc, aiohttp.ClientResponseError) else exc
    message = f"{type(exc).__name__}: {reason}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # The OS's reason alone ("Connect call failed", "Name or service not known").
        reason = exc.os_error.strerror or str(exc.os_error) or message
        return httpx.ConnectError(reason, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return httpx.ReadError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    return httpx.NetworkError(message, request=request)


_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


class _Body(httpx.AsyncByteStream):
    """The response body, read from aiohttp as httpx asks for it."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except _ERRORS as exc:
            raise _map_error(exc, self._request) from None

    async def aclose(self) -> None:
        self._response.release()


async def _on_connection_created(
    session: aiohttp.ClientSession,
    context: types.SimpleNamespace,
    params: aiohttp.TraceConnectionCreateEndParams,
) -> None:
    """Tell the request's httpx trace callback that a new connection was opened."""
    trace = context.trace_request_ctx
    if callable(trace):
        result = trace("connection.connect_tcp.complete", {})
        if asyncio.iscoroutine(result):
            await result


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx.AsyncBaseTransport over a single aiohttp.ClientSession, created on first use."""

    def __init__(self, *, limit: int = 256, keepalive: float = 30.0) -> None:
        self._limit = limit
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # The session binds to the running loop, so it cannot be made in __init__.
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_connection_create_end.append(_on_connection_created)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit, keepalive_timeout=self._keepalive
                ),
                auto_decompress=False,
                trace_configs=[trace],
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request and return its response with a streamed body."""
        session = self._open()
        body = await request.aread()
        # Raw pairs keep the header names' case, which some servers still care about.
        headers = CIMultiDict(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
        )
        try:
            response = await session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
                trace_request_ctx=request.extensions.get("trace"),
                ssl=False
                if request.extensions.get(NO_VERIFY)
                else request.extensions.get(SSL_CONTEXT) or True,
                skip_auto_headers=("Content-Type",),
            )
        except _ERRORS as exc:
            raise _map_error(exc, request) from None
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            extensions={
                "http_version": f"HTTP/{response.version.major}.{response.version.minor}".encode()
                if response.version
                else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
