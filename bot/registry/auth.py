"""Registry authentication after the ping: credentials, challenges turned into tokens, 401s.

Anonymous registries (200 on /v2/, or a 401 with no challenge) just work; Bearer and Basic are
answered wherever they stand among the offered challenges; a registry offering only schemes we
cannot speak is still tried anonymously, and reported as unsupported only when that fails.
The `/v2/` ping itself, and the move from plain HTTP to TLS, are in bot/registry/ping.py.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import time

import httpx

from bot.domain.reference import DOCKER_HUB, ImageRef
from bot.errors import (
    AuthFailed,
    RateLimited,
    RegistryError,
    RegistryUnreachable,
    UnsupportedChallenge,
)
from bot.registry.challenge import Challenge, choose_challenge, describe, parse_www_authenticate
from bot.registry.credentials import Credentials, DockerCredentials
from bot.registry.exchange import Exchange, unexpected
from bot.registry.ping import Pinger
from bot.registry.state import Auth, RegistryState, SharedTasks
from bot.registry.tokens import (
    Token,
    TokenCache,
    parse_token_answer,
    realm_url,
    refresh_form,
    token_url,
)

log = logging.getLogger(__name__)

# Scopes per batched token request: the URL and the JWT (sent on every request after) grow with
# each scope, and proxies before registries often cap a header line at 8 KiB.
MAX_SCOPES_PER_TOKEN = 50
# Challenge parameters that describe one refused request, not the registry.
_REQUEST_PARAMS = frozenset({"error", "error_description", "scope"})


def basic_authorization(credentials: Credentials | None) -> str | None:
    """The Basic Authorization value for a username and password, if there are both."""
    pair = credentials.basic if credentials is not None else None
    if pair is None:
        return None
    raw = f"{pair[0]}:{pair[1]}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def login_hint(registry: str) -> str:
    """What the user should do about missing or refused credentials."""
    target = "" if registry == DOCKER_HUB else f" {registry}"
    return f"run `docker login{target}` where DockWarden reads Docker's config"


class Authenticator:
    """Fetches and caches tokens, and answers 401s, after the registry's ping."""

    def __init__(
        self,
        exchange: Exchange,
        credentials: DockerCredentials,
        pinger: Pinger,
        tasks: SharedTasks,
    ) -> None:
        self._exchange = exchange
        self._credentials = credentials
        self._pinger = pinger
        self._tasks = tasks
        self._tokens = TokenCache()
        self._fetches: dict[tuple[str, frozenset[str]], asyncio.Future[Token]] = {}
        # (registry, realm host) pairs already warned about: once per process, not per pass.
        self._foreign_realms: set[tuple[str, str]] = set()

    async def credentials(self, state: RegistryState) -> Credentials | None:
        """The registry's stored credentials (a credential helper may run: off the loop)."""
        if not state.credentials_loaded:
            async with state.lock:
                if not state.credentials_loaded:
                    state.credentials = await asyncio.to_thread(
                        self._credentials.lookup, state.credentials_key
                    )
                    state.credentials_loaded = True
        return state.credentials

    async def refresh_credentials(self, state: RegistryState) -> None:
        """Look the credentials up again (a pass starts): a `docker login` since the last pass is
        used from now on, and the tokens the old credentials earned are dropped."""
        if not state.credentials_loaded:
            return  # the first use looks them up anyway
        async with state.lock:
            current = await asyncio.to_thread(self._credentials.lookup, state.credentials_key)
            if current != state.credentials:
                log.info("%s: stored credentials changed; using the new ones", state.name)
                state.credentials = current
                self._tokens.forget(state.name)

    async def check_login(self, state: RegistryState) -> None:
        """Log in as a check pass would, without a repository (raises RegistryError)."""
        await self._pinger.ensure(state)
        error = state.unsupported_error(None)
        if error is not None:
            raise error
        if state.auth is None:
            return
        if state.auth.challenge.scheme == "bearer":
            await self._fetch_token(state, state.auth, [])
            return
        authorization = basic_authorization(await self.credentials(state))
        if authorization is None:
            raise AuthFailed(
                f"{state.name} requires a login; {login_hint(state.name)}", registry=state.name
            )
        response = await self._exchange.send(
            state.name, "GET", f"{state.base}/v2/", kind="ping", authorization=authorization
        )
        if response.status_code == 401:
            raise AuthFailed(f"{state.name} refused the stored credentials", registry=state.name)

    # ---- tokens -------------------------------------------------------------------------

    async def prefetch(self, state: RegistryState, scopes: list[str]) -> dict[str, RegistryError]:
        """One token request for many scopes, where the registry uses tokens.

        Returns the scopes whose images need not try on their own: the token service is
        unreachable, rate limiting, or refused the login (asking again per image would only
        hammer it with a wrong password). Other failures leave each image to ask for its own
        token and report its own error (a registry may refuse a batch it finds too large).
        """
        auth = state.auth
        if auth is None or auth.challenge.scheme != "bearer":
            return {}
        missing = self._tokens.missing(state.name, scopes)
        if len(missing) < 2:
            return {}  # a single scope is fetched on the way, as usual
        chunks = [
            missing[i : i + MAX_SCOPES_PER_TOKEN]
            for i in range(0, len(missing), MAX_SCOPES_PER_TOKEN)
        ]
        outcomes = await asyncio.gather(
            *(self._token(state, auth, chunk) for chunk in chunks), return_exceptions=True
        )
        failed: dict[str, RegistryError] = {}
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, RegistryUnreachable | RateLimited | AuthFailed):
                failed.update(dict.fromkeys(chunk, outcome))
            elif isinstance(outcome, RegistryError):
                log.debug("%s: batched token request failed: %s", state.name, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        return failed

    async def _token(
        self, state: RegistryState, auth: Auth, scopes: list[str], *, fresh: bool = False
    ) -> Token:
        """A token for the scopes: cached, or shared with a fetch already under way."""
        if not fresh and len(scopes) == 1:
            cached = self._tokens.get(state.name, scopes[0])
            if cached is not None:
                return cached
        key = (state.name, frozenset(scopes))
        fetch = self._fetches.get(key)
        if fetch is None or fresh:
            fetch = self._tasks.start(self._fetch_token(state, auth, scopes))
            self._fetches[key] = fetch
            fetch.add_done_callback(lambda done: self._forget_fetch(key, done))
        return await asyncio.shield(fetch)

    def _forget_fetch(self, key: tuple[str, frozenset[str]], done: asyncio.Future[Token]) -> None:
        if self._fetches.get(key) is done:
            del self._fetches[key]

    def _check_realm(self, state: RegistryState, auth: Auth, creds: Credentials | None) -> None:
        """Refuse a token realm that would be asked in clear text; warn about a foreign one."""
        challenged = httpx.URL(auth.url)
        realm = realm_url(auth.challenge.params["realm"], auth.url)
        if challenged.scheme == "https" and realm.scheme != "https":
            raise AuthFailed(
                f"{state.name} is on https but names a token service on plain {realm.scheme} "
                f"({realm.host}); DockWarden does not send credentials, or ask for tokens, "
                "in clear text",
                registry=state.name,
            )
        if (
            not same_site(realm.host, challenged.host)
            and (state.name, realm.host) not in self._foreign_realms
        ):
            self._foreign_realms.add((state.name, realm.host))
            log.warning(
                "%s sends DockWarden to another host for its tokens: %s%s",
                state.name,
                realm.host,
                "" if creds is None else " (the stored credentials for it go there)",
            )

    async def _fetch_token(self, state: RegistryState, auth: Auth, scopes: list[str]) -> Token:
        """Ask the bearer realm for a token (OAuth2 refresh POST with an identitytoken)."""
        realm = auth.challenge.params["realm"]
        service = auth.challenge.params.get("service")
        creds = await self.credentials(state)
        self._check_realm(state, auth, creds)
        response: httpx.Response | None = None
        if creds is not None and creds.identitytoken:
            response = await self._exchange.send(
                state.name,
                "POST",
                str(realm_url(realm, auth.url)),
                kind="token",
                data=refresh_form(creds.identitytoken, service, scopes),
            )
            if response.status_code in (404, 405):
                response = None  # an endpoint without OAuth2: the plain GET below
        if response is None:
            response = await self._exchange.send(
                state.name,
                "GET",
                str(token_url(realm, auth.url, service, scopes)),
                kind="token",
                authorization=basic_authorization(creds),
            )
        if response.status_code in (401, 403):
            refused = "anonymous access" if creds is None else "the stored credentials"
            raise AuthFailed(
                f"{state.name}'s token service refused {refused} (HTTP {response.status_code}); "
                + login_hint(state.name),
                registry=state.name,
            )
        if response.status_code != 200:
            raise unexpected(state.name, response, "issuing a token")
        token = parse_token_answer(response.content, time.time(), registry=state.name)
        if scopes:
            self._tokens.put(state.name, scopes, token)
        return token

    # ---- authenticated requests ---------------------------------------------------------

    async def _authorization(self, state: RegistryState, scope: str) -> str | None:
        """What to send in Authorization for this scope, before the registry asks."""
        if state.auth is None:
            return None
        if state.auth.challenge.scheme == "basic":
            return basic_authorization(await self.credentials(state))
        token = await self._token(state, state.auth, [scope])
        return f"Bearer {token.value}"

    async def send(
        self,
        state: RegistryState,
        ref: ImageRef,
        method: str,
        url: str,
        *,
        kind: str,
        accept: str | None = None,
    ) -> httpx.Response:
        """Send with the registry's auth; answer one 401 by authenticating as it asks."""
        authorization = await self._authorization(state, ref.scope)
        response = await self._exchange.send(
            state.name, method, url, kind=kind, authorization=authorization, accept=accept
        )
        if response.status_code == 401:
            retry = await self._answer_401(state, ref, url, response, authorization)
            response = await self._exchange.send(
                state.name, method, url, kind=kind, authorization=retry, accept=accept
            )
        if response.status_code in (401, 403):
            # GHCR and Quay say 403 where others say 401 twice: either way, no access.
            hint = (
                "the stored credentials do not give access"
                if await self.credentials(state) is not None
                else f"it needs a login; {login_hint(state.name)}"
            )
            raise AuthFailed(
                f"{state.name} refused access to {ref.repository} "
                f"(HTTP {response.status_code}): {hint} (or the repository does not exist)",
                registry=state.name,
            )
        return response

    async def _answer_401(
        self,
        state: RegistryState,
        ref: ImageRef,
        url: str,
        response: httpx.Response,
        sent: str | None,
    ) -> str:
        """The Authorization to retry with after a 401 (raises when there is none to try)."""
        raw = response.headers.get_list("www-authenticate")
        offered = parse_www_authenticate(raw)
        chosen = choose_challenge(offered)
        if chosen is not None:
            # Kept for later requests without this one's error and scope, which were its own.
            params = {k: v for k, v in chosen.params.items() if k not in _REQUEST_PARAMS}
            state.auth = Auth(Challenge(chosen.scheme, params), url)
        elif offered:
            raise UnsupportedChallenge(
                registry=state.name,
                repository=ref.repository,
                scheme=describe(offered),
                header=", ".join(raw),
            )
        elif (unsupported := state.unsupported_error(ref.repository)) is not None:
            raise unsupported
        if state.auth is None:
            raise AuthFailed(
                f"{state.name} refused access to {ref.repository} without saying how to "
                f"authenticate; {login_hint(state.name)}",
                registry=state.name,
            )
        # A 401 without a challenge (gcr.io does this) means: the one from the ping, again.
        if state.auth.challenge.scheme == "bearer":
            scopes = [ref.scope]
            asked = chosen.params if chosen is not None else {}
            if asked.get("error") == "insufficient_scope" and asked.get("scope"):
                scopes = asked["scope"].split()
            token = await self._token(state, state.auth, scopes, fresh=True)
            return f"Bearer {token.value}"
        basic = basic_authorization(await self.credentials(state))
        if basic is None:
            raise AuthFailed(
                f"{state.name} requires a login; {login_hint(state.name)}", registry=state.name
            )
        if basic == sent:
            raise AuthFailed(f"{state.name} refused the stored credentials", registry=state.name)
        return basic


def same_site(a: str, b: str) -> bool:
    """Whether two hosts belong to one site: equal, or sharing their last two DNS labels.

    Docker Hub's registry (registry-1.docker.io) sends clients to auth.docker.io for tokens;
    that is the registry's own token service, not another party.
    """
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    if a == b:
        return True
    try:
        ipaddress.ip_address(a)
        return False
    except ValueError:
        pass
    labels_a, labels_b = a.split("."), b.split(".")
    return len(labels_a) >= 2 and len(labels_b) >= 2 and labels_a[-2:] == labels_b[-2:]
