"""A programmable misbehaving registry front: proxies to a real registry unless told otherwise."""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import ssl
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

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
    - `rate_limit_forever(retry_after)`: 429 on every request (None: without Retry-After).
    - `drip(interval, match="")`: answers to paths containing `match` are written one byte at a
      time, `interval` seconds apart (status line and headers too).
    - `huge(size, match="/manifests/", declare=True)`: GETs of paths containing `match` get 200
      with `size` bytes of plausible JSON (a manifest, a token answer or a tag list, by path),
      announced in Content-Length or (declare=False) sent chunked; `huge_sent` counts the bytes
      the socket took.
    - `lie = "digest"`: forwarded answers claim a Docker-Content-Digest that is not the body's;
      `lie = "json"`: forwarded GET bodies are cut in half (broken JSON), headers kept.
    - `redirect(match, location)`: 307 to `location` for paths containing `match`.
    - `tls=True`: served over HTTPS with a self-signed certificate (`url` says https).
    - `tag_pages = N`: tag lists are paged as Docker Hub and distribution 3 do: at most N tags
      (fewer when `n` asks for fewer) after `last`, a relative `Link: <...>; rel="next"` to more.
    - `requests`: OddRequest log, oldest first.
    """

    def __init__(self, upstream: RegistryService, *, tls: bool = False) -> None:
        self.upstream = upstream
        self.tls = tls
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.host = ""
        self.reset()

    @property
    def url(self) -> str:
        """Base URL of the front (plain HTTP on loopback, or HTTPS with `tls=True`)."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def reset(self) -> None:
        """Back to a faithful proxy with an empty request log."""
        self.challenges: list[str] | None = None
        self.expect_basic: tuple[str, str] | None = None
        self.head_digest = True
        self.head_allowed = True
        self.garbage = False
        self.lie: Literal["digest", "json"] | None = None
        self.drip_interval = 0.0
        self.drip_match = ""
        self.huge_size = 0
        self.huge_match = ""
        self.huge_declare = True
        self.huge_sent = 0
        self.redirects: dict[str, str] = {}
        self.tag_pages = 0
        self.requests: list[OddRequest] = []
        self._limited = 0
        self._retry_after: str | None = "1"

    def rate_limit(self, n: int, retry_after: str | None = "1") -> None:
        """Answer the next `n` requests with 429 and this Retry-After (None: no header)."""
        with self._lock:
            self._limited = n
            self._retry_after = retry_after

    def rate_limit_forever(self, retry_after: str | None = "1") -> None:
        """Answer every request with 429 and this Retry-After, until reset."""
        self.rate_limit(1 << 62, retry_after)

    def drip(self, interval: float, match: str = "") -> None:
        """Write answers to paths containing `match` one byte every `interval` seconds."""
        self.drip_interval, self.drip_match = interval, match

    def huge(self, size: int, match: str = "/manifests/", *, declare: bool = True) -> None:
        """Answer GETs of paths containing `match` with `size` bytes of plausible JSON."""
        self.huge_size, self.huge_match, self.huge_declare = size, match, declare

    def redirect(self, match: str, location: str) -> None:
        """Answer paths containing `match` with a 307 to `location`."""
        self.redirects[match] = location

    def _take_limit(self) -> tuple[bool, str | None]:
        with self._lock:
            if self._limited <= 0:
                return False, None
            self._limited -= 1
            return True, self._retry_after

    def start(self) -> None:
        """Serve on a free loopback port in a daemon thread."""
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        if self.tls:
            server.tls = _self_signed_context()
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


class _Server(ThreadingHTTPServer):
    """Serves each connection in its own thread; TLS is set up there, not in the accept loop."""

    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # The wrapper takes the socket over: it is the one to close, whatever happens.
        wrapped = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            wrapped.do_handshake()
            super().finish_request(wrapped, client_address)
        except (OSError, ValueError):
            pass  # plain HTTP on the TLS port, or the client gave up: nothing to serve
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that hangs up on a misbehaving answer is what the tests want."""


def _self_signed_context() -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd-registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as directory:
        chain = Path(directory) / "odd.pem"
        chain.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + cert.public_bytes(serialization.Encoding.PEM)
        )
        context.load_cert_chain(chain)
    return context


def _huge_prefix_suffix(path: str) -> tuple[bytes, bytes]:
    """Plausible JSON around padding: what a client would accept if it read it all."""
    if "/token" in path:
        return b'{"token":"', b'"}'
    if "/tags/list" in path:
        return b'{"name":"odd","tags":["', b'"]}'
    return (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"annotations":{"pad":"',
        b'"}}',
    )


def _tag_page(path: str, data: bytes, cap: int) -> tuple[bytes, str | None]:
    """One page of a full tag list after `last`, and the relative link to the next, if any."""
    url = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(url.query)
    size = min(cap, int(query.get("n", [cap])[0]) or cap)
    listing = json.loads(data)
    tags = sorted(listing.get("tags") or [])
    last = query.get("last", [""])[0]
    rest = [t for t in tags if t > last] if last else tags
    page = rest[:size]
    listing["tags"] = page
    link = None
    if len(rest) > size:
        link = f"{url.path}?" + urllib.parse.urlencode({"n": size, "last": page[-1]})
    return json.dumps(listing).encode(), link


def _handler_for(odd: OddRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            """Quiet: the request log is `odd.requests`."""

        def _emit(self, status: int, headers: list[tuple[str, str]], body: bytes,
                  length: int | None = None) -> None:
            """Write one answer (dripped when told to); Content-Length: `length` or the body's."""
            odd.requests.append(OddRequest(self.command, self.path, dict(self.headers), status))
            reason = self.responses.get(status, ("",))[0]
            head = [f"HTTP/1.1 {status} {reason}"]
            head += [f"{name}: {value}" for name, value in headers]
            head.append(f"Content-Length: {len(body) if length is None else length}")
            raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            if self.command != "HEAD":
                raw += body
            if odd.drip_interval and odd.drip_match in self.path:
                self.close_connection = True
                try:
                    for i in range(len(raw)):
                        self.wfile.write(raw[i:i + 1])
                        self.wfile.flush()
                        time.sleep(odd.drip_interval)
                except OSError:
                    pass  # the client gave up, as it should
                return
            self.wfile.write(raw)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self._emit(status, headers, body)

        def _send_huge(self) -> None:
            """`huge_size` bytes of JSON-ish body, announced or chunked, till the client quits."""
            odd.requests.append(OddRequest(self.command, self.path, dict(self.headers), 200))
            prefix, suffix = _huge_prefix_suffix(self.path)
            pad = odd.huge_size - len(prefix) - len(suffix)
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if odd.huge_declare:
                self.send_header("Content-Length", str(odd.huge_size))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = 64 * 1024
            pads = [b"a" * min(block, pad - i) for i in range(0, pad, block)]
            pieces = [prefix, *pads, suffix]
            try:
                for piece in pieces:
                    framed = piece if odd.huge_declare else (
                        f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(framed)
                    odd.huge_sent += len(piece)
                if not odd.huge_declare:
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass

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
            limited, retry_after = odd._take_limit()
            if limited:
                extra = [] if retry_after is None else [("Retry-After", retry_after)]
                self._send(429, extra + [("Content-Type", "application/json")],
                           b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')
                return
            for match, location in odd.redirects.items():
                if match in self.path:
                    self._send(307, [("Location", location)], b"")
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
            if odd.huge_size and self.command == "GET" and odd.huge_match in self.path:
                self._send_huge()
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
                if odd.lie == "digest":
                    wrong = "sha256:" + hashlib.sha256(b"not the body" + data).hexdigest()
                    out = [(k, v) for k, v in out if k.lower() != "docker-content-digest"]
                    out.append(("Docker-Content-Digest", wrong))
                elif odd.lie == "json" and self.command == "GET":
                    data = data[: len(data) // 2]
                if self.command == "HEAD":
                    if not odd.head_digest:
                        out = [(k, v) for k, v in out if k.lower() != "docker-content-digest"]
                    # HEAD carries the GET's length; keep it as the upstream sent it.
                    self._emit(resp.status, out, b"", int(resp.getheader("Content-Length", "0")))
                    return
                out = [(k, v.replace(odd.upstream.host, odd.host)) if k.lower() == "location"
                       else (k, v) for k, v in out]
                if odd.tag_pages and "/tags/list" in self.path and resp.status == 200:
                    data, link = _tag_page(self.path, data, odd.tag_pages)
                    if link:
                        out.append(("Link", f'<{link}>; rel="next"'))
                self._send(resp.status, out, data)
            finally:
                conn.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

    return Handler
