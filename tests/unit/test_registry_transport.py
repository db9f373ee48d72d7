"""The aiohttp-backed httpx transport, against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.registry.transport import AiohttpTransport

BODY = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}'


async def manifest(request: web.Request) -> web.Response:
    headers = {"Docker-Content-Digest": "sha256:" + "a" * 64, "X-Accept": request.headers["Accept"]}
    if request.query.get("gzip"):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=gzip.compress(BODY), headers=headers)
    return web.Response(body=BODY, headers=headers)


async def echo(request: web.Request) -> web.Response:
    form = await request.post()
    return web.json_response({"form": dict(form), "type": request.content_type})


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1)
    return web.Response(text="late")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/manifest", manifest)
    app.router.add_post("/form", echo)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        yield http


async def test_get_returns_status_headers_and_exact_body(
    server: str, client: httpx.AsyncClient
) -> None:
    r = await client.get(f"{server}/manifest", headers={"Accept": "a, b"})
    assert r.status_code == 200
    assert r.content == BODY
    assert r.headers["docker-content-digest"] == "sha256:" + "a" * 64
    assert r.headers["x-accept"] == "a, b"


async def test_gzip_body_is_decoded_once_by_httpx(server: str, client: httpx.AsyncClient) -> None:
    r = await client.get(f"{server}/manifest?gzip=1")
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == BODY


async def test_head_has_headers_and_no_body(server: str, client: httpx.AsyncClient) -> None:
    r = await client.head(f"{server}/manifest", headers={"Accept": "x"})
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["docker-content-digest"].startswith("sha256:")


async def test_form_post_arrives_with_its_content_type(
    server: str, client: httpx.AsyncClient
) -> None:
    r = await client.post(f"{server}/form", data={"grant_type": "refresh_token", "scope": "a b"})
    assert r.json() == {
        "form": {"grant_type": "refresh_token", "scope": "a b"},
        "type": "application/x-www-form-urlencoded",
    }


async def test_new_connections_are_reported_to_the_trace_extension(
    server: str, client: httpx.AsyncClient
) -> None:
    events: list[str] = []

    async def trace(event: str, info: dict[str, Any]) -> None:
        events.append(event)

    for _ in range(3):
        await client.get(f"{server}/manifest", extensions={"trace": trace})
    assert events == ["connection.connect_tcp.complete"]  # one connection, kept alive


async def test_refused_connection_is_an_httpx_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/v2/")


async def test_slow_answer_is_an_httpx_read_timeout(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.1) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{server}/slow")


async def test_closing_the_client_closes_the_session(server: str) -> None:
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        await http.get(f"{server}/manifest")
    assert transport._session is None
