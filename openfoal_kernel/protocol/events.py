"""Event names of the gateway protocol, and which of them are deltas."""

from __future__ import annotations

from typing import Final

AGENT_ACCEPTED: Final = "agent.accepted"
AGENT_DELTA: Final = "agent.delta"
AGENT_TOOL_CALL: Final = "agent.tool_call"
AGENT_TOOL_RESULT: Final = "agent.tool_result"
AGENT_COMPLETED: Final = "agent.completed"
AGENT_FAILED: Final = "agent.failed"
GATE_REQUESTED: Final = "policy-gate.requested"
GATE_RESOLVED: Final = "policy-gate.resolved"
RUNTIME_MODE_CHANGED: Final = "runtime.mode_changed"
SESSION_UPDATED: Final = "session.updated"
POLICY_UPDATED: Final = "policy.updated"
SYNC_STATE_CHANGED: Final = "sync.state_changed"

EVENTS: Final = frozenset(
    {
        AGENT_ACCEPTED,
        AGENT_DELTA,
        AGENT_TOOL_CALL,
        AGENT_TOOL_RESULT,
        AGENT_COMPLETED,
        AGENT_FAILED,
        GATE_REQUESTED,
        GATE_RESOLVED,
        RUNTIME_MODE_CHANGED,
        SESSION_UPDATED,
        POLICY_UPDATED,
        SYNC_STATE_CHANGED,
    }
)

#: Events that end a run; a run emits exactly one of them.
TERMINAL_EVENTS: Final = frozenset({AGENT_COMPLETED, AGENT_FAILED})

#: Events that may be committed within a short window after being announced.
DELTA_EVENTS: Final = frozenset({AGENT_DELTA})
