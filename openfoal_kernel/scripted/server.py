"""The scripted model server: both model APIs on loopback, in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from .handlers import make_app
from .script import Reply, ScriptedRequest
from .state import Responder, ServerState

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


class ScriptedModelServer:
    """Speaks the OpenAI chat-completions and Anthropic messages HTTP APIs from scripted replies.

    Replies queued with :meth:`enqueue` answer requests in order; when none is queued,
    ``responder(request)`` answers (by default an echo of the last user message). The server
    runs its own event loop in a daemon thread, so it works the same from sync and async code.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._state = ServerState(responder, api_key)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> ScriptedModelServer:
        """Bind the port and start serving; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("scripted model server already started")
        self._ready.clear()
        self._failure = None
        # Bound here, not in the thread, so a busy port fails in the caller.
        sockets = bind_sockets(self.port, address=self.host, family=socket.AF_UNSPEC)
        self.port = sockets[0].getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(sockets,), name=f"scripted-model-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("scripted model server did not start")
        if self._failure is not None:
            raise RuntimeError("scripted model server failed to start") from self._failure
        return self

    def stop(self) -> None:
        """Close every connection and stop the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            loop.call_soon_threadsafe(stopping.set)
        thread.join(_STOP_TIMEOUT_S)
        self._thread = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(sockets))
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._failure = exc
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, sockets: list[socket.socket]) -> None:
        self._stopping = asyncio.Event()
        server = HTTPServer(make_app(self._state))
        server.add_sockets(sockets)
        self._ready.set()
        await self._stopping.wait()
        server.stop()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), _STOP_TIMEOUT_S)
        # Handlers still playing a long delay are cancelled rather than awaited.
        me = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not me]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- addresses --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the Anthropic base URL)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI base URL: ``base_url + "/v1"``."""
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic base URL (the client adds ``/v1/messages``)."""
        return self.base_url

    @property
    def api_key(self) -> str | None:
        """The key clients must send, or ``None`` when any key is accepted."""
        return self._state.api_key

    # -- scripting --------------------------------------------------------------------------

    def enqueue(self, *replies: Reply | dict[str, Any]) -> None:
        """Queue replies, answered in order (dicts are validated as :class:`Reply`)."""
        self._state.enqueue(self._coerce(replies))

    @staticmethod
    def _coerce(replies: Iterable[Reply | dict[str, Any]]) -> list[Reply]:
        return [r if isinstance(r, Reply) else Reply.model_validate(r) for r in replies]

    @property
    def requests(self) -> list[ScriptedRequest]:
        """The requests received on the model endpoints, oldest first (refused ones too)."""
        return self._state.requests()

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        return self._state.pending()

    def reset(self) -> None:
        """Forget queued replies and recorded requests."""
        self._state.reset()
