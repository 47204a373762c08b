"""``metrics.summary``: run, tool and gate figures computed from the store with SQL.

Windows are half-open, ``[from, to)``, on each row's start: a run's ``created_at``, a tool
run's ``started_at``, a gate's ``createdAt``. See docs/policy.md, "Metrics", for each figure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from openfoal_kernel.protocol import ErrorCode, OpenFoalError, utcnow
from openfoal_kernel.protocol.results import (
    Metrics,
    MetricsBucket,
    MetricsSummaryResult,
    ToolCallCount,
)

from ..store import StoreWorker
from .audit import as_utc, iso

#: Most buckets one bucketed ``metrics.summary`` may ask for.
MAX_BUCKETS = 1000

_EMPTY_BUCKET = {
    "runsTotal": 0,
    "runsFailed": 0,
    "p95LatencyMs": None,
    "toolCallsTotal": 0,
    "toolFailures": 0,
    "gatesTotal": 0,
    "gatePending": 0,
}


class MetricsService:
    """Figures over a time window, for the console and ``metrics.summary``."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker

    async def summary(
        self,
        from_: datetime | None,
        to: datetime | None,
        bucket: int | None = None,
        *,
        owner: str | None = None,
    ) -> MetricsSummaryResult:
        """The figures of the window (either end may be open), of ``owner``'s runs only
        (everyone's with ``None``); by buckets when asked."""
        start, end = as_utc(from_), as_utc(to)
        if bucket is not None:
            if start is None:
                raise OpenFoalError(ErrorCode.INVALID_REQUEST, "bucket needs from")
            end = end if end is not None else utcnow()
        if start is not None and end is not None and start > end:
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, "from is after to")
        count = 0
        if bucket is not None and start is not None and end is not None:
            count = max(1, -(-int((end - start).total_seconds()) // bucket))
            if count > MAX_BUCKETS:
                raise OpenFoalError(
                    ErrorCode.INVALID_REQUEST,
                    f"{count} buckets asked for, at most {MAX_BUCKETS}: widen bucket",
                )
        await self.worker.commit()  # rows still in the write window count too
        metrics = await self.worker.call(self.worker.store.metrics, start, end, owner)
        body: dict[str, object] = {
            "metrics": Metrics.model_validate(metrics),
            "from": iso(start) if start is not None else None,
            "to": iso(end) if end is not None else None,
        }
        if bucket is not None and start is not None and end is not None:
            series = await self.worker.call(
                self.worker.store.metrics_series, start, end, bucket, owner
            )
            body["bucket"] = bucket
            body["series"] = [
                MetricsBucket.model_validate(
                    {
                        "start": iso(start + timedelta(seconds=n * bucket)),
                        "end": iso(min(end, start + timedelta(seconds=(n + 1) * bucket))),
                        **_EMPTY_BUCKET,
                        **series["buckets"].get(n, {}),
                    }
                )
                for n in range(count)
            ]
            body["byTool"] = [ToolCallCount.model_validate(t) for t in series["byTool"]]
        return MetricsSummaryResult.model_validate(body)
