"""Bearer tokens: where to ask for them, what the answer means, and how long to keep them."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from bot.errors import BadResponse

DEFAULT_EXPIRES_IN = 60.0
MAX_EXPIRES_IN = 24 * 3600.0
# Renew this long before the token's end, so a request never travels with a dying token.
RENEW_MARGIN = 10.0
CLIENT_ID = "dockwarden"


@dataclass(frozen=True)
class Token:
    """A bearer token and when it stops being usable (epoch seconds)."""

    value: str
    expires_at: float

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at!r})"


def _parse_time(text: str) -> float | None:
    """RFC 3339 time as epoch seconds, or None."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def parse_token_answer(body: bytes, now: float, *, registry: str) -> Token:
    """The token in a registry's token endpoint's JSON answer (raises BadResponse)."""

    def refused(why: str) -> BadResponse:
        return BadResponse(f"{registry}: the token endpoint {why}", registry=registry)

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise refused("did not answer JSON") from None
    if not isinstance(data, dict):
        raise refused("answered JSON that is not an object")
    value = data.get("token") or data.get("access_token")
    if not isinstance(value, str) or not value:
        raise BadResponse(
            f"{registry}: the token endpoint's answer holds no token", registry=registry
        )
    expires_in = data.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        expires_in = DEFAULT_EXPIRES_IN
    # NaN and absurd lifetimes must not make a token eternal.
    if not math.isfinite(expires_in):
        expires_in = DEFAULT_EXPIRES_IN
    expires_in = min(max(float(expires_in), DEFAULT_EXPIRES_IN), MAX_EXPIRES_IN)
    issued_at = data.get("issued_at")
    issued = _parse_time(issued_at) if isinstance(issued_at, str) else None
    # Trust the server's issue time only while it agrees with our clock; skew must not make
    # every token look expired (or eternal).
    if issued is None or not now - expires_in < issued <= now:
        issued = now
    return Token(value=value, expires_at=issued + expires_in)


def token_url(
    realm: str, request_url: str, service: str | None, scopes: Sequence[str]
) -> httpx.URL:
    """The GET token URL: realm (resolved, own query kept) plus service and one scope= each."""
    base = realm_url(realm, request_url)
    params: list[tuple[str, str | int | float | bool | None]] = list(base.params.multi_items())
    if service:
        params.append(("service", service))
    params.extend(("scope", scope) for scope in scopes)
    return base.copy_with(params=httpx.QueryParams(params))


def refresh_form(refresh_token: str, service: str | None, scopes: Sequence[str]) -> dict[str, str]:
    """The OAuth2 refresh_token grant's form fields (scopes space-joined)."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLIENT_ID,
    }
    if service:
        form["service"] = service
    if scopes:
        form["scope"] = " ".join(scopes)
    return form


def realm_url(realm: str, request_url: str) -> httpx.URL:
    """The realm resolved against the URL of the request that was challenged."""
    return httpx.URL(request_url).join(realm)


class TokenCache:
    """Tokens per (registry, scope); one token may serve many scopes."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str], Token] = {}

    def get(self, registry: str, scope: str) -> Token | None:
        """A token for this scope that is still good for a while, or None."""
        token = self._tokens.get((registry, scope))
        if token is None:
            return None
        if token.expires_at - RENEW_MARGIN <= self._clock():
            del self._tokens[(registry, scope)]
            return None
        return token

    def missing(self, registry: str, scopes: Iterable[str]) -> list[str]:
        """The scopes (in order, once each) with no usable token."""
        seen: dict[str, None] = {}
        for scope in scopes:
            if scope not in seen and self.get(registry, scope) is None:
                seen[scope] = None
        return list(seen)

    def forget(self, registry: str) -> None:
        """Drop every token of a registry (the credentials that earned them changed)."""
        for key in [key for key in self._tokens if key[0] == registry]:
            del self._tokens[key]

    def put(self, registry: str, scopes: Iterable[str], token: Token) -> None:
        """Remember a token for each scope it was granted for."""
        for scope in scopes:
            self._tokens[(registry, scope)] = token
