"""The benchmarks' model: the scripted model server, in its own process, stamping send times.

It serves the scripted server's real OpenAI and Anthropic endpoints and control API
(``/_scripted/enqueue``), with two additions the streaming benchmarks need:

* **send stamps**: every occurrence of :data:`STAMP` in outgoing stream bytes is replaced, at
  the moment those bytes are written to the socket, by ``time.monotonic_ns()`` in decimal. A
  delta whose text is :data:`STAMP` therefore arrives carrying its own send time on this
  machine's monotonic clock (system-wide on Linux, so comparable across processes).
* **pacing**: ``POST /_bench/pace {"rate": R, "group": G}`` makes bursts go out at ``R``
  deltas/s, ``G`` frames per write, instead of as fast as the socket takes them (``rate`` 0).
* **no Nagle**: streams are written with ``TCP_NODELAY``, as real model servers do (see
  :meth:`StampingModelHandler.send`).

It runs as a separate process (``python -m benchmarks._model``) so that its event loop does
not share a GIL with the benchmark client that measures arrivals.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from openfoal_kernel.scripted import Reply
from openfoal_kernel.scripted.handlers import (
    EnqueueHandler,
    ModelHandler,
    NotFoundHandler,
    RequestsHandler,
    ResetHandler,
)
from openfoal_kernel.scripted.state import ServerState

#: Placeholder replaced by the send time (``time.monotonic_ns()``) as bytes leave the model.
STAMP = "@@stamp@@"
_FRAME_END = "\n\n"


@dataclass
class Pace:
    """How fast bursts go out: ``rate`` deltas/s (0: unpaced), ``group`` frames per write."""

    rate: float = 0.0
    group: int = 10


class StampingModelHandler(ModelHandler):
    """A model endpoint that stamps send times and paces bursts."""

    def initialize(self, state: ServerState, api: Any, pace: Pace) -> None:  # type: ignore[override]
        """Keep the pacing settings besides what the scripted handler keeps."""
        super().initialize(state, api)
        self.pace = pace
        self._next_at: float | None = None

    async def send(self, data: str) -> None:
        """Write (and stamp) the frames, paced when a rate is set."""
        if not self.started:
            # Stream without Nagle's algorithm, as model servers on asyncio transports (which
            # set TCP_NODELAY) do: tornado keeps it on while a response streams, and small
            # writes then wait for the reader's delayed ACKs, stalling the stream for tens
            # of ms at a time, an artefact of the stand-in rather than of what it stands for.
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None:
                stream.set_nodelay(True)
        if STAMP not in data or self.pace.rate <= 0:
            await super().send(data.replace(STAMP, str(time.monotonic_ns())))
            return
        frames = data.split(_FRAME_END)
        tail = frames.pop()  # "" after the last frame's terminator
        group = max(1, self.pace.group)
        period = group / self.pace.rate
        loop = asyncio.get_running_loop()
        for i in range(0, len(frames), group):
            if self._next_at is None:
                self._next_at = loop.time()
            delay = self._next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # deadlines, not fixed sleeps: a late group does not slow the average rate
            self._next_at += period
            chunk = _FRAME_END.join(frames[i : i + group]) + _FRAME_END
            await super().send(chunk.replace(STAMP, str(time.monotonic_ns())))
        if tail:
            await super().send(tail)


class PaceHandler(RequestHandler):
    """``POST /_bench/pace {"rate": R, "group": G}``."""

    def initialize(self, pace: Pace) -> None:
        """Keep the shared pacing settings."""
        self.pace = pace

    def post(self) -> None:
        """Set the pace of the following bursts."""
        body = json.loads(self.request.body or b"{}")
        self.pace.rate = float(body.get("rate", 0.0))
        self.pace.group = int(body.get("group", 10))
        self.finish({"rate": self.pace.rate, "group": self.pace.group})


def make_app(state: ServerState, pace: Pace) -> Application:
    """The scripted server's routes, with stamping model endpoints and the pace control."""
    model = {"state": state, "pace": pace}
    return Application(
        [
            (r"/v1/chat/completions", StampingModelHandler, {**model, "api": "openai"}),
            (r"/v1/messages", StampingModelHandler, {**model, "api": "anthropic"}),
            (r"/_scripted/enqueue", EnqueueHandler, {"state": state}),
            (r"/_scripted/requests", RequestsHandler, {"state": state}),
            (r"/_scripted/reset", ResetHandler, {"state": state}),
            (r"/_bench/pace", PaceHandler, {"pace": pace}),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args={"state": state},
        log_function=lambda handler: None,
    )


async def serve() -> None:
    """Serve on a free loopback port until killed; print the port first."""
    sockets = bind_sockets(0, address="127.0.0.1")
    server = HTTPServer(make_app(ServerState(None, None), Pace()))
    server.add_sockets(sockets)
    print(f"READY {sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


class ModelProcess:
    """Starts ``python -m benchmarks._model`` and scripts it over HTTP."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        # one client for the control calls: a new one per call would cost tens of ms of CPU
        self._http = httpx.Client(trust_env=False, timeout=10)

    def start(self) -> ModelProcess:
        """Start the process and wait for its port."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._model"], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the benchmark model did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        """Stop the process."""
        self._http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def __enter__(self) -> ModelProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def openai_base_url(self) -> str:
        """The OpenAI base URL of the model."""
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies, answered in order."""
        body = {"replies": [r.model_dump(mode="json") for r in replies]}
        self._http.post(
            f"http://127.0.0.1:{self.port}/_scripted/enqueue", json=body
        ).raise_for_status()

    def pace(self, rate: float, group: int = 10) -> None:
        """Pace the following bursts (``rate`` 0: as fast as the socket takes them)."""
        self._http.post(
            f"http://127.0.0.1:{self.port}/_bench/pace", json={"rate": rate, "group": group}
        ).raise_for_status()

    def reset(self) -> None:
        """Forget queued replies and recorded requests."""
        self._http.post(f"http://127.0.0.1:{self.port}/_scripted/reset").raise_for_status()


if __name__ == "__main__":
    asyncio.run(serve())
