"""What an agent kernel sets up once, so that none of its turns (the first one included) pays it.

* The shared HTTP client (:mod:`.shared_http`), built before any turn.
* The imports and tool schemas of a turn, prepared at start-up, while the kernel still waits
  in the gateway's pool rather than during a new session's first turn.
* httpcore tries ``import sniffio`` on every lock and event of every request; without that
  optional package each try searches ``sys.path`` again (about 50 us). Its absence is
  recorded once instead.
"""

from __future__ import annotations

import gc
import importlib.util
import sys

from ..executors import local  # noqa: F401  (loaded now rather than in a first turn)
from .shared_http import SHARED_HTTP
from .turn import make_tools


def warm_up() -> None:
    """Do the one-time work of a first turn now: tool schemas, the HTTP client."""
    for tool in make_tools().values():
        tool.parameters()
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        # None in sys.modules makes ``import sniffio`` fail at once (asyncio is then assumed,
        # which is what this kernel runs)
        sys.modules["sniffio"] = None  # type: ignore[assignment]
    SHARED_HTTP.prepare()
    # Everything loaded so far lives as long as the kernel: keep it out of the collector's
    # scans, so a full collection during a streamed answer pauses for the turn's objects only
    gc.collect()
    gc.freeze()
