"""The kernel's one httpx client, shared by the model providers of every run.

Connections to the model stay open between turns, and the TLS context (loading the CA bundle
takes tens of milliseconds) is built once. Both the turn builder and the warm-up use it.
"""

from __future__ import annotations

import asyncio

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
