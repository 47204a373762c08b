"""``metrics.summary``: run, tool and gate figures computed from the store with SQL.

Windows are half-open, ``[from, to)``, on each row's start: a run's ``created_at``, a tool
run's ``started_at``, a gate's ``createdAt``. See docs/policy.md, "Metrics", for each figure.
"""

from __future__ import annotations

from datetime import datetime

from openfoal_kernel.protocol import ErrorCode, OpenFoalError
from openfoal_kernel.protocol.results import Metrics, MetricsSummaryResult

from ..store import StoreWorker
from .audit import as_utc, iso


class MetricsService:
    """Figures over a time window, for the console and ``metrics.summary``."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker

    async def summary(
        self, from_: datetime | None, to: datetime | None, *, owner: str | None = None
    ) -> MetricsSummaryResult:
        """The figures of the window (either end may be open), of ``owner``'s runs only
        (everyone's with ``None``)."""
        start, end = as_utc(from_), as_utc(to)
        if start is not None and end is not None and start > end:
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, "from is after to")
        await self.worker.commit()  # rows still in the write window count too
        metrics = await self.worker.call(self.worker.store.metrics, start, end, owner)
        return MetricsSummaryResult.model_validate(
            {
                "metrics": Metrics.model_validate(metrics),
                "from": iso(start) if start is not None else None,
                "to": iso(end) if end is not None else None,
            }
        )
