"""Per-session token budgets: what each session has used, and what its next run may use.

A session's use is the sum of the ``usage`` its runs reported (``agent.completed`` and
``agent.failed`` both carry it). It is counted from the stored events the first time a
session is asked about after a start, then kept up to date as runs end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openfoal_kernel.protocol import ErrorCode, OpenFoalError
from openfoal_kernel.protocol import events as ev

from ..store import StoreWorker

__all__ = ["TokenBudgets", "tokens_of"]

#: Events read per page when a session's use is counted from the store.
_PAGE = 5_000


def tokens_of(usage: Mapping[str, Any] | None) -> int:
    """Input plus output tokens of one ``usage`` object (malformed counts count as 0)."""
    if not usage:
        return 0
    total = 0
    for key in ("inputTokens", "outputTokens"):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            total += value
    return total


class TokenBudgets:
    """The token ledger of every session of one server (``budget`` 0: no budget)."""

    def __init__(self, worker: StoreWorker, budget: int = 0) -> None:
        self.worker = worker
        self.budget = budget
        self._used: dict[str, int] = {}

    def _count(self, session_id: str) -> int:
        used, after = 0, 0
        while True:
            rows = self.worker.store.get_events(session_id, after_seq=after, limit=_PAGE)
            for row in rows:
                if row.event in (ev.AGENT_COMPLETED, ev.AGENT_FAILED):
                    used += tokens_of(row.payload.get("usage"))
            if len(rows) < _PAGE:
                return used
            after = rows[-1].seq

    async def used(self, session_id: str) -> int:
        """Tokens the session's runs have used so far."""
        if session_id not in self._used:
            counted = await self.worker.call(self._count, session_id)
            self._used.setdefault(session_id, counted)
        return self._used[session_id]

    async def remaining(self, session_id: str) -> int | None:
        """Tokens the session's next run may use (``None``: no budget)."""
        if self.budget <= 0:
            return None
        return max(0, self.budget - await self.used(session_id))

    async def check(self, session_id: str) -> int | None:
        """Like :meth:`remaining`, but refuse with ``BUDGET_EXCEEDED`` when none are left."""
        left = await self.remaining(session_id)
        if left is not None and left <= 0:
            raise OpenFoalError(
                ErrorCode.BUDGET_EXCEEDED,
                f"this session used its token budget ({await self.used(session_id)} of "
                f"{self.budget} tokens); start a new session or raise the budget",
            )
        return left

    def charge(self, session_id: str, usage: Mapping[str, Any] | None) -> None:
        """Add a finished run's usage (only to a session already counted)."""
        if session_id in self._used:
            self._used[session_id] += tokens_of(usage)

    def forget(self, session_id: str) -> None:
        """Drop a deleted session's count."""
        self._used.pop(session_id, None)
