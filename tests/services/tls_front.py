"""A mutual-TLS front for an engine's unix socket: what `dockerd --tlsverify -H tcp://...` asks of
a client (a certificate from its CA), without restarting the engine.

It listens on 127.0.0.1 with a server certificate from a CA of the test's own, requires a client
certificate from that CA, and pipes each accepted connection to the socket, in threads of the
test process. Failed handshakes are counted, never printed.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

from tests.services.tls_registry import issue, make_ca

_CHUNK = 65536


class TlsFront:
    """`tcp://127.0.0.1:<port>` in front of the unix socket `target`; `stop()` closes it."""

    def __init__(self, target: str, directory: Path) -> None:
        self.target = target
        self.ca = make_ca(directory, "DockWarden test engine CA")
        server = issue(self.ca, directory / "server.pem", directory / "server-key.pem",
                       ip="127.0.0.1")
        self.client = issue(self.ca, directory / "client.pem", directory / "client-key.pem",
                            client=True)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(server.cert, server.key)
        self._tls.load_verify_locations(self.ca.cert)
        self._tls.verify_mode = ssl.CERT_REQUIRED
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"
        self.refused = 0  # handshakes that failed (no or a wrong client certificate)
        self._refusal = threading.Event()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def context_files(self, *, client: bool = True) -> dict[str, bytes]:
        """ca.pem, and with `client` cert.pem and key.pem, as a Docker context holds them."""
        files = {"ca.pem": self.ca.cert.read_bytes()}
        if client:
            files |= {"cert.pem": self.client.cert.read_bytes(),
                      "key.pem": self.client.key.read_bytes()}
        return files

    def _accept(self) -> None:
        while not self._stopped:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            outside = self._tls.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            self._refusal.set()
            raw.close()
            return
        inside = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            inside.connect(self.target)
        except OSError:
            outside.close()
            inside.close()
            return
        threading.Thread(target=_pipe, args=(inside, outside), daemon=True).start()
        _pipe(outside, inside)

    def saw_refusal(self, timeout: float = 10.0) -> bool:
        """Whether a handshake was refused, waiting for it: with TLS 1.3 the client may fail on
        its first read before this side's thread has counted the refusal."""
        return self._refusal.wait(timeout)

    def stop(self) -> None:
        """Stop accepting (open connections end with their clients)."""
        self._stopped = True
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()
