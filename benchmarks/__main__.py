"""``python -m benchmarks [NAME ...]``: run every ``bench_*.py`` here, each in its own process.

A benchmark that cannot measure (an exception, a missing service, a crash, a time-out) is an
error row in the summary and the others still run. The exit status is non-zero only when a
benchmark errored: a missed target is a result, reported in the tables, not a failure to run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ._one import EXIT_ERROR, EXIT_MET, EXIT_MISSED
from ._table import Row, print_table

HERE = Path(__file__).resolve().parent


def discover(names: list[str]) -> list[str]:
    """Module names of the benchmarks to run (all, or those matching ``names``)."""
    found = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if not names:
        return found
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in names]
    return [m for m in found if m in wanted]


def run_one(module: str, timeout: float) -> tuple[str, bool, float]:
    """Run one benchmark in a child process; return its verdict, whether it ran, seconds."""
    started = time.monotonic()
    cmd = [sys.executable, "-m", "benchmarks._one", module]
    try:
        code = subprocess.run(cmd, cwd=HERE.parent, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        return f"ERROR: no result within {timeout:g} s", False, time.monotonic() - started
    elapsed = time.monotonic() - started
    if code == EXIT_MET:
        return "every target met", True, elapsed
    if code == EXIT_MISSED:
        return "a target was missed (see its table)", True, elapsed
    if code == EXIT_ERROR:
        return "ERROR: it raised (traceback above)", False, elapsed
    return f"ERROR: exit status {code}", False, elapsed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print a summary, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds one benchmark may take (default 600)"
    )
    args = parser.parse_args(argv)
    modules = discover(args.names)
    if not modules:
        print(f"no benchmark matches {args.names}", file=sys.stderr)
        return 2
    rows = []
    errors = 0
    for module in modules:
        print(f"\n## {module}", flush=True)
        verdict, ran, elapsed = run_one(module, args.timeout)
        errors += not ran
        rows.append(
            Row(
                metric=module,
                value=verdict,
                baseline=f"{elapsed:.0f} s",
                target="runs to the end",
                ok=ran,
            )
        )
    print_table("Benchmarks (errors only fail the command; see each table for targets)", rows)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
