"""A real gateway for the benchmarks: a ``jupyter server`` with OpenFoal, and a timing client."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from jupyter_client import BlockingKernelClient, find_connection_file

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.protocol.events import TERMINAL_EVENTS
from openfoal_testing.plugin import SCRIPTED_MODEL, ServerProcess

from ._model import ModelProcess

#: Key a :class:`TimedClient` adds to each received frame: its arrival, ``time.monotonic_ns()``.
ARRIVED = "_arrivedNs"
#: The longest a benchmarked run may take.
RUN_TIMEOUT_S = 120.0


#: Benchmarks measure the server, not its rate limits (a later ``args`` entry overrides).
UNLIMITED = [f"--OpenFoalApp.rate_limits={c}=0" for c in ("read", "write", "run")]


@contextmanager
def gateway(
    model: ModelProcess, *, args: list[str] | None = None, pool: int = 1
) -> Iterator[ServerProcess]:
    """A jupyter server with the gateway pointed at ``model``, its kernel pool filled."""
    with tempfile.TemporaryDirectory(prefix="openfoal-bench-") as tmp:
        env = {
            "OPENFOAL_MODEL": SCRIPTED_MODEL,
            "OPENAI_BASE_URL": model.openai_base_url,
            "OPENAI_API_KEY": "sk-bench",
            "OPENFOAL_FALLBACK_MODELS": "",
        }
        server = ServerProcess(
            Path(tmp) / "root",
            env=env,
            args=[f"--KernelOrchestrator.pool_size={pool}", *UNLIMITED, *(args or [])],
        )
        server.start()
        try:
            wait_kernels(server, 2 * pool)  # an agent kernel and a code kernel per pool slot
            yield server
        except BaseException:
            _print_log_tail(server.log_path)
            raise
        finally:
            server.stop()


def _print_log_tail(path: Path, lines: int = 60) -> None:
    """The end of a failed benchmark's server log (its folder goes with the run)."""
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return
    print(f"--- last {len(tail)} lines of the server log ---", *tail, sep="\n", file=sys.stderr)


def kernels(server: ServerProcess) -> list[dict[str, Any]]:
    """The server's running kernels (Jupyter's REST API)."""
    for _ in range(5):
        r = httpx.get(
            server.url + "api/kernels",
            headers={"Authorization": f"token {server.token}"},
            timeout=10,
        )
        # Jupyter's listing can fail with a 500 while a kernel is being added or removed
        # (its model is read between the two); asking again answers
        if r.status_code < 500:
            break
        time.sleep(0.2)
    r.raise_for_status()
    return list(r.json())


def wait_kernels(server: ServerProcess, count: int, timeout: float = 60.0) -> None:
    """Wait until at least ``count`` kernels run and each answers ``kernel_info``.

    A pooled code kernel has no client until a session takes it, so Jupyter reports it as
    ``starting`` for good; asking it directly tells when its start-up is really over.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = kernels(server)
        if len(running) >= count:
            for k in running:
                if k["execution_state"] != "idle":
                    _wait_ready(k["id"], max(1.0, deadline - time.monotonic()))
            return
        time.sleep(0.1)
    raise RuntimeError(f"the kernel pool did not fill ({count} kernels) in {timeout:g}s")


def _wait_ready(kernel_id: str, timeout: float) -> None:
    client = BlockingKernelClient()
    client.load_connection_file(find_connection_file(f"kernel-{kernel_id}.json"))
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
    finally:
        client.stop_channels()


class TimedClient(GatewayClient):
    """The project's protocol client, stamping each frame's arrival on the monotonic clock.

    Events that carry a ``runId`` are collected per run as they are read (no queue hop, no
    timer per frame), so the benchmark's own client costs the machine as little as it can.
    """

    def __init__(self, url: str, *, token: str | None = None) -> None:
        super().__init__(url, token=token, client_name="openfoal-bench")
        self._runs: dict[str, list[dict[str, Any]]] = {}
        self._ended: dict[str, asyncio.Future[None]] = {}

    def _end_of(self, run_id: str) -> asyncio.Future[None]:
        if run_id not in self._ended:
            self._ended[run_id] = asyncio.get_running_loop().create_future()
        return self._ended[run_id]

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for text in self.ws:
                arrived = time.monotonic_ns()
                frame = json.loads(text)
                frame[ARRIVED] = arrived
                if frame.get("type") == "res":
                    fut = self._pending.pop(frame.get("id", ""), None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame)
                        continue
                run_id = (frame.get("payload") or {}).get("runId")
                if run_id is None:
                    self.events.put_nowait(frame)
                    continue
                self._runs.setdefault(run_id, []).append(frame)
                if frame.get("event") in TERMINAL_EVENTS:
                    end = self._end_of(run_id)
                    if not end.done():
                        end.set_result(None)
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("gateway connection closed"))

    async def run(self, text: str, **params: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Start a run and collect its events until it ends."""
        accepted = await self.request("agent.run", {"input": text, **params})
        run_id = accepted["runId"]
        await asyncio.wait_for(self._end_of(run_id), RUN_TIMEOUT_S)
        del self._ended[run_id]
        return accepted, self._runs.pop(run_id)

    async def run_stamped(self, text: str, **params: Any) -> tuple[int, list[dict[str, Any]]]:
        """Start a run; return when ``agent.run`` was sent (ns) and the run's events."""
        sent = time.monotonic_ns()
        _, events = await self.run(text, **params)
        return sent, events


def check_completed(events: list[dict[str, Any]]) -> None:
    """Fail loudly when a measured run did not complete."""
    last = events[-1] if events else {}
    if last.get("event") != "agent.completed":
        raise RuntimeError(f"the run did not complete: {json.dumps(last)[:500]}")


async def settle(seconds: float = 0.2) -> None:
    """Let write-behind commits and background work of the previous step finish."""
    await asyncio.sleep(seconds)
