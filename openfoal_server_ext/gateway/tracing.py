"""Trace ids: honour a W3C ``traceparent`` from the client, else start a new trace."""

from __future__ import annotations

import re
import uuid
from typing import Any

from openfoal_kernel.protocol import ErrorCode, OpenFoalError

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def trace_id_from(traceparent: Any) -> str:
    """The trace id of a valid ``traceparent``, or a fresh one (also for a non-string)."""
    if isinstance(traceparent, str) and traceparent:
        m = _TRACEPARENT.match(traceparent.strip().lower())
        if m and m.group(1) != "0" * 32:
            return m.group(1)
    return uuid.uuid4().hex


def check_traceparent(value: Any) -> None:
    """``traceparent`` must be a string when given (any string: invalid ones start a trace)."""
    if value is not None and not isinstance(value, str):
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST,
            f"traceparent must be a string, not {type(value).__name__}",
        )
