"""Concurrent streaming sessions on one server, against one session alone in the same run.

The scripted model streams ``DELTAS`` deltas per run, paced at ``RATE`` deltas/s per stream,
each delta's text its send time (``time.monotonic_ns()``, one clock for every process). A
delta's latency is its arrival at the client minus that stamp.

* Baseline: one session streams alone (after a warm-up run).
* Measured: ``SESSIONS`` sessions (each its own agent kernel, the kernel cap raised to fit,
  every kernel started and warm beforehand by a one-delta turn) stream at once on one server,
  one WebSocket client each. Added latency = concurrent p50 / p99 minus the single session's
  p50 / p99.
* Lost events: every run must deliver exactly ``DELTAS`` ``agent.delta`` events, in order,
  with consecutive ``seq`` (target 0 lost).
* Memory: PSS (``/proc/<pid>/smaps_rollup``) of the server and every process below it (the
  kernels), summed, sampled while all sessions stream; divided by ``SESSIONS`` (target at most
  80 MB per active session).
* The rate limiter's own cost: ``RateLimiter.check()`` against a no-op call, in the same
  process and run, ``LIMITER_CALLS`` times each (target < 0.1 ms per check).

``OPENFOAL_BENCH_SESSIONS`` (default 50) and ``OPENFOAL_BENCH_CONC_DELTAS`` (default 300) set
the size.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from openfoal_kernel.scripted import BurstStep, Reply
from openfoal_server_ext.services.ratelimit import RateLimiter

from ._gateway import ARRIVED, TimedClient, check_completed, gateway
from ._model import STAMP, ModelProcess
from ._table import Row, percentile, print_table

SESSIONS = int(os.environ.get("OPENFOAL_BENCH_SESSIONS", "50"))
DELTAS = int(os.environ.get("OPENFOAL_BENCH_CONC_DELTAS", "300"))
RATE = 100.0
LIMITER_CALLS = 200_000
TARGET_MB = 80.0
TARGET_LIMITER_MS = 0.1
WARM_PARALLEL = 5  # kernels started at once before the measured runs


def _key(i: int) -> str:
    return f"workspace:default/agent:bench/dm:cli:c{i}"


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _tree(root: int) -> set[int]:
    """``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def pss_mb(root: int) -> float:
    """Summed PSS of a process tree, in MB."""
    return sum(_pss_kb(p) for p in _tree(root)) / 1024


async def _stream(model: ModelProcess, client: TimedClient, key: str) -> list[dict[str, Any]]:
    _, events = await client.run("stream", sessionKey=key)
    check_completed(events)
    return [e for e in events if e["event"] == "agent.delta"]


def _lost(deltas: list[dict[str, Any]]) -> int:
    seqs = [e["seq"] for e in deltas]
    in_order = seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True
    return max(0, DELTAS - len(deltas)) + (0 if in_order else 1)


def _latencies(deltas: list[dict[str, Any]]) -> list[float]:
    return [(e[ARRIVED] - int(e["payload"]["delta"])) / 1e6 for e in deltas]


def limiter_cost_ms() -> tuple[float, float]:
    """Per call, ms: the limiter's check() with a generous limit, and a no-op call."""
    limiter = RateLimiter({"read": "1000000000/1000000000"})

    def noop(user: str, method: str) -> None:
        return None

    timings = []
    for fn in (limiter.check, noop):
        started = time.perf_counter_ns()
        for _ in range(LIMITER_CALLS):
            fn("alice", "sessions.list")
        timings.append((time.perf_counter_ns() - started) / LIMITER_CALLS / 1e6)
    return timings[0], timings[1]


async def main() -> bool:
    """Measure, print the table, and return whether the targets were met."""
    check_ms, noop_ms = limiter_cost_ms()
    args = [f"--KernelOrchestrator.max_kernels_per_user={SESSIONS + 10}"]
    with ModelProcess() as model, gateway(model, args=args) as server:
        assert server.proc is not None
        model.pace(RATE, 1)
        one = TimedClient(server.ws_url, token=server.token)
        async with one:
            model.enqueue(Reply.of(BurstStep(count=DELTAS, text=STAMP)))
            await _stream(model, one, "workspace:default/agent:bench/dm:cli:single")  # warm-up
            model.enqueue(Reply.of(BurstStep(count=DELTAS, text=STAMP)))
            single = await _stream(model, one, "workspace:default/agent:bench/dm:cli:single")
        clients = [TimedClient(server.ws_url, token=server.token) for _ in range(SESSIONS)]
        for c in clients:
            await c.__aenter__()
        try:
            # Start every session's kernel first, with a one-delta turn each, a few at a time:
            # the measured runs then overlap in streaming only, not in 50 cold kernel starts
            # (``/reset`` answers without a kernel, so it cannot warm one).
            warming = asyncio.Semaphore(WARM_PARALLEL)

            async def warm(i: int, c: TimedClient) -> None:
                async with warming:
                    model.enqueue(Reply.of(BurstStep(count=1, text="warm")))
                    _, events = await c.run("warm", sessionKey=_key(i))
                    check_completed(events)

            await asyncio.gather(*(warm(i, c) for i, c in enumerate(clients)))
            model.enqueue(*[Reply.of(BurstStep(count=DELTAS, text=STAMP)) for _ in clients])
            peak = 0.0

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, await asyncio.to_thread(pss_mb, server.proc.pid))  # type: ignore[union-attr]
                    await asyncio.sleep(0.5)

            sampler = asyncio.create_task(sample())
            runs = await asyncio.gather(
                *(_stream(model, c, _key(i)) for i, c in enumerate(clients))
            )
            sampler.cancel()
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)
    lost = _lost(single) + sum(_lost(r) for r in runs)
    base = _latencies(single)
    conc = [x for r in runs for x in _latencies(r)]
    per_session = peak / SESSIONS
    rows = [
        Row(
            metric=f"p50 added delta latency, {SESSIONS} sessions at {RATE:g} deltas/s each",
            value=f"+{percentile(conc, 50) - percentile(base, 50):.2f} ms",
            baseline=f"single session p50 {percentile(base, 50):.2f} ms",
            target="informational",
            ok=True,
        ),
        Row(
            metric=f"p99 added delta latency (all: {percentile(conc, 99):.2f} ms)",
            value=f"+{percentile(conc, 99) - percentile(base, 99):.2f} ms",
            baseline=f"single session p99 {percentile(base, 99):.2f} ms",
            target="informational",
            ok=True,
        ),
        Row(
            metric=f"lost events ({SESSIONS + 1} runs x {DELTAS} deltas)",
            value=str(lost),
            baseline="-",
            target="0",
            ok=lost == 0,
        ),
        Row(
            metric=f"server + kernels PSS per active session (peak {peak:.0f} MB total)",
            value=f"{per_session:.1f} MB",
            baseline=f"{SESSIONS} sessions streaming",
            target=f"<= {TARGET_MB:g} MB",
            ok=per_session <= TARGET_MB,
        ),
        Row(
            metric=f"rate limiter check() ({LIMITER_CALLS:,} calls)",
            value=f"{check_ms * 1000:.2f} us",
            baseline=f"no-op call {noop_ms * 1000:.2f} us",
            target=f"< {TARGET_LIMITER_MS:g} ms",
            ok=check_ms - noop_ms < TARGET_LIMITER_MS,
        ),
    ]
    return print_table(f"{SESSIONS} concurrent streaming sessions on one server", rows)


if __name__ == "__main__":
    raise SystemExit(0 if asyncio.run(main()) else 1)
