"""The per-session budget of sandbox time: a ledger file that manager and executors share.

Executors (in agent kernels) append the seconds each exec took; the manager (in the server)
reads the sum. It is a host file, out of the sandbox's reach, so code in the container cannot
reset it, and it outlives the container (a reaped sandbox does not refill the budget).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..protocol.errors import ErrorCode, OpenFoalError

__all__ = ["Ledger", "budget_exceeded"]


def budget_exceeded(used_s: float, budget_s: float) -> OpenFoalError:
    """The ``BUDGET_EXCEEDED`` error of a session whose sandbox time is used up."""
    return OpenFoalError(
        ErrorCode.BUDGET_EXCEEDED,
        f"this session used its sandbox time budget ({used_s:.1f} s of {budget_s:g} s); "
        "raise the budget or start a new session",
        retryable=False,
    )


class Ledger:
    """Seconds of exec time, one line per exec, appended atomically (``O_APPEND``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def used(self) -> float:
        """The seconds charged so far (0 for a ledger that does not exist yet)."""
        try:
            text = self.path.read_text("ascii")
        except FileNotFoundError:
            return 0.0
        total = 0.0
        for line in text.split("\n"):
            try:
                seconds = float(line)
            except ValueError:
                continue  # a torn or empty line
            if math.isfinite(seconds) and seconds > 0:  # "nan" would disable the breaker
                total += seconds
        return total

    def charge(self, seconds: float) -> None:
        """Add ``seconds`` to the ledger."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, f"{max(seconds, 0.0):.6f}\n".encode("ascii"))
        finally:
            os.close(fd)

    def last_use(self) -> float | None:
        """When an exec last charged the ledger (epoch seconds), or ``None``."""
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return None

    def check(self, budget_s: float | None) -> float | None:
        """Seconds left (``None`` without a budget); raise ``BUDGET_EXCEEDED`` when none are."""
        if budget_s is None:
            return None
        used = self.used()
        if used >= budget_s:
            raise budget_exceeded(used, budget_s)
        return budget_s - used

    def remove(self) -> None:
        """Forget the session's usage (the session was deleted)."""
        self.path.unlink(missing_ok=True)
