"""A test proxy between a user's server and the cloud: answers pushed batches with 500,
hangs, refuses on content, duplicates them, and records the batches it saw (to replay them
later)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class SyncProxy:
    """Forwards POSTs to ``target`` according to ``mode``."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/") + "/"
        self.mode = "pass"  # pass | fail500 | hang | refuse400 | duplicate | slow
        self.forwarded = threading.Event()  # set once a "slow" request reached the cloud
        self.seen: list[tuple[str, bytes, dict[str, str]]] = []
        self.answers: list[int] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization",)}
                headers["Content-Type"] = "application/json"
                status, text = proxy.handle(self.path, body, headers)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the pushing server gave up waiting (the "hang" mode)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def handle(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """One request: a pushed batch by the current mode; anything else (a server asking
        for its conflicts) straight through, unrecorded."""
        if not path.rstrip("/").endswith("sync/batches"):
            r = self.forward(path, body, headers)
            return r.status_code, r.content
        mode = self.mode
        if mode == "fail500":
            self.answers.append(500)
            return 500, b'{"ok": false}'
        if mode == "hang":
            time.sleep(4)  # past the pushing server's timeout
            self.answers.append(504)
            return 504, b'{"ok": false}'
        if mode == "refuse400":
            self.answers.append(400)
            err = b'{"ok": false, "error": {"code": "INVALID_REQUEST", "message": "refused"}}'
            return 400, err
        self.seen.append((path, body, headers))
        r = self.forward(path, body, headers)
        if mode == "duplicate":
            r = self.forward(path, body, headers)
        if mode == "slow":  # the cloud took it; the answer comes too late (or to no one)
            self.forwarded.set()
            time.sleep(4)
        self.answers.append(r.status_code)
        return r.status_code, r.content

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """Send a request on to the cloud."""
        return httpx.post(self.target + path.lstrip("/"), content=body, headers=headers, timeout=60)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
