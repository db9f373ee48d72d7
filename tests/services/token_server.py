"""A Docker token server (RS256 JWTs) for the token-auth registry, served from a thread.

GET  /token?service=S&scope=A&scope=B       anonymous, or with Basic credentials
POST /token grant_type=refresh_token|password (OAuth2 form, scopes space-joined)

Anonymous clients get `pull` on repositories under "public/"; the user gets what it asks.
Bad credentials or an unknown refresh token get 401. Every request is logged in `requests`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PUBLIC_PREFIX = "public/"


class TokenRequest(NamedTuple):
    """One request the token server saw: (method, scopes, user)."""

    method: str
    scopes: tuple[str, ...]
    user: str | None


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key id distribution matches a JWT's `kid` against (libtrust's format)."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def make_signing_cert(common_name: str) -> tuple[rsa.RSAPrivateKey, bytes]:
    """A fresh RSA key and a self-signed certificate (PEM) for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """`repository:name:pull,push` -> ("repository", "name", ["pull", "push"])."""
    kind, _, rest = scope.partition(":")
    name, sep, actions = rest.rpartition(":")
    if not kind or not sep or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


class TokenServer:
    """Issues registry tokens for one service; start() serves on a free loopback port."""

    def __init__(self, *, service: str, issuer: str, users: dict[str, str],
                 cert_path: Path) -> None:
        self.service = service
        self.issuer = issuer
        self.users = dict(users)
        self.refresh_tokens = {secrets.token_urlsafe(24): user for user in users}
        self.expires_in = 300
        self.requests: list[TokenRequest] = []
        self._key, cert_pem = make_signing_cert(f"{issuer} signing key")
        self.kid = libtrust_key_id(self._key.public_key())
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(cert_pem)
        self.cert_path = cert_path
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.realm = ""

    def identity_token(self, user: str) -> str:
        """The refresh token (docker's identitytoken) this server accepts for `user`."""
        return next(t for t, u in self.refresh_tokens.items() if u == user)

    def start(self) -> None:
        """Serve in a daemon thread on 127.0.0.1."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self.realm = f"http://127.0.0.1:{server.server_address[1]}/token"
        self._thread = threading.Thread(target=server.serve_forever, name="token-server",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving; idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def grant(self, user: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        """The access entries for `user` (None: anonymous) asking for `scopes`."""
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            if user is None:
                public = kind == "repository" and name.startswith(PUBLIC_PREFIX)
                allowed = ["pull"] if public else []
                actions = [a for a in actions if a in allowed]
            if actions:
                access.append({"type": kind, "name": name, "actions": actions})
        return access

    def issue(self, user: str | None, scopes: list[str]) -> dict[str, Any]:
        """A token answer body with a freshly signed JWT."""
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": user or "", "aud": self.service,
            "exp": now + self.expires_in, "nbf": now - 5, "iat": now,
            "jti": secrets.token_hex(8), "access": self.grant(user, scopes),
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        issued = dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z")
        return {"token": token, "access_token": token, "expires_in": self.expires_in,
                "issued_at": issued}


def _handler_for(ts: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            """Quiet: pytest output stays clean."""

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="dockwarden-test-token"')
            self.end_headers()
            self.wfile.write(data)

        def _basic_user(self) -> tuple[bool, str | None]:
            header = self.headers.get("Authorization", "")
            if not header.lower().startswith("basic "):
                return True, None
            try:
                user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False, None
            return ts.users.get(user) == password, user

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            url = urlsplit(self.path)
            if url.path != "/token":
                self._reply(404, {"error": "not_found"})
                return
            query = parse_qs(url.query)
            scopes = query.get("scope", [])
            ok, user = self._basic_user()
            ts.requests.append(TokenRequest("GET", tuple(scopes), user))
            if not ok:
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                              "message": "invalid credentials"}]})
                return
            body = ts.issue(user, scopes)
            if user is not None and query.get("offline_token") == ["true"]:
                body["refresh_token"] = ts.identity_token(user)
            self._reply(200, body)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if urlsplit(self.path).path != "/token":
                self._reply(404, {"error": "not_found"})
                return
            scopes = " ".join(form.get("scope", [])).split()
            grant = (form.get("grant_type") or [""])[0]
            user: str | None = None
            if grant == "refresh_token":
                user = ts.refresh_tokens.get((form.get("refresh_token") or [""])[0])
            elif grant == "password":
                name = (form.get("username") or [""])[0]
                if ts.users.get(name) == (form.get("password") or [""])[0]:
                    user = name
            ts.requests.append(TokenRequest("POST", tuple(scopes), user))
            if user is None:
                self._reply(401, {"error": "invalid_grant"})
                return
            body = ts.issue(user, scopes)
            body["refresh_token"] = ts.identity_token(user)
            self._reply(200, body)

    return Handler
