"""Who may read or change what: owners, and the admins (the server owner and ``admin_users``).

Policy scopes have owners: ``default`` governs everyone (only admins change it),
``user:<name>`` governs that user's runs, ``session:<id>`` that session's runs (its owner's).
Any other scope is an admin's. See docs/limits.md, "Per-owner scoping".
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from openfoal_kernel.protocol import ErrorCode, OpenFoalError

from ..store.base import EVERYONE
from .policy import DEFAULT_SCOPE
from .session_policy import SESSION_SCOPE_PREFIX, USER_SCOPE_PREFIX

OwnerOf = Callable[[str], str | None]


class Access:
    """Role checks of one server."""

    def __init__(self, server_owner: str, admin_users: Collection[str] = ()) -> None:
        self.server_owner = server_owner
        self.admins = frozenset({server_owner, *admin_users})

    def is_admin(self, user: str) -> bool:
        """The server owner and the configured admins see and change everything."""
        return user in self.admins

    def scope_owner(self, scope_key: str, session_owner: OwnerOf) -> str | None:
        """Whom a policy scope governs: EVERYONE, one user, or None (an admin's scope)."""
        if scope_key == DEFAULT_SCOPE:
            return EVERYONE
        if scope_key.startswith(USER_SCOPE_PREFIX):
            return scope_key[len(USER_SCOPE_PREFIX) :] or None
        if scope_key.startswith(SESSION_SCOPE_PREFIX):
            return session_owner(scope_key[len(SESSION_SCOPE_PREFIX) :])
        return None

    def policy_read(self, user: str, scope_key: str, session_owner: OwnerOf) -> None:
        """FORBIDDEN unless ``user`` may read the scope (another user's scope is theirs)."""
        owner = self.scope_owner(scope_key, session_owner)
        personal = scope_key.startswith((USER_SCOPE_PREFIX, SESSION_SCOPE_PREFIX))
        if personal and owner != user and not self.is_admin(user):
            raise OpenFoalError(ErrorCode.FORBIDDEN, f"policy {scope_key!r} is another user's")

    def policy_write(self, user: str, scope_key: str, session_owner: OwnerOf) -> str:
        """The audit owner of a change by ``user`` to the scope; FORBIDDEN when not allowed."""
        owner = self.scope_owner(scope_key, session_owner)
        if self.is_admin(user):
            return owner or user
        if owner == user:
            return owner
        if owner == EVERYONE:
            raise OpenFoalError(
                ErrorCode.FORBIDDEN,
                f"only the server owner or an admin changes the {DEFAULT_SCOPE!r} policy; "
                f"change your own scope {USER_SCOPE_PREFIX}{user} instead",
            )
        raise OpenFoalError(ErrorCode.FORBIDDEN, f"policy {scope_key!r} is not yours to change")
