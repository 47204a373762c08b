"""``metrics.summary``: figures computed from the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..store import StoreWorker


class MetricsService:
    """Run, tool and gate metrics over a time window."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker

    async def summary(self, start: datetime | None, end: datetime | None) -> dict[str, Any]:
        """The ``metrics`` payload."""
        await self.worker.commit()
        return {"metrics": await self.worker.call(self.worker.store.metrics, start, end)}
