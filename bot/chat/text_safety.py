"""What of a registry's or an engine's own words may reach a chat, and secrets out of text.

Registries and engines choose parts of their error texts (a reason phrase, a JSON `message`, a
challenge's scheme). Texts that may quote them go through `safe_text` (links cut to their host,
one line, bounded); a scheme is said only when it is a plain token; an error text is otherwise
said by its status code alone. The full text stays in the logs and in `dockwarden check --json`.
A token or webhook URL is cut out of any text (`redact`) before it is logged, stored or said, by
the core and the adapters alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

REDACTED = "***"  # what stands where a secret was
SAFE_LIMIT = 300  # characters of an engine's or registry's own words shown in chat

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"'()\[\]]*")
_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_SCHEME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}")


def _host_of(match: re.Match[str]) -> str:
    try:
        host = urlsplit(match.group()).hostname
    except ValueError:
        host = None
    return f"<link to {host}>" if host else "<link>"


def safe_text(text: str, limit: int = SAFE_LIMIT) -> str:
    """Text that may quote a registry or an engine, fit for chat: links cut to their host,
    markdown link syntax broken, one line, at most `limit` characters."""
    text = _URL.sub(_host_of, text).replace("](", "] (")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact(text: str, secrets: Iterable[str], mark: str = REDACTED) -> str:
    """`text` with every (non-empty) secret replaced by `mark`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mark)
    return text


def safe_scheme(scheme: str | None) -> str | None:
    """An auth scheme as a registry named it, or None when it is not a plain token."""
    return scheme if scheme and _SCHEME.fullmatch(scheme) else None


def status_code(message: str) -> str | None:
    """The HTTP status code an error text names (`HTTP 401`), if any."""
    found = _STATUS.search(message)
    return found.group(1) if found else None
