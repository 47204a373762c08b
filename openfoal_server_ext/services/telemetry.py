"""Prometheus metrics of the gateway, served by the Jupyter server's ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUNS = Counter("openfoal_runs_total", "Runs ended, by final status.", ["status"])
RUN_SECONDS = Histogram(
    "openfoal_run_duration_seconds",
    "Run duration from accept to end.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
TOOL_CALLS = Counter(
    "openfoal_tool_calls_total", "Tool calls, by tool and status.", ["tool", "status"]
)
TOOL_SECONDS = Histogram(
    "openfoal_tool_duration_seconds",
    "Tool call duration.",
    ["tool"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
)
GATES = Counter("openfoal_gates_total", "Gate requests and their outcomes.", ["outcome"])
ACTIVE_RUNS = Gauge("openfoal_active_runs", "Runs in flight.")
EVENTS = Counter("openfoal_events_total", "Session events published.", ["event"])
