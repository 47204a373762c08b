"""A client that never reads is closed (1013) once its send buffer is full; memory stays flat."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from openfoal_testing.plugin import ServerProcess

#: memory.get answers at most 1 MiB of a file: ~1 MB replies, as many as 4 MB ones would need
REPLY_BYTES = 1_000_000
REQUESTS = 600
#: The unbounded server grew by REQUESTS * REPLY_BYTES (600 MB); bounded, it stays far under.
MAX_GROWTH_BYTES = 200 * 1024 * 1024


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _fill_memory(server: ServerProcess) -> None:
    """Make MEMORY.md about REPLY_BYTES long, so each ``memory.get`` answers ~1 MB."""
    chunk = "x" * 60_000
    for _ in range(REPLY_BYTES // len(chunk) + 1):
        r = server.api(
            "memory.appendDaily",
            {"text": chunk, "alsoLongTerm": True, "idempotencyKey": uuid.uuid4().hex},
        )
        assert r.status_code == 200, r.text
    got = server.api("memory.get", {"path": "MEMORY.md"}).json()["payload"]["content"]
    assert len(got) >= REPLY_BYTES


@pytest.mark.asyncio
async def test_slow_consumer_is_closed_and_memory_stays_bounded(server_factory) -> None:
    server: ServerProcess = server_factory(args=["--OpenFoalApp.start_pool=False"])
    assert server.proc is not None
    _fill_memory(server)
    before = _rss(server.proc.pid)
    # max_queue=1: the client library stops reading the socket after one unread frame
    async with websockets.connect(
        server.ws_url,
        additional_headers={"Authorization": f"token {server.token}"},
        max_size=None,
        max_queue=1,
    ) as ws:
        await ws.send(
            json.dumps(
                {"type": "req", "id": "c", "method": "connect", "params": {"client": {"name": "s"}}}
            )
        )
        assert json.loads(await ws.recv())["ok"] is True
        for i in range(REQUESTS):
            await ws.send(
                json.dumps(
                    {
                        "type": "req",
                        "id": f"m{i}",
                        "method": "memory.get",
                        "params": {"path": "MEMORY.md"},
                    }
                )
            )
        # never read until the server has given up on this client
        peak = before
        deadline = time.monotonic() + 120
        while "closing slow OpenFoal client" not in server.log():
            assert time.monotonic() < deadline, server.log()
            peak = max(peak, _rss(server.proc.pid))
            await asyncio.sleep(0.2)
        for _ in range(10):  # the tasks still answering are dropped, not buffered
            peak = max(peak, _rss(server.proc.pid))
            await asyncio.sleep(0.2)
        answered = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                answered += frame["type"] == "res"
        assert closed.value.rcvd is not None, "no close frame"
        assert closed.value.rcvd.code == 1013 and "too slow" in closed.value.rcvd.reason
        assert answered < REQUESTS
    assert peak - before < MAX_GROWTH_BYTES, (before, peak)
    # the server is still well and answers others
    assert server.api("sessions.list", {"limit": 1}).status_code == 200
