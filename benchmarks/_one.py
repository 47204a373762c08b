"""``python -m benchmarks._one bench_x``: run one benchmark module; the exit status says how.

The convention of a benchmark module ``bench_<name>.py``: a ``main()`` (plain or async, no
required arguments) measures against a baseline taken in the same run, prints its table(s)
with :func:`benchmarks._table.print_table`, and returns True when every target was met, False
when one was missed. It raises when it cannot measure (a missing service, a crash): that is an
error, not a missed target. A module without ``main()`` is run as a script; exit status 0 then
counts as met and anything else as an error.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import runpy
import sys
import traceback

EXIT_MET = 0
EXIT_MISSED = 3
EXIT_ERROR = 4


def run(module_name: str) -> int:
    """Import and run one benchmark; return its exit status."""
    qualified = f"benchmarks.{module_name}"
    # The measuring process does not collect cyclic garbage (as timeit does): with the tens of
    # thousands of frames a streaming benchmark keeps, one full collection pauses it for
    # ~200 ms, and that pause would be charged to whatever it was timing. Reference counting
    # still frees everything else; the servers measured keep their collector on.
    gc.disable()
    try:
        module = importlib.import_module(qualified)
        main = getattr(module, "main", None)
        if main is None:
            try:
                runpy.run_module(qualified, run_name="__main__")
            except SystemExit as exc:
                return EXIT_MET if exc.code in (0, None) else EXIT_ERROR
            return EXIT_MET
        result = main()
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
    except BaseException:  # whatever stopped it, the runner reports it as an error row
        traceback.print_exc()
        return EXIT_ERROR
    return EXIT_MISSED if result is False else EXIT_MET


async def _await(awaitable: object) -> object:
    return await awaitable  # type: ignore[misc]


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    raise SystemExit(run(sys.argv[1]))
