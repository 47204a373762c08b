"""The policy a session's runs take: the ``default`` scope, with the session's own tool rules."""

from __future__ import annotations

from openfoal_kernel.protocol.types import Policy

from .policy import DEFAULT_SCOPE, PolicyService

__all__ = ["SESSION_SCOPE_PREFIX", "SessionPolicies", "effective_policy", "session_scope"]

#: A session's scope is ``session:<sessionId>``; ``policy.update`` writes it like any scope.
SESSION_SCOPE_PREFIX = "session:"


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

    def __init__(self, policies: PolicyService) -> None:
        self.policies = policies

    def __call__(self, session_id: str | None = None) -> Policy:
        """The effective policy for ``session_id`` (the default policy without one)."""
        default = self.policies.current(DEFAULT_SCOPE)
        if not session_id:
            return default
        scope = session_scope(session_id)
        stored = self.policies.current(scope)
        # a scope never written answers with the default policy itself
        return effective_policy(default, stored if stored.scopeKey == scope else None)
