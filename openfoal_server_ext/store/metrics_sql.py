"""The SQL of ``metrics.summary``'s time series, written once for both stores.

DuckDB and Postgres differ here in three spellings only: the parameter marker, the epoch
of a timestamp, and the 95th percentile of a run's duration. :class:`SeriesDialect` holds
them; :func:`series_queries` builds the four grouped queries the stores execute as they are
and hand to :func:`.rows.series_from_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

Query = tuple[str, list[Any]]


@dataclass(frozen=True)
class SeriesDialect:
    """How one database spells what the series queries need."""

    param: str
    """The parameter marker (``?`` or ``%s``)."""
    epoch: str
    """The seconds since the epoch of ``{col}``, as a float."""
    p95_ms: str
    """The 95th percentile of a run's duration in milliseconds (``created_at`` to ``ended_at``)."""


DUCKDB = SeriesDialect(
    param="?",
    epoch="epoch({col})",
    p95_ms="quantile_cont(epoch_ms(ended_at) - epoch_ms(created_at), 0.95)",
)
POSTGRES = SeriesDialect(
    param="%s",
    epoch="extract(epoch FROM {col})::float8",
    p95_ms="percentile_cont(0.95) WITHIN GROUP"
    " (ORDER BY (extract(epoch FROM (ended_at - created_at)) * 1000)::float8)",
)


@dataclass(frozen=True)
class SeriesQueries:
    """The per-bucket runs, tool calls and gates, and the tool calls by tool."""

    runs: Query
    tools: Query
    gates: Query
    by_tool: Query


def owned(key: str, owner: str | None, param: str) -> Query:
    """A filter to the runs of ``owner`` (none for ``None``) on the column ``key``."""
    if owner is None:
        return "", []
    return f" AND {key} IN (SELECT id FROM runs WHERE owner = {param})", [owner]


def series_queries(
    d: SeriesDialect, from_: datetime, to: datetime, bucket_s: int, owner: str | None
) -> SeriesQueries:
    """The queries of the series over ``[from_, to)`` in buckets of ``bucket_s`` seconds."""
    p = d.param
    origin = from_.timestamp()

    def grouped(table: str, column: str, figures: str, key: str = "run_id") -> Query:
        mine, extra = owned(key, owner, p)
        bucket = f"CAST(floor(({d.epoch.format(col=column)} - {p}) / {p}) AS BIGINT)"
        return (
            f"SELECT {bucket} AS b, {figures} FROM {table}"
            f" WHERE {column} >= {p} AND {column} < {p}{mine} GROUP BY b",
            [origin, bucket_s, from_, to, *extra],
        )

    mine, extra = owned("run_id", owner, p)
    return SeriesQueries(
        runs=grouped(
            "runs",
            "created_at",
            "count(*), count(*) FILTER (WHERE status IN ('failed', 'interrupted')),"
            f" {d.p95_ms} FILTER (WHERE ended_at IS NOT NULL)",
            key="id",
        ),
        tools=grouped(
            "tool_runs",
            "started_at",
            "count(*), count(*) FILTER (WHERE status IN ('failed', 'timeout'))",
        ),
        gates=grouped(
            "gate_items", "created_at", "count(*), count(*) FILTER (WHERE status = 'pending')"
        ),
        by_tool=(
            "SELECT tool_name, count(*) AS n,"
            " count(*) FILTER (WHERE status IN ('failed', 'timeout'))"
            f" FROM tool_runs WHERE started_at >= {p} AND started_at < {p}{mine}"
            " GROUP BY tool_name ORDER BY n DESC, tool_name",
            [from_, to, *extra],
        ),
    )
