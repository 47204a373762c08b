"""Trace ids: honour a W3C ``traceparent`` from the client, else start a new trace."""

from __future__ import annotations

import re
import uuid

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def trace_id_from(traceparent: object) -> str:
    """The trace id of a valid ``traceparent``, or a fresh one (also for a non-string)."""
    if isinstance(traceparent, str) and traceparent:
        m = _TRACEPARENT.match(traceparent.strip().lower())
        if m and m.group(1) != "0" * 32:
            return m.group(1)
    return uuid.uuid4().hex
