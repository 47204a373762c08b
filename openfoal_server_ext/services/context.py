"""The per-request context services receive: who asks, under which trace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .roles import ADMIN, APPROVER, NO_TEAM_ROLES


@dataclass(kw_only=True)
class RequestContext:
    """Identity and tracing of one request, and how to subscribe its connection to events."""

    user: str
    trace_id: str
    workspace_id: str = "default"
    #: The caller's team roles (see services/roles.py).
    roles: frozenset[str] = NO_TEAM_ROLES
    #: Whether the server has team roles (roles from Hub groups) at all.
    team: bool = False
    on_subscribe: Callable[[str], None] | None = field(default=None, repr=False)

    def subscribe(self, session_id: str) -> None:
        """Deliver the session's events to the requesting connection (no-op over REST)."""
        if self.on_subscribe is not None:
            self.on_subscribe(session_id)

    @property
    def is_approver(self) -> bool:
        """May resolve gates of other users' sessions."""
        return self.team and APPROVER in self.roles

    @property
    def is_admin(self) -> bool:
        """May edit the server's (on a team: the team's) policy."""
        return ADMIN in self.roles

    @property
    def is_team_admin(self) -> bool:
        """A team admin: reads every user's audit trail."""
        return self.team and ADMIN in self.roles
