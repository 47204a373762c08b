"""Real HTTP(S) servers on loopback for the http.request tests."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    """Routes: /hello, /echo, /big, /gzip, /slow, /redirect?to=&code=, /hop/N."""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/hello":
            self._send(200, f"hello host={self.headers.get('Host')}".encode())
        elif url.path == "/echo":
            auth = self.headers.get("Authorization", "-")
            text = f"{self.command} body={body.decode()} auth={auth}"
            self._send(200, text.encode())
        elif url.path == "/big":
            self._send(200, b"b" * 300_000)
        elif url.path == "/gzip":
            # 50 MB of zeros, about 50 KB on the wire: must not be inflated in full.
            data = gzip.compress(b"0" * 50_000_000, compresslevel=9)
            self._send(200, data, {"Content-Encoding": "gzip"})
        elif url.path == "/slow":
            time.sleep(3)
            self._send(200, b"late")
        elif url.path == "/redirect":
            self._send(int(q.get("code", "302")), b"", {"Location": q["to"]})
        elif url.path.startswith("/hop/"):
            n = int(url.path.rsplit("/", 1)[1])
            if n == 0:
                self._send(200, b"landed")
            else:
                self._send(302, b"", {"Location": f"/hop/{n - 1}"})
        else:
            self._send(404, b"no route")

    do_GET = do_POST = do_HEAD = do_PUT = _route


class CountingServer(ThreadingHTTPServer):
    """An HTTP server that counts the connections it accepted."""

    daemon_threads = True

    def __init__(self, addr: tuple[str, int], family: int = socket.AF_INET) -> None:
        self.address_family = family
        self.hits = 0
        super().__init__(addr, Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.hits += 1
        return True


@contextmanager
def serve(
    host: str = "127.0.0.1", family: int = socket.AF_INET, tls: ssl.SSLContext | None = None
) -> Iterator[CountingServer]:
    """Run a :class:`CountingServer` in a thread for the ``with`` block."""
    server = CountingServer((host, 0), family)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
