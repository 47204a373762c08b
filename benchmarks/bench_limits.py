"""The rate limiter's cost on a ``sessions.list`` round trip, on a real gateway.

Measured: ``sessions.list`` (limit 20, on a server holding 20 sessions) sent on one connected
WebSocket, from send to its ``res``, ``SAMPLES`` times. Baseline, interleaved on the same
socket: a WebSocket ping and its pong (the transport's round trip, no gateway code).

The limiter's overhead is the difference of two servers' ``sessions.list`` p50, interleaved
in the same run: one as configured, one started with the server arguments in
``OPENFOAL_BENCH_LIMITER_OFF_ARGS`` (space-separated; by default no limit, as on every
benchmark server, where the check returns before touching a bucket). The measured server has
limits so high that every request takes a token and none is refused. Set the variable to an
empty string and there is no second server: the overhead row says it is not
measured. Target: overhead < 0.1 ms.

OpenTelemetry with no SDK configured (the API's no-op): the span hooks one request goes
through (``openfoal.request`` entered and left, an audit event offered to it, an error code
set), timed in this process ``OTEL_HOOK_CALLS`` times, as a ratio of the ``sessions.list``
p50 measured above. Target: under 1% of the round trip.

``OPENFOAL_BENCH_LIMITS_SAMPLES`` sets the number of samples (default 2,000).
"""

from __future__ import annotations

import contextlib
import os
import time

from openfoal_kernel.client import GatewayClient
from openfoal_server_ext.services import otel

from ._gateway import gateway
from ._model import ModelProcess
from ._table import Row, percentile, print_table

SAMPLES = int(os.environ.get("OPENFOAL_BENCH_LIMITS_SAMPLES", "2000"))
WARMUP = 200
SESSIONS = 20
#: The measured server's limiter: every request takes a token from its bucket, none is refused.
ON_ARGS = [f"--OpenFoalApp.rate_limits={cls}=1000000/1000000" for cls in ("read", "write", "run")]
#: The peer: as every benchmark server, no limit ('0': the check returns before any bucket),
#: unless the variable names other arguments.
OFF_ARGS = os.environ.get(
    "OPENFOAL_BENCH_LIMITER_OFF_ARGS", "--OpenFoalApp.rate_limits=read=0"
).split()
TARGET_MS = 0.1
OTEL_HOOK_CALLS = 20_000
OTEL_TARGET_RATIO = 0.01


def _otel_hooks_ms() -> float:
    """The per-request cost of the OpenTelemetry hooks when no SDK is configured (ms)."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    started = time.perf_counter_ns()
    for _ in range(OTEL_HOOK_CALLS):
        with otel.request_span("sessions.list", user="u", request_id="r1", trace_id=trace_id):
            otel.audit("aud_1", "session.list", "session:x", trace_id, None, None)
            otel.request_failed("NOT_FOUND")
    return (time.perf_counter_ns() - started) / 1e6 / OTEL_HOOK_CALLS


async def _list_ms(client: GatewayClient) -> float:
    started = time.perf_counter_ns()
    await client.request("sessions.list", {"limit": SESSIONS})
    return (time.perf_counter_ns() - started) / 1e6


async def _ping_ms(client: GatewayClient) -> float:
    assert client.ws is not None
    started = time.perf_counter_ns()
    await (await client.ws.ping())
    return (time.perf_counter_ns() - started) / 1e6


async def _fill(client: GatewayClient) -> None:
    for i in range(SESSIONS):
        await client.run("/reset", sessionKey=f"workspace:default/agent:bench/dm:cli:{i}")


async def main() -> bool:
    """Measure, print the table, and return whether the targets were met."""
    on: list[float] = []
    off: list[float] = []
    ping: list[float] = []
    with contextlib.ExitStack() as stack:
        model = stack.enter_context(ModelProcess())
        server = stack.enter_context(gateway(model, pool=0, args=ON_ARGS))
        other = stack.enter_context(gateway(model, pool=0, args=OFF_ARGS)) if OFF_ARGS else None
        async with contextlib.AsyncExitStack() as clients:
            client = await clients.enter_async_context(
                GatewayClient(server.ws_url, token=server.token)
            )
            peer = None
            if other is not None:
                peer = await clients.enter_async_context(
                    GatewayClient(other.ws_url, token=other.token)
                )
            for c in filter(None, (client, peer)):
                await _fill(c)
            for i in range(WARMUP + SAMPLES):
                measured = await _list_ms(client)
                pinged = await _ping_ms(client)
                unlimited = await _list_ms(peer) if peer is not None else None
                if i >= WARMUP:
                    on.append(measured)
                    ping.append(pinged)
                    if unlimited is not None:
                        off.append(unlimited)
    rows = [
        Row(
            metric=f"sessions.list round trip p50 (p99 {percentile(on, 99):.3f} ms)",
            value=f"{percentile(on, 50):.3f} ms",
            baseline=f"WebSocket ping {percentile(ping, 50):.3f} ms",
            target="informational",
            ok=True,
        )
    ]
    if off:
        overhead = percentile(on, 50) - percentile(off, 50)
        rows.append(
            Row(
                metric="rate limiter overhead (p50, limiter on - off)",
                value=f"{overhead:+.3f} ms",
                baseline=f"limiter off {percentile(off, 50):.3f} ms",
                target=f"< {TARGET_MS:g} ms",
                ok=overhead < TARGET_MS,
            )
        )
    else:
        rows.append(
            Row(
                metric="rate limiter overhead",
                value="NOT MEASURED: no limiter-off server (set OPENFOAL_BENCH_LIMITER_OFF_ARGS)",
                baseline="-",
                target=f"< {TARGET_MS:g} ms",
                ok=False,
            )
        )
    hooks = _otel_hooks_ms()
    ratio = hooks / percentile(on, 50)
    rows.append(
        Row(
            metric="OpenTelemetry hooks per request, no SDK (API no-op)",
            value=f"{hooks * 1000:.2f} us ({ratio:.2%} of the round trip)",
            baseline=f"sessions.list p50 {percentile(on, 50):.3f} ms",
            target=f"< {OTEL_TARGET_RATIO:.0%} of the round trip",
            ok=ratio < OTEL_TARGET_RATIO,
        )
    )
    return print_table(f"Rate limiter cost on sessions.list ({SAMPLES} samples)", rows)
