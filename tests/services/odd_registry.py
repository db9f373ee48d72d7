"""A programmable misbehaving registry front: proxies to a real registry unless told otherwise."""

from __future__ import annotations

import base64
import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.services.registry import RegistryService

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "host"}


@dataclass(frozen=True)
class OddRequest:
    """One request the odd registry saw."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0


class OddRegistry:
    """Misbehaves as programmed, else forwards to `upstream`.

    - `challenges`: WWW-Authenticate values sent with a 401 on every /v2/ request that carries
      no Authorization (or, with `expect_basic=(user, password)`, not those credentials).
    - `rate_limit(n, retry_after="1")`: the next n requests get 429 with Retry-After.
    - `head_digest = False`: strip Docker-Content-Digest from HEAD answers.
    - `head_allowed = False`: 405 on HEAD.
    - `garbage = True`: 200 with junk on every request.
    - `requests`: OddRequest log, oldest first.
    """

    def __init__(self, upstream: RegistryService) -> None:
        self.upstream = upstream
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.host = ""
        self.reset()

    @property
    def url(self) -> str:
        """Base URL of the front (plain HTTP on loopback)."""
        return f"http://{self.host}"

    def reset(self) -> None:
        """Back to a faithful proxy with an empty request log."""
        self.challenges: list[str] | None = None
        self.expect_basic: tuple[str, str] | None = None
        self.head_digest = True
        self.head_allowed = True
        self.garbage = False
        self.requests: list[OddRequest] = []
        self._limited = 0
        self._retry_after = "1"

    def rate_limit(self, n: int, retry_after: str = "1") -> None:
        """Answer the next `n` requests with 429 and this Retry-After."""
        with self._lock:
            self._limited = n
            self._retry_after = retry_after

    def _take_limit(self) -> str | None:
        with self._lock:
            if self._limited <= 0:
                return None
            self._limited -= 1
            return self._retry_after

    def start(self) -> None:
        """Serve on a free loopback port in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self.host = f"127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, name="odd-registry", daemon=True).start()

    def stop(self) -> None:
        """Stop serving; idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def authorized(self, header: str | None) -> bool:
        """Whether a request's Authorization passes the programmed challenge."""
        if not header:
            return False
        if self.expect_basic is None:
            return True
        pair = ":".join(self.expect_basic).encode()
        return header == "Basic " + base64.b64encode(pair).decode()


def _handler_for(odd: OddRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            """Quiet: the request log is `odd.requests`."""

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            odd.requests.append(OddRequest(self.command, self.path, dict(self.headers), status))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                # The engine streams layer uploads chunked.
                parts: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            body = self._body()
            retry_after = odd._take_limit()
            if retry_after is not None:
                self._send(429, [("Retry-After", retry_after),
                                 ("Content-Type", "application/json")],
                           b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')
                return
            if odd.challenges is not None and self.path.startswith("/v2") and not odd.authorized(
                    self.headers.get("Authorization")):
                headers = [("WWW-Authenticate", c) for c in odd.challenges]
                self._send(401, headers + [("Content-Type", "application/json")],
                           b'{"errors":[{"code":"UNAUTHORIZED","message":"authenticate"}]}')
                return
            if odd.garbage:
                self._send(200, [("Content-Type", "text/html")], b"<html>\x00\xffnot a registry")
                return
            if self.command == "HEAD" and not odd.head_allowed:
                self._send(405, [("Allow", "GET")], b"")
                return
            self._forward(body)

        def _forward(self, body: bytes) -> None:
            conn = http.client.HTTPConnection(odd.upstream.host, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in _HOP_BY_HOP
                           and k.lower() not in ("authorization", "content-length")}
                if body or self.command in ("PUT", "POST", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                out = [(k, v) for k, v in resp.getheaders()
                       if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
                if self.command == "HEAD":
                    if not odd.head_digest:
                        out = [(k, v) for k, v in out if k.lower() != "docker-content-digest"]
                    # HEAD carries the GET's length; keep it as the upstream sent it.
                    length = resp.getheader("Content-Length", "0")
                    odd.requests.append(OddRequest("HEAD", self.path, dict(self.headers),
                                                   resp.status))
                    self.send_response(resp.status)
                    for name, value in out:
                        self.send_header(name, value)
                    self.send_header("Content-Length", length)
                    self.end_headers()
                    return
                out = [(k, v.replace(odd.upstream.host, odd.host)) if k.lower() == "location"
                       else (k, v) for k, v in out]
                self._send(resp.status, out, data)
            finally:
                conn.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

    return Handler
