"""WWW-Authenticate parsing (RFC 9110 §11.6.1), tolerant of what real registries send.

    WWW-Authenticate = #challenge
    challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param       = token BWS "=" BWS ( token / quoted-string )

Challenges and their parameters share one comma-separated list, so a list element that is
`name=value` belongs to the challenge before it and any other token starts a new challenge.
The parser never raises: garbage is skipped, and what can be read is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OWS = " \t"
TOKEN68 = "token68"


@dataclass(frozen=True)
class Challenge:
    """One auth challenge: a lowercased scheme and its lowercased parameter names."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Names are case-insensitive; keep one spelling so comparisons need no care.
        object.__setattr__(self, "scheme", self.scheme.lower())
        object.__setattr__(self, "params", {k.lower(): v for k, v in self.params.items()})

    @property
    def realm(self) -> str | None:
        """The realm parameter, case preserved, if any."""
        return self.params.get("realm")

    @property
    def usable(self) -> bool:
        """Whether DockWarden can answer it: Basic, or Bearer with a realm."""
        return self.scheme == "basic" or (self.scheme == "bearer" and bool(self.realm))

    def __hash__(self) -> int:
        return hash((self.scheme, tuple(sorted(self.params.items()))))

    def __str__(self) -> str:
        return render_challenge(self)


def parse_www_authenticate(values: str | Sequence[str]) -> list[Challenge]:
    """Every challenge in one header value or in several; never raises."""
    if isinstance(values, str):
        values = [values]
    try:
        items = list(values)
    except TypeError:  # not a header value at all: nothing to read
        return []
    challenges: list[Challenge] = []
    for value in items:
        if isinstance(value, str):
            challenges.extend(_Parser(value).challenges())
    return challenges


def choose_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """The first challenge DockWarden can answer (Bearer with a realm, or Basic), if any."""
    return next((c for c in challenges if c.usable), None)


def describe(challenges: Iterable[Challenge]) -> str:
    """The offered schemes for a message, e.g. `negotiate, ntlm`; `none` when none was offered."""
    names: list[str] = []
    for challenge in challenges:
        name = challenge.scheme
        if name == "bearer" and not challenge.realm:
            name = "bearer without realm"
        if name not in names:
            names.append(name)
    return ", ".join(names) or "none"


def render_challenge(challenge: Challenge) -> str:
    """The challenge as header text; parse_www_authenticate reads it back unchanged."""
    params = challenge.params
    if list(params) == [TOKEN68] and _is_token68(params[TOKEN68]):
        return f"{challenge.scheme} {params[TOKEN68]}"
    rendered = ", ".join(f"{name}={_quote(value)}" for name, value in params.items())
    return f"{challenge.scheme} {rendered}" if rendered else challenge.scheme


def render_www_authenticate(challenges: Iterable[Challenge]) -> str:
    """Several challenges as one header value."""
    return ", ".join(render_challenge(c) for c in challenges)


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _is_token68(text: str) -> bool:
    body = text.rstrip("=")
    return bool(body) and all(ch in _TOKEN68 for ch in body)


class _Parser:
    """A cursor over one header value."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def challenges(self) -> list[Challenge]:
        found: list[tuple[str, dict[str, str]]] = []
        current: dict[str, str] | None = None
        while True:
            self._skip(_OWS + ",")
            if self.pos >= len(self.text):
                return [Challenge(scheme, params) for scheme, params in found]
            name = self._token()
            if not name:
                self._skip_garbage()
                continue
            after_name = self.pos
            self._skip(_OWS)
            if self._peek() == "=":
                # `name=value`: a parameter of the challenge before it (dropped if none).
                self.pos += 1
                value = self._value()
                if current is not None:
                    current.setdefault(name.lower(), value)
                continue
            self.pos = after_name
            current = {}
            found.append((name, current))
            token68 = self._token68()
            if token68:
                current[TOKEN68] = token68

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def _skip_garbage(self) -> None:
        # Resynchronise on the next list element.
        while self.pos < len(self.text) and self.text[self.pos] != ",":
            if self.text[self.pos] == '"':
                self._quoted()
            else:
                self.pos += 1

    def _token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TCHAR:
            self.pos += 1
        return self.text[start : self.pos]

    def _token68(self) -> str:
        # A token68 stands alone after the scheme: `Negotiate YIIBhg==` then `,` or the end.
        start = self.pos
        self._skip(_OWS)
        begin = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TOKEN68:
            self.pos += 1
        if self.pos > begin:
            self._skip("=")
            candidate = self.text[begin : self.pos]
            self._skip(_OWS)
            if self._peek() in ("", ","):
                return candidate
        self.pos = start
        return ""

    def _value(self) -> str:
        self._skip(_OWS)
        if self._peek() == '"':
            return self._quoted()
        # Unquoted values should be tokens; accept anything up to the next separator
        # so that `realm=https://auth.example/token` survives.
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _OWS + ",":
            self.pos += 1
        return self.text[start : self.pos]

    def _quoted(self) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == '"':
                break
            if ch == "\\" and self.pos < len(self.text):
                ch = self.text[self.pos]
                self.pos += 1
            out.append(ch)
        return "".join(out)
