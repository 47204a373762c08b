"""metrics.summary on a seeded store: counts, latencies and gate waits over a time window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from openfoal_kernel.protocol import ErrorCode, GateItem, OpenFoalError
from openfoal_server_ext.services.metrics import MetricsService
from openfoal_server_ext.store import RunRow, StoreWorker, ToolRunRow

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


def _quantile(values: list[float], q: float) -> float:
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


async def _seed(worker: StoreWorker) -> list[float]:
    latencies = [100.0, 250.0, 400.0, 900.0, 3000.0, 120.0]
    statuses = ["completed", "completed", "completed", "failed", "interrupted", "aborted"]
    for n, (ms, status) in enumerate(zip(latencies, statuses, strict=True)):
        created = T0 + timedelta(minutes=n)
        worker.stage_run(
            RunRow(
                id=f"run_{n}",
                session_id="s",
                owner="alice",
                trace_id="t",
                status=status,
                created_at=created,
                ended_at=created + timedelta(milliseconds=ms),
            )
        )
    worker.stage_run(
        RunRow(
            id="run_live",
            session_id="s",
            owner="alice",
            trace_id="t",
            status="running",
            created_at=T0 + timedelta(minutes=7),
        )
    )
    # outside the window: counted only without one
    worker.stage_run(
        RunRow(
            id="run_old",
            session_id="s",
            owner="alice",
            trace_id="t",
            status="failed",
            created_at=T0 - timedelta(days=1),
            ended_at=T0 - timedelta(days=1) + timedelta(seconds=60),
        )
    )
    for n, (status, ms) in enumerate(
        [
            ("success", 10.0),
            ("success", 20.0),
            ("failed", 30.0),
            ("timeout", 5000.0),
            ("denied", 0.0),
            ("rejected", 0.0),
        ]
    ):
        started = T0 + timedelta(minutes=n, seconds=5)
        worker.stage_tool_run(
            ToolRunRow(
                id=f"call_{n}",
                session_id="s",
                run_id="run_0",
                trace_id="t",
                tool_name="bash.exec",
                args={},
                status=status,
                duration_ms=ms,
                runtime_mode="local",
                started_at=started,
                ended_at=started,
            )
        )
    for n, (status, wait_s) in enumerate(
        [
            ("pending", None),
            ("approved", 1.0),
            ("approved", 4.0),
            ("rejected", 10.0),
            ("expired", 900.0),
        ]
    ):
        created = T0 + timedelta(minutes=n)
        gate = GateItem(
            gateId=f"g{n}",
            sessionId="s",
            runId="run_0",
            toolCallId=f"c{n}",
            toolName="bash.exec",
            args={},
            argsFingerprint="f",
            risk="shell",
            requestedBy="alice",
            status=status,
            createdAt=created,
            resolvedAt=created + timedelta(seconds=wait_s) if wait_s else None,
        )
        worker.stage_gate(gate, "alice")
    old_gate = GateItem(
        gateId="g_old",
        sessionId="s",
        runId="run_old",
        toolCallId="c",
        toolName="x",
        args={},
        argsFingerprint="f",
        risk="",
        requestedBy="alice",
        createdAt=T0 - timedelta(days=1),
    )
    worker.stage_gate(old_gate, "alice")
    await worker.commit()
    return latencies


async def test_summary_over_a_window(worker: StoreWorker) -> None:
    latencies = await _seed(worker)
    res = (await MetricsService(worker).summary(T0, T0 + timedelta(hours=1))).wire()
    assert res["from"] == "2026-05-01T00:00:00Z" and res["to"] == "2026-05-01T01:00:00Z"
    assert res["metrics"] == {
        "runsTotal": 7,
        "runsCompleted": 3,
        "runsFailed": 2,  # failed + interrupted
        "runsInterrupted": 1,
        "runsAborted": 1,
        "runsActive": 1,
        "p50LatencyMs": round(_quantile(latencies, 0.5), 1),
        "p95LatencyMs": round(_quantile(latencies, 0.95), 1),
        "toolCallsTotal": 6,
        "toolFailures": 2,  # failed + timeout; denied and rejected are the policy working
        "toolTimeouts": 1,
        "toolDenied": 1,
        "toolRejected": 1,
        "toolP95DurationMs": round(_quantile([10, 20, 30, 5000, 0, 0], 0.95), 1),
        "gatesTotal": 5,
        "gatePending": 1,
        "gateApproved": 2,
        "gateRejected": 1,
        "gateExpired": 1,
        "gateMedianWaitMs": 4000.0,  # approved and rejected gates only: 1 s, 4 s, 10 s
    }


async def test_open_windows_empty_windows_and_bad_windows(worker: StoreWorker) -> None:
    await _seed(worker)
    service = MetricsService(worker)
    everything = (await service.summary(None, None)).wire()["metrics"]
    assert everything["runsTotal"] == 8 and everything["runsFailed"] == 3
    assert everything["gatesTotal"] == 6 and everything["gatePending"] == 2
    since = (await service.summary(T0 + timedelta(minutes=3), None)).wire()["metrics"]
    assert since["runsTotal"] == 4 and since["toolCallsTotal"] == 3
    # a time without a zone is UTC
    naive = (await service.summary(None, T0.replace(tzinfo=None))).wire()["metrics"]
    assert naive["runsTotal"] == 1 and naive["p95LatencyMs"] == 60000.0
    empty = (await service.summary(T0 + timedelta(days=9), T0 + timedelta(days=10))).wire()[
        "metrics"
    ]
    assert empty["runsTotal"] == 0 and empty["p95LatencyMs"] is None
    assert empty["gateMedianWaitMs"] is None and empty["toolP95DurationMs"] is None
    with pytest.raises(OpenFoalError) as err:
        await service.summary(T0 + timedelta(days=1), T0)
    assert err.value.code is ErrorCode.INVALID_REQUEST


async def test_bucketed_summary_series_and_tools(worker: StoreWorker) -> None:
    latencies = await _seed(worker)
    worker.stage_tool_run(
        ToolRunRow(
            id="call_py",
            session_id="s",
            run_id="run_1",
            trace_id="t",
            tool_name="python.exec",
            args={},
            status="success",
            duration_ms=5.0,
            runtime_mode="local",
            started_at=T0 + timedelta(minutes=9),
            ended_at=T0 + timedelta(minutes=9),
        )
    )
    service = MetricsService(worker)
    res = (await service.summary(T0, T0 + timedelta(minutes=10), 300)).wire()
    assert res["bucket"] == 300 and res["metrics"]["runsTotal"] == 7
    first, second = res["series"]
    # runs 0..4 start in the first five minutes, run 5 and the live run in the next
    assert first == {
        "start": "2026-05-01T00:00:00Z",
        "end": "2026-05-01T00:05:00Z",
        "runsTotal": 5,
        "runsFailed": 2,
        "p95LatencyMs": round(_quantile(latencies[:5], 0.95), 1),
        "toolCallsTotal": 5,
        "toolFailures": 2,
        "gatesTotal": 5,
        "gatePending": 1,
    }
    assert second["runsTotal"] == 2 and second["runsFailed"] == 0
    assert second["toolCallsTotal"] == 2 and second["gatesTotal"] == 0
    assert second["p95LatencyMs"] == 120.0  # the aborted run; the live one has no end
    assert res["byTool"] == [
        {"toolName": "bash.exec", "calls": 6, "failures": 2},
        {"toolName": "python.exec", "calls": 1, "failures": 0},
    ]
    # the sums of the series are the window's figures
    assert sum(b["runsTotal"] for b in res["series"]) == res["metrics"]["runsTotal"]
    # empty buckets are listed, and the last one ends at `to`
    wide = (await service.summary(T0, T0 + timedelta(minutes=61), 600)).wire()
    assert len(wide["series"]) == 7 and wide["series"][-1]["end"] == "2026-05-01T01:01:00Z"
    assert wide["series"][3]["runsTotal"] == 0 and wide["series"][3]["p95LatencyMs"] is None
    # without bucket the answer is as before
    plain = (await service.summary(T0, T0 + timedelta(minutes=10))).wire()
    assert "series" not in plain or plain["series"] is None


async def test_bucketed_summary_rejects_bad_windows(worker: StoreWorker) -> None:
    service = MetricsService(worker)
    for args in [
        (None, T0, 60),  # no from
        (T0 + timedelta(hours=1), T0, 60),  # inverted
        (T0, T0 + timedelta(days=2), 60),  # 2,880 buckets
    ]:
        with pytest.raises(OpenFoalError) as err:
            await service.summary(*args)
        assert err.value.code is ErrorCode.INVALID_REQUEST
    open_end = (await service.summary(T0, None, 86_400 * 31)).wire()
    assert open_end["to"] is not None and open_end["series"]
