"""Sustained deltas to one client through the gateway, against the model's own stream.

Two measurements, each interleaved with its baseline in the same run:

* **Rate.** The scripted model bursts ``BURST`` deltas as fast as the socket takes them. Through
  the gateway, the rate is the number of ``agent.delta`` events one WebSocket client receives
  divided by the time from the first to the last of them. Baseline: the same burst read
  directly with the OpenAI provider over httpx (first to last ``TextDelta``).
* **Added latency.** The model sends ``PACED`` deltas at ``RATE`` deltas/s (``GROUP`` per write).
  Each delta's text is its send time, stamped by the model process as the bytes are written
  (``time.monotonic_ns()``; Linux's monotonic clock is one clock for every process of this
  machine). A delta's latency is its arrival at the client (stamped as the WebSocket frame is
  read) minus that send time. Baseline: the same paced stream read directly by the provider,
  latency = ``TextDelta`` arrival minus send time. Added latency = gateway p99 - direct p99.

Every run is checked: one ``agent.delta`` per model delta, in order, with consecutive ``seq``.
Targets (the issue "The spine"): >= 10,000 deltas/s, p99 added latency <= 5 ms.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx

from openfoal_kernel.protocol.transcript import ChatMessage
from openfoal_kernel.providers import OpenAIProvider, TextDelta
from openfoal_kernel.scripted import BurstStep, Reply

from ._gateway import ARRIVED, TimedClient, check_completed, gateway
from ._model import STAMP, ModelProcess
from ._table import Row, percentile, print_table

BURST = int(os.environ.get("OPENFOAL_BENCH_BURST", "30000"))
PACED = int(os.environ.get("OPENFOAL_BENCH_PACED", "20000"))
RATE = 10_000.0
GROUP = 10
ROUNDS = 2
TARGET_RATE = 10_000.0
TARGET_P99_MS = 5.0


def rate_of(arrivals: list[int]) -> float:
    """Deltas/s from the first arrival to the last."""
    return (len(arrivals) - 1) / ((arrivals[-1] - arrivals[0]) / 1e9)


async def direct(model: ModelProcess, http: httpx.AsyncClient, count: int) -> list[tuple[int, int]]:
    """(send stamp, arrival) of each delta of one burst read by the provider itself."""
    provider = OpenAIProvider("scripted", "sk-bench", model.openai_base_url, 60, http)
    model.enqueue(Reply.of(BurstStep(count=count, text=STAMP)))
    out: list[tuple[int, int]] = []
    async for item in provider.stream([ChatMessage(role="user", content="burst")]):
        if isinstance(item, TextDelta):
            out.append((int(item.text), time.monotonic_ns()))
    if len(out) != count:
        raise RuntimeError(f"the provider read {len(out)} deltas, expected {count}")
    return out


async def through_gateway(
    model: ModelProcess, client: TimedClient, session_id: str, count: int
) -> list[tuple[int, int]]:
    """(send stamp, arrival) of each ``agent.delta`` of one burst run through the gateway."""
    await client.run("/reset", sessionId=session_id)  # keep each run's context small
    model.enqueue(Reply.of(BurstStep(count=count, text=STAMP)))
    _, events = await client.run_stamped("burst", sessionId=session_id)
    check_completed(events)
    deltas = [e for e in events if e["event"] == "agent.delta"]
    _check_deltas(deltas, count)
    return [(int(e["payload"]["delta"]), e[ARRIVED]) for e in deltas]


def _check_deltas(deltas: list[dict[str, Any]], count: int) -> None:
    if len(deltas) != count:
        raise RuntimeError(
            f"the client received {len(deltas)} agent.delta events, expected {count}"
        )
    seqs = [e["seq"] for e in deltas]
    if seqs != list(range(seqs[0], seqs[0] + count)):
        raise RuntimeError("agent.delta events are not numbered by consecutive seq")
    stamps = [int(e["payload"]["delta"]) for e in deltas]
    if stamps != sorted(stamps):
        raise RuntimeError("agent.delta events arrived out of order")


def latencies_ms(samples: list[tuple[int, int]]) -> list[float]:
    """Arrival minus send stamp of each delta, in ms."""
    return [(arrived - sent) / 1e6 for sent, arrived in samples]


async def main() -> bool:
    """Measure, print the table, and return whether the targets were met."""
    gw_rates: list[float] = []
    direct_rates: list[float] = []
    gw_lat: list[float] = []
    direct_lat: list[float] = []
    with ModelProcess() as model, gateway(model) as server:
        async with (
            TimedClient(server.ws_url, token=server.token) as client,
            httpx.AsyncClient(trust_env=False) as http,
        ):
            accepted, _ = await client.run("warm up")
            session_id = accepted["sessionId"]
            await direct(model, http, 1000)
            await through_gateway(model, client, session_id, 1000)
            for _ in range(ROUNDS):
                model.pace(0)
                direct_rates.append(rate_of([a for _, a in await direct(model, http, BURST)]))
                gw = await through_gateway(model, client, session_id, BURST)
                gw_rates.append(rate_of([a for _, a in gw]))
                model.pace(RATE, GROUP)
                direct_lat += latencies_ms(await direct(model, http, PACED))
                gw_lat += latencies_ms(await through_gateway(model, client, session_id, PACED))
    gw_rate, direct_rate = max(gw_rates), max(direct_rates)
    added = percentile(gw_lat, 99) - percentile(direct_lat, 99)
    rows = [
        Row(
            metric=f"deltas/s to one client (burst of {BURST:,}, best of {ROUNDS})",
            value=f"{gw_rate:,.0f}/s",
            baseline=f"model via provider {direct_rate:,.0f}/s",
            target=f">= {TARGET_RATE:,.0f}/s",
            ok=gw_rate >= TARGET_RATE,
        ),
        Row(
            metric=f"p99 added latency at {RATE:,.0f} deltas/s (gateway p50 "
            f"{percentile(gw_lat, 50):.2f}, p99 {percentile(gw_lat, 99):.2f} ms)",
            value=f"+{added:.2f} ms",
            baseline=f"direct p50 {percentile(direct_lat, 50):.2f}, "
            f"p99 {percentile(direct_lat, 99):.2f} ms",
            target=f"<= {TARGET_P99_MS:g} ms added",
            ok=added <= TARGET_P99_MS,
        ),
    ]
    return print_table(f"Sustained deltas to one client, {ROUNDS} rounds", rows)


if __name__ == "__main__":
    raise SystemExit(0 if asyncio.run(main()) else 1)
