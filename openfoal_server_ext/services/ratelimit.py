"""Rate limits: a token bucket per user and method class (see docs/limits.md).

Each request takes one token from its caller's bucket of the method's class; an empty
bucket answers ``RATE_LIMITED`` with ``details.retryAfterMs`` (REST: 429, ``Retry-After``).
Buckets refill continuously at ``rate`` tokens per second up to ``burst``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from openfoal_kernel.protocol import ErrorCode, OpenFoalError

#: Method classes: runs (each may start a kernel and call a model), other changes, reads.
RUN_METHODS = frozenset({"agent.run", "agent.abort", "runtime.setMode", "model.test"})
WRITE_METHODS = frozenset(
    {
        "sessions.delete",
        "policy.update",
        "policy-gate.resolve",
        "memory.appendDaily",
        "memory.archive",
        "model.update",
    }
)


def method_class(method: str) -> str:
    """The bucket class of a method: ``run``, ``write`` or ``read``."""
    if method in RUN_METHODS:
        return "run"
    if method in WRITE_METHODS:
        return "write"
    return "read"


@dataclass(frozen=True)
class Limit:
    """``rate`` tokens per second, at most ``burst`` saved up (rate 0: no limit)."""

    rate: float
    burst: float

    @classmethod
    def parse(cls, text: str) -> Limit:
        """``"RATE/BURST"`` (e.g. ``"20/100"``), or ``"0"`` for no limit."""
        rate_s, _, burst_s = str(text).partition("/")
        try:
            rate = float(rate_s)
            burst = float(burst_s) if burst_s else max(rate, 1.0)
        except ValueError as exc:
            raise ValueError(f"a rate limit is 'RATE/BURST', not {text!r}") from exc
        if rate < 0 or (burst < 1 and rate > 0):
            raise ValueError(f"a rate limit needs rate >= 0 and burst >= 1, not {text!r}")
        return cls(rate, burst)


#: Defaults per class, per user: generous for people and their UIs, tight for floods.
DEFAULT_LIMITS: dict[str, str] = {"read": "50/100", "write": "20/100", "run": "20/100"}


class RateLimiter:
    """Token buckets keyed by (user, class); O(1) per request, no lock (one event loop)."""

    def __init__(
        self,
        limits: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        merged = {**DEFAULT_LIMITS, **(limits or {})}
        self.limits = {name: Limit.parse(text) for name, text in merged.items()}
        self._clock = clock
        self._max_buckets = max_buckets
        #: (user, class) -> (tokens, last refill time)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def check(self, user: str, method: str) -> None:
        """Take a token for ``user`` calling ``method``, or raise ``RATE_LIMITED``."""
        cls = method_class(method)
        limit = self.limits.get(cls)
        if limit is None or limit.rate <= 0:
            return
        now = self._clock()
        key = (user, cls)
        tokens, last = self._buckets.get(key, (limit.burst, now))
        tokens = min(limit.burst, tokens + (now - last) * limit.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self._max_buckets and key not in self._buckets:
                self._buckets.clear()  # full buckets are the default: forgetting is safe-ish
            self._buckets[key] = (tokens - 1.0, now)
            return
        self._buckets[key] = (tokens, now)
        retry_ms = max(1, math.ceil((1.0 - tokens) / limit.rate * 1000))
        raise OpenFoalError(
            ErrorCode.RATE_LIMITED,
            f"too many {cls} requests: {limit.rate:g}/s (burst {limit.burst:g}) per user; "
            f"retry in {retry_ms} ms",
            details={"retryAfterMs": retry_ms, "class": cls},
        )
