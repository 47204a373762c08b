"""Measure how many text deltas per second the scripted server streams in ``burst`` mode.

``python -m openfoal_kernel.scripted.throughput [--count N] [--rounds R]`` prints deltas/s read
three ways: raw SSE frames off the socket, and parsed by each provider. The benchmarks use the
provider figures as the baseline of model streaming.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

import httpx

from ..protocol.transcript import ChatMessage
from .script import BurstStep, Reply
from .server import ScriptedModelServer

_QUESTION = [ChatMessage(role="user", content="stream")]


async def raw_sse_rate(server: ScriptedModelServer, count: int) -> float:
    """Deltas/s counted as ``data:`` lines read by a plain httpx client (server-side ceiling)."""
    server.enqueue(Reply.of(BurstStep(count=count)))
    body = {"model": "burst", "messages": [{"role": "user", "content": "go"}], "stream": True}
    frames = 0
    async with httpx.AsyncClient(trust_env=False) as client:
        started = time.perf_counter()
        url = server.openai_base_url + "/chat/completions"
        async with client.stream("POST", url, json=body) as response:
            async for line in response.aiter_lines():
                frames += line.startswith("data: {")
        elapsed = time.perf_counter() - started
    # The role chunk and the finish chunk are data frames too, not deltas.
    return (frames - 2) / elapsed


async def provider_rate(server: ScriptedModelServer, count: int, api: str) -> float:
    """Deltas/s as :class:`TextDelta` events out of the OpenAI or Anthropic provider."""
    from ..providers.anthropic import AnthropicProvider
    from ..providers.base import ModelProvider, TextDelta
    from ..providers.openai import OpenAIProvider

    provider: ModelProvider
    if api == "openai":
        provider = OpenAIProvider("burst", None, server.openai_base_url, 30, trust_env=False)
    else:
        provider = AnthropicProvider("burst", None, server.anthropic_base_url, 30, trust_env=False)
    server.enqueue(Reply.of(BurstStep(count=count)))
    deltas = 0
    started = time.perf_counter()
    async for event in provider.stream(_QUESTION):
        deltas += isinstance(event, TextDelta)
    elapsed = time.perf_counter() - started
    await provider.aclose()
    if deltas != count:
        raise RuntimeError(f"{api}: expected {count} deltas, got {deltas}")
    return deltas / elapsed


async def measure(count: int, rounds: int) -> dict[str, float]:
    """Best rate over ``rounds`` for each reader."""
    best: dict[str, float] = {"raw_sse": 0.0, "openai_provider": 0.0, "anthropic_provider": 0.0}
    with ScriptedModelServer() as server:
        for _ in range(rounds):
            best["raw_sse"] = max(best["raw_sse"], await raw_sse_rate(server, count))
            for api in ("openai", "anthropic"):
                rate = await provider_rate(server, count, api)
                best[f"{api}_provider"] = max(best[f"{api}_provider"], rate)
    return best


def main(argv: Sequence[str] | None = None) -> None:
    """Print the measured rates."""
    parser = argparse.ArgumentParser(prog="python -m openfoal_kernel.scripted.throughput")
    parser.add_argument("--count", type=int, default=50_000, help="deltas per reply (50000)")
    parser.add_argument("--rounds", type=int, default=3, help="replies per reader (3)")
    args = parser.parse_args(argv)
    for name, rate in asyncio.run(measure(args.count, args.rounds)).items():
        print(f"{name:<20} {rate:>12,.0f} deltas/s")


if __name__ == "__main__":
    main()
