"""The scripted server's shared state: queued replies and recorded requests, safe across threads."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

from .script import Reply, ScriptedRequest, TextStep

#: Answers a request when no reply is queued.
Responder = Callable[[ScriptedRequest], Reply]


def echo_responder(request: ScriptedRequest) -> Reply:
    """The default answer: echo the last user message."""
    users = [m.content for m in request.transcript() if m.role == "user"]
    return Reply.of(TextStep(text=f"echo: {users[-1] if users else ''}"))


class ServerState:
    """Queued replies (FIFO), the fallback responder, and every request received."""

    def __init__(self, responder: Responder | None, api_key: str | None) -> None:
        self.responder: Responder = responder or echo_responder
        self.api_key = api_key
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[ScriptedRequest] = []

    def enqueue(self, replies: Iterable[Reply]) -> int:
        """Queue replies; returns how many are now pending."""
        with self._lock:
            self._queue.extend(replies)
            return len(self._queue)

    def next_reply(self, request: ScriptedRequest) -> Reply:
        """The oldest queued reply, else the responder's answer to ``request``."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.responder(request)

    def record(self, request: ScriptedRequest) -> None:
        """Remember a received request."""
        with self._lock:
            self._requests.append(request)

    def requests(self) -> list[ScriptedRequest]:
        """A snapshot of the received requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def pending(self) -> int:
        """How many replies are queued."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget queued replies and recorded requests."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
