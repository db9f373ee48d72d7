"""How much a registry may send: body caps by kind of request, read without trusting the sender.

A registry (or whatever answers in its name) decides how long its answers are. Without caps, a
"manifest" of half a gigabyte is read whole into memory; with them, an answer that announces more
than its kind can legitimately hold is refused before a byte of it is read, and one that sends
more than it announced, or announces nothing, is cut off at the cap.
"""

from __future__ import annotations

import httpx

from bot.errors import BadResponse

# The distribution spec lets registries refuse manifests over 4 MiB: nothing real is larger.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Token answers, tag pages, the /v2/ ping and error bodies are kilobytes; a mebibyte leaves room.
MAX_SMALL_BYTES = 1024 * 1024
_BY_KIND = {"head": MAX_MANIFEST_BYTES, "get": MAX_MANIFEST_BYTES}
# Longer than any Content-Length a cap allows; never handed to int() (thousands of digits are slow).
_MAX_LENGTH_DIGITS = 15
_UNREASONABLE: int = 10**_MAX_LENGTH_DIGITS


def body_limit(kind: str) -> int:
    """The most bytes an answer to this kind of request ("get", "token", "tags", ...) may hold."""
    return _BY_KIND.get(kind, MAX_SMALL_BYTES)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


def _declared(response: httpx.Response) -> int | None:
    """The announced body length, if there is a usable one (a HEAD announces the GET's)."""
    if response.request.method == "HEAD":
        return None
    value = str(response.headers.get("content-length", "")).strip()
    if not value.isascii() or not value.isdigit():
        return None
    digits = value.lstrip("0") or "0"
    return _UNREASONABLE if len(digits) > _MAX_LENGTH_DIGITS else int(digits)


async def read_capped(response: httpx.Response, limit: int, registry: str) -> httpx.Response:
    """The streamed response with its body read, at most `limit` bytes (raises BadResponse).

    The caller closes the streamed response. The body is counted as decoded, so that a small
    compressed answer cannot unpack into a large one.
    """
    where = response.request.url.host
    declared = _declared(response)
    if declared is not None and declared > limit:
        raise BadResponse(
            f"{registry} announced an answer of {declared} bytes from {where}; "
            f"DockWarden reads at most {_mib(limit)} there",
            registry=registry,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BadResponse(
                f"{registry} sent more than {_mib(limit)} from {where}; DockWarden stopped reading",
                registry=registry,
            )
        chunks.append(chunk)
    # The body is decoded already: the rebuilt answer must not claim an encoding any more.
    headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-encoding"]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,
        extensions=response.extensions,
    )
