"""Team roles: who may act on other users' sessions, gates, audit and the team policy.

On a JupyterHub the roles come from the user's Hub groups, named by the app's traits
(``member_groups``, ``approver_groups``, ``admin_groups``). A server with none of them set
(a personal server) has no team: its user edits its policy, and nobody acts on another
user's sessions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from openfoal_kernel.protocol import ErrorCode, OpenFoalError

MEMBER = "member"
APPROVER = "approver"
ADMIN = "admin"
#: What the user of a server without team roles holds: their own work and its policy.
NO_TEAM_ROLES = frozenset({MEMBER, ADMIN})


class CrossUserRefusal(OpenFoalError):
    """FORBIDDEN on another user's session, gate, run or audit; the gateway audits it with
    both identities (the caller and ``owner``)."""

    def __init__(self, message: str, *, owner: str, resource: str) -> None:
        super().__init__(ErrorCode.FORBIDDEN, message)
        self.owner = owner
        self.resource = resource


@dataclass(frozen=True, kw_only=True)
class TeamRoles:
    """The Hub groups that give each role (empty lists everywhere: no team roles)."""

    member_groups: tuple[str, ...] = ()
    approver_groups: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        """Whether roles come from groups at all."""
        return bool(self.member_groups or self.approver_groups or self.admin_groups)

    def roles_of(self, groups: Iterable[str] | None) -> frozenset[str]:
        """The roles of a user in ``groups``; an admin approves too, both are members.

        Without team roles a user is a member who edits the server's policy. With them, a
        user in none of the groups holds none (and is refused); with ``member_groups``
        empty, any Hub user allowed to reach the server is a member.
        """
        if not self.enabled:
            return NO_TEAM_ROLES
        mine = set(groups or ())
        roles: set[str] = set()
        if mine & set(self.admin_groups):
            roles |= {ADMIN, APPROVER, MEMBER}
        if mine & set(self.approver_groups):
            roles |= {APPROVER, MEMBER}
        if not self.member_groups or mine & set(self.member_groups):
            roles.add(MEMBER)
        return frozenset(roles)

    def all_groups(self) -> list[str]:
        """Every group that gives a role, for messages."""
        return sorted({*self.member_groups, *self.approver_groups, *self.admin_groups})
