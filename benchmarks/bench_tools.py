"""Overhead of the tool path: bash.exec and python.exec against their bare baselines.

Run: ``python -m benchmarks.bench_tools [N]`` (N samples each, default 200); ``make bench`` runs it.
Targets: the tool adds at most 5 ms at p50 over a raw ``posix_spawn`` of ``/bin/true`` and over
a bare jupyter_client execute round trip in the same warm kernel.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient

from benchmarks._table import Row, percentile, print_table
from openfoal_kernel.executors.code_kernel import CodeKernel
from openfoal_kernel.executors.local import LocalExecutor
from openfoal_kernel.tools.base import ToolContext
from openfoal_kernel.tools.python import PythonExecTool
from openfoal_kernel.tools.shell import BashExecTool

TARGET_MS = 5.0


def spawn_true() -> None:
    """The baseline: spawn /bin/true and wait for it, nothing else."""
    pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)
    os.waitpid(pid, 0)


async def sample_pair(
    a: Callable[[], Awaitable[object]], b: Callable[[], Awaitable[object]], n: int
) -> tuple[list[float], list[float]]:
    """Milliseconds per call of ``a`` and ``b``, interleaved so load drift hits both alike."""
    for _ in range(10):  # warm-up
        await a()
        await b()
    out_a: list[float] = []
    out_b: list[float] = []
    for _ in range(n):
        for fn, out in ((a, out_a), (b, out_b)):
            t = time.perf_counter()
            await fn()
            out.append((time.perf_counter() - t) * 1000)
    return out_a, out_b


async def bare_execute(client: AsyncKernelClient, code: str) -> None:
    """A bare round trip: execute_request, execute_reply and iopub idle."""
    msg_id = client.execute(code)
    while True:
        reply = await client.get_shell_msg(timeout=10)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    while True:
        try:
            msg = await client.get_iopub_msg(timeout=10)
        except Empty:
            break
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            break


async def main(n: int = 200) -> bool:
    """Measure and print the table; return True when both targets are met."""
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        kernel = await CodeKernel.start(cwd=ws)
        ex = LocalExecutor(ws, code_kernel=kernel)
        ctx = ToolContext(session_id="b", run_id="b", trace_id="b", workspace=ws, executor=ex)
        bash, py = BashExecTool(), PythonExecTool()

        async def raw() -> None:
            spawn_true()

        async def tool_true() -> None:
            res = await bash.invoke({"command": "true"}, ctx)
            assert res.status == "success", res

        spawn, tool = await sample_pair(raw, tool_true, n)

        client = AsyncKernelClient()
        client.load_connection_info(kernel.connection_info)  # type: ignore[arg-type]
        client.start_channels()
        await client.wait_for_ready(timeout=30)

        async def bare() -> None:
            await bare_execute(client, "1+1")

        async def tool_py() -> None:
            res = await py.invoke({"code": "1+1"}, ctx)
            assert res.output == "2\n", res

        bare_ms, py_ms = await sample_pair(bare, tool_py, n)
        client.stop_channels()
        await kernel.aclose()

    rows = []
    for name, measured, base in (
        ("bash.exec `true` via Tool.invoke", tool, spawn),
        ("python.exec `1+1` via Tool.invoke", py_ms, bare_ms),
    ):
        added = percentile(measured, 50) - percentile(base, 50)
        rows.append(
            Row(
                metric=f"{name}: p50 {percentile(measured, 50):.2f} ms, "
                f"p95 {percentile(measured, 95):.2f} ms (added {added:.2f} ms)",
                value=f"{added:.2f} ms added",
                baseline=f"p50 {percentile(base, 50):.2f} ms",
                target=f"<= {TARGET_MS:g} ms added",
                ok=added <= TARGET_MS,
            )
        )
    return print_table(f"Tool overhead, {n} samples each", rows)


def run(argv: list[str] | None = None) -> int:
    """Entry point: print the table; non-zero only on an error, not on a missed target."""
    args = sys.argv[1:] if argv is None else argv
    asyncio.run(main(int(args[0]) if args else 200))
    return 0


if __name__ == "__main__":
    sys.exit(run())
