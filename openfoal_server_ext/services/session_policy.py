"""The policy a session's runs take: the ``default`` scope, with the tool rules of the
session owner's scope (``user:<name>``) and then of the session's own scope laid over it."""

from __future__ import annotations

from collections.abc import Callable

from openfoal_kernel.protocol.types import Policy

from .policy import DEFAULT_SCOPE, PolicyService

__all__ = [
    "SESSION_SCOPE_PREFIX",
    "USER_SCOPE_PREFIX",
    "SessionPolicies",
    "effective_policy",
    "session_scope",
    "user_scope",
]

#: A session's scope is ``session:<sessionId>``; ``policy.update`` writes it like any scope.
SESSION_SCOPE_PREFIX = "session:"


#: A user's scope is ``user:<name>``: its tool rules govern every run of that user's sessions.
USER_SCOPE_PREFIX = "user:"


def user_scope(user: str) -> str:
    """The scope key of one user's rules."""
    return f"{USER_SCOPE_PREFIX}{user}"


def session_scope(session_id: str) -> str:
    """The scope key of one session's rules."""
    return f"{SESSION_SCOPE_PREFIX}{session_id}"


def effective_policy(default: Policy, session: Policy | None) -> Policy:
    """The default policy with the session scope's per-tool rules laid over its own.

    Only ``tools`` is taken from the session scope ("allow ``bash.exec`` for this session");
    every other field, and the version a run records, stays the default's.
    """
    if session is None or not session.tools:
        return default
    return default.model_copy(update={"tools": {**default.tools, **session.tools}})


class SessionPolicies:
    """Callable giving the policy in force for a session's next run."""

    def __init__(
        self, policies: PolicyService, owner_of: Callable[[str], str | None] | None = None
    ) -> None:
        self.policies = policies
        self.owner_of = owner_of

    def _written(self, scope: str) -> Policy | None:
        stored = self.policies.current(scope)
        # a scope never written answers with the default policy itself
        return stored if stored.scopeKey == scope else None

    def __call__(self, session_id: str | None = None) -> Policy:
        """The effective policy for ``session_id`` (the default policy without one)."""
        default = self.policies.current(DEFAULT_SCOPE)
        if not session_id:
            return default
        owner = self.owner_of(session_id) if self.owner_of is not None else None
        if owner:
            default = effective_policy(default, self._written(user_scope(owner)))
        return effective_policy(default, self._written(session_scope(session_id)))
