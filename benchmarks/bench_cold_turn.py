"""A new session's first turn against the same turn on a warm session, with a kernel pool.

Measured: ``agent.run`` without a session (a new one) until its ``agent.completed`` arrives,
with the server's pool of pre-started kernels (``--KernelOrchestrator.pool_size=POOL``) full:
before each cold turn the benchmark waits until the pool has refilled and every kernel
answers, so each sample is a first turn served from a full pool, as when a user opens a new
chat. Baseline, interleaved in the same run: the same turn (same scripted reply) on a session
that has already had a turn. Target (the issue "The spine"): p50 added <= 150 ms.
"""

from __future__ import annotations

import asyncio
import os

from openfoal_kernel.scripted import Reply, TextStep

from ._gateway import TimedClient, check_completed, gateway, settle, wait_kernels
from ._model import ModelProcess
from ._table import Row, percentile, print_table

SAMPLES = int(os.environ.get("OPENFOAL_BENCH_COLD_SAMPLES", "10"))
POOL = int(os.environ.get("OPENFOAL_BENCH_POOL", "1"))
TARGET_MS = 150.0

_REPLY = Reply.of(TextStep(text="Hello! How can I help with your data today?", chunk_size=6))


async def turn_ms(client: TimedClient, model: ModelProcess, **params: str) -> float:
    """Milliseconds from sending ``agent.run`` to the arrival of its ``agent.completed``."""
    model.enqueue(_REPLY)
    sent, events = await client.run_stamped("hello", **params)
    check_completed(events)
    return (events[-1]["_arrivedNs"] - sent) / 1e6


async def main() -> bool:
    """Measure, print the table, and return whether the target was met."""
    cold: list[float] = []
    warm: list[float] = []
    with ModelProcess() as model, gateway(model, pool=POOL) as server:
        async with TimedClient(server.ws_url, token=server.token) as client:
            model.enqueue(_REPLY)
            accepted, _ = await client.run("start the warm session")
            warm_session = accepted["sessionId"]
            kernels = 2 * POOL + 2  # the pool (agent + code kernels) and the warm session's
            for _ in range(3):
                await turn_ms(client, model, sessionId=warm_session)
            for _ in range(SAMPLES):
                # a full pool, all kernels idle, before each first turn
                await asyncio.to_thread(wait_kernels, server, kernels)
                await settle(0.3)
                cold.append(await turn_ms(client, model))
                kernels += 2  # the new session keeps its agent and code kernels
                warm.append(await turn_ms(client, model, sessionId=warm_session))
    added = percentile(cold, 50) - percentile(warm, 50)
    row = Row(
        metric=f"first turn of a new session, pool of {POOL} (cold p50 "
        f"{percentile(cold, 50):.1f} ms, p90 {percentile(cold, 90):.1f} ms)",
        value=f"+{added:.1f} ms p50",
        baseline=f"warm session p50 {percentile(warm, 50):.1f} ms",
        target=f"<= {TARGET_MS:g} ms added",
        ok=added <= TARGET_MS,
    )
    return print_table(f"Cold turn on a new session, {SAMPLES} turns each", [row])


if __name__ == "__main__":
    raise SystemExit(0 if asyncio.run(main()) else 1)
