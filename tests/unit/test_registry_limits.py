"""Body caps: refused by Content-Length, cut off past the cap, counted after decoding."""

from __future__ import annotations

import gzip

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.errors import BadResponse
from bot.registry.limits import MAX_MANIFEST_BYTES, MAX_SMALL_BYTES, body_limit, read_capped

MIB = 1024 * 1024


async def answer(
    body: bytes, headers: dict[str, str] | None = None, method: str = "GET"
) -> httpx.Response:
    """What read_capped makes of this answer, sent through a real httpx client (streamed)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        request = http.build_request(method, "http://registry.test/v2/app/manifests/v1")
        response = await http.send(request, stream=True)
        try:
            return await read_capped(response, MIB, "registry.test")
        finally:
            await response.aclose()


def test_manifests_get_4_mib_everything_else_1_mib() -> None:
    assert body_limit("head") == body_limit("get") == MAX_MANIFEST_BYTES == 4 * MIB
    for kind in ("token", "tags", "ping"):
        assert body_limit(kind) == MAX_SMALL_BYTES == MIB


async def test_a_body_up_to_the_cap_comes_back_whole_with_its_headers() -> None:
    body = b"x" * MIB
    response = await answer(body, {"Docker-Content-Digest": "sha256:abc"})
    assert response.content == body
    assert response.headers["docker-content-digest"] == "sha256:abc"


async def test_an_announced_length_over_the_cap_is_refused_unread() -> None:
    with pytest.raises(BadResponse, match="announced an answer of 1048577 bytes"):
        await answer(b"x" * (MIB + 1))


async def test_a_head_carries_the_gets_length_and_is_not_refused_for_it() -> None:
    response = await answer(b"", {"Content-Length": str(512 * MIB)}, method="HEAD")
    assert response.content == b""


async def test_a_compressed_body_is_counted_as_it_unpacks() -> None:
    bomb = gzip.compress(b"\0" * (8 * MIB))
    assert len(bomb) < MIB
    with pytest.raises(BadResponse, match="more than 1 MiB"):
        await answer(bomb, {"Content-Encoding": "gzip"})


async def test_a_compressed_body_within_the_cap_comes_back_decoded() -> None:
    response = await answer(gzip.compress(b'{"token":"t"}'), {"Content-Encoding": "gzip"})
    assert response.json() == {"token": "t"}


@given(st.text(alphabet="0123456789", min_size=1, max_size=6000))
@example("9" * 5000)
@example("0" * 5000 + "1")
async def test_any_content_length_digits_are_judged_without_trouble(length: str) -> None:
    try:
        await answer(b"{}", {"Content-Length": length})
    except BadResponse as error:
        digits = length.lstrip("0")
        assert len(digits) > 7 or int(digits) > MIB  # int() of thousands of digits would raise
        assert error.kind == "bad_response"
    except httpx.HTTPError:
        pass  # a length that is not the body's: httpx's own complaint, never an overflow
