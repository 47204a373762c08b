"""Time to first token through the gateway and the agent kernel, against the bare model.

Measured: a client sends ``agent.run`` on a warm session and waits for the first ``agent.delta``
(send and arrival on the monotonic clock of this machine). Baseline, interleaved with it in the
same run: a direct streaming httpx request to the same scripted model, from request sent to the
first content chunk. The model is the scripted model server in its own process; every reply is
queued before its request, outside the timed window. The session's context is reset every
``RESET_EVERY`` turns so that the growing transcript of hundreds of turns does not dominate.
Target (the issue "The spine"): p50 added <= 3 ms, p99 added <= 15 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx

from openfoal_kernel.scripted import Reply, TextStep

from ._gateway import ARRIVED, TimedClient, check_completed, gateway, settle
from ._model import ModelProcess
from ._table import Row, percentile, print_table

SAMPLES = int(os.environ.get("OPENFOAL_BENCH_TTFT_SAMPLES", "300"))
WARMUP = 10
RESET_EVERY = 25
P50_TARGET_MS = 3.0
P99_TARGET_MS = 15.0

_REPLY = Reply.of(TextStep(text="The first token, then a few more.", chunk_size=8))


async def direct_ttft(client: httpx.AsyncClient, model: ModelProcess) -> float:
    """Milliseconds from sending a streaming request to its first content chunk."""
    model.enqueue(_REPLY)
    body = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    first: float | None = None
    started = time.monotonic_ns()
    async with client.stream("POST", model.openai_base_url + "/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if first is None and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = (time.monotonic_ns() - started) / 1e6
    if first is None:
        raise RuntimeError("the direct request streamed no content")
    return first


async def gateway_ttft(client: TimedClient, model: ModelProcess, session_id: str) -> float:
    """Milliseconds from sending ``agent.run`` to the first ``agent.delta`` arriving."""
    model.enqueue(_REPLY)
    sent, events = await client.run_stamped("go", sessionId=session_id)
    check_completed(events)
    first = next(e for e in events if e["event"] == "agent.delta")
    return (first[ARRIVED] - sent) / 1e6


async def main() -> bool:
    """Measure, print the table, and return whether the targets were met."""
    with ModelProcess() as model, gateway(model) as server:
        async with (
            TimedClient(server.ws_url, token=server.token) as client,
            httpx.AsyncClient(trust_env=False) as http,
        ):
            model.enqueue(_REPLY)
            accepted, _ = await client.run("start")
            session_id = accepted["sessionId"]
            for _ in range(WARMUP):
                await direct_ttft(http, model)
                await gateway_ttft(client, model, session_id)
            direct: list[float] = []
            through: list[float] = []
            for i in range(SAMPLES):
                if i % RESET_EVERY == 0:
                    await client.run("/reset", sessionId=session_id)
                    await settle(0.06)  # past the commit window, as between real turns
                direct.append(await direct_ttft(http, model))
                through.append(await gateway_ttft(client, model, session_id))
    p50 = percentile(through, 50) - percentile(direct, 50)
    p99 = percentile(through, 99) - percentile(direct, 99)
    rows = [
        Row(
            metric=f"TTFT p50 (gateway {percentile(through, 50):.2f} ms)",
            value=f"+{p50:.2f} ms",
            baseline=f"direct {percentile(direct, 50):.2f} ms",
            target=f"<= {P50_TARGET_MS:g} ms added",
            ok=p50 <= P50_TARGET_MS,
        ),
        Row(
            metric=f"TTFT p99 (gateway {percentile(through, 99):.2f} ms)",
            value=f"+{p99:.2f} ms",
            baseline=f"direct {percentile(direct, 99):.2f} ms",
            target=f"<= {P99_TARGET_MS:g} ms added",
            ok=p99 <= P99_TARGET_MS,
        ),
    ]
    return print_table(f"Time to first token, {SAMPLES} turns each, warm session", rows)


if __name__ == "__main__":
    raise SystemExit(0 if asyncio.run(main()) else 1)
