"""The policy a session's run takes: the default with the session's tool rules over it."""

from __future__ import annotations

from openfoal_kernel.protocol.types import Policy
from openfoal_server_ext.services.session_policy import effective_policy, session_scope


def test_session_tool_rules_win_and_everything_else_stays_the_default() -> None:
    default = Policy(version=4, highRisk="gate", tools={"bash.exec": "deny", "file.read": "gate"})
    session = Policy(scopeKey=session_scope("ses_1"), version=2, tools={"bash.exec": "allow"})
    merged = effective_policy(default, session)
    assert merged.tools == {"bash.exec": "allow", "file.read": "gate"}
    assert merged.version == 4 and merged.scopeKey == "default" and merged.highRisk == "gate"
    assert default.tools["bash.exec"] == "deny"  # the default itself is untouched


def test_without_session_rules_the_default_is_used_as_is() -> None:
    default = Policy(tools={"bash.exec": "gate"})
    assert effective_policy(default, None) is default
    assert effective_policy(default, Policy(scopeKey="session:s")) is default
    assert session_scope("ses_9") == "session:ses_9"
