"""The per-request context services receive: who asks, under which trace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(kw_only=True)
class RequestContext:
    """Identity and tracing of one request, and how to subscribe its connection to events."""

    user: str
    trace_id: str
    workspace_id: str = "default"
    on_subscribe: Callable[[str], None] | None = field(default=None, repr=False)

    def subscribe(self, session_id: str) -> None:
        """Deliver the session's events to the requesting connection (no-op over REST)."""
        if self.on_subscribe is not None:
            self.on_subscribe(session_id)
