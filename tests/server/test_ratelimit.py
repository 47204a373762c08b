"""Token buckets per user and method class, on a controlled clock."""

from __future__ import annotations

import pytest

from openfoal_kernel.protocol import ErrorCode, OpenFoalError
from openfoal_server_ext.services.ratelimit import Limit, RateLimiter, method_class


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_method_classes() -> None:
    assert method_class("agent.run") == "run"
    assert method_class("policy.update") == "write"
    assert method_class("sessions.list") == "read"


def test_burst_then_limited_with_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter({"read": "2/3"}, clock=clock)
    for _ in range(3):
        limiter.check("alice", "sessions.list")
    with pytest.raises(OpenFoalError) as err:
        limiter.check("alice", "sessions.list")
    assert err.value.code is ErrorCode.RATE_LIMITED and err.value.retryable
    assert err.value.details == {"retryAfterMs": 500, "class": "read"}
    # other users and other classes have their own buckets
    limiter.check("bob", "sessions.list")
    limiter.check("alice", "agent.run")
    clock.now += 0.5
    limiter.check("alice", "sessions.list")  # one token came back
    with pytest.raises(OpenFoalError):
        limiter.check("alice", "sessions.list")


def test_refill_stops_at_burst_and_zero_means_unlimited() -> None:
    clock = Clock()
    limiter = RateLimiter({"read": "10/2", "run": "0"}, clock=clock)
    clock.now += 3600
    limiter.check("alice", "sessions.get")
    limiter.check("alice", "sessions.get")
    with pytest.raises(OpenFoalError):
        limiter.check("alice", "sessions.get")
    for _ in range(10_000):
        limiter.check("alice", "agent.run")


@pytest.mark.parametrize("text", ["fast", "-1/2", "1/0.5", "1/x"])
def test_bad_limit_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Limit.parse(text)
