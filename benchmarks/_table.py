"""Shared helpers for benchmarks: percentiles and the result table every benchmark prints."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0..100) of ``samples`` by linear interpolation."""
    if not samples:
        raise ValueError("no samples")
    data = sorted(samples)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(samples: Sequence[float]) -> float:
    """Return the median of ``samples``."""
    return statistics.median(samples)


@dataclass(kw_only=True)
class Row:
    """One line of a benchmark table: a metric, its baseline, and the target verdict."""

    metric: str
    value: str
    baseline: str
    target: str
    ok: bool


def print_table(title: str, rows: Sequence[Row]) -> bool:
    """Print ``rows`` as a Markdown table under ``title``; return True when all meet target."""
    header = ("metric", "measured", "baseline (same run)", "target", "met")
    body = [(r.metric, r.value, r.baseline, r.target, "yes" if r.ok else "NO") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(f"\n### {title}\n")
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in body:
        print(line(cells))
    return all(r.ok for r in rows)
