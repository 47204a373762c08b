"""What an agent kernel sets up once, so that none of its turns (the first one included) pays it.

* One httpx client per event loop, shared by the providers of every run: connections to the
  model stay open between turns, and the TLS context (loading the CA bundle takes tens of
  milliseconds) is built once.
* The imports and tool schemas of a turn, prepared at start-up, while the kernel still waits
  in the gateway's pool rather than during a new session's first turn.
* httpcore tries ``import sniffio`` on every lock and event of every request; without that
  optional package each try searches ``sys.path`` again (about 50 us). Its absence is
  recorded once instead.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import sys

import httpx


class SharedHttpClient:
    """The kernel's httpx client: created ahead of time, bound to the loop that first uses it."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def prepare(self) -> None:
        """Build the client now (outside any turn); it binds to a loop on first use."""
        if self._client is None:
            self._client = httpx.AsyncClient()

    def get(self) -> httpx.AsyncClient:
        """The client for the running loop (pooled connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or (self._loop is not None and self._loop is not loop):
            self._client = httpx.AsyncClient()
        self._loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the client (at kernel shutdown)."""
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()


#: The client every run of this kernel process uses to reach its model.
SHARED_HTTP = SharedHttpClient()


def warm_up() -> None:
    """Do the one-time work of a first turn now: imports, tool schemas, the HTTP client."""
    from ..agent import loop  # noqa: F401  (imported for its side effect: loaded modules)
    from ..executors import local  # noqa: F401
    from .turn import make_tools

    for tool in make_tools().values():
        tool.parameters()
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        # None in sys.modules makes ``import sniffio`` fail at once (asyncio is then assumed,
        # which is what this kernel runs)
        sys.modules["sniffio"] = None  # type: ignore[assignment]
    SHARED_HTTP.prepare()
    # Everything loaded so far lives as long as the kernel: keep it out of the collector's
    # scans, so a full collection during a streamed answer pauses for the turn's objects only
    gc.collect()
    gc.freeze()
