"""Where a tool call's fate is decided from the policy snapshot of its run."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.types import Policy, Rule


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The verdict on one call and why."""

    rule: Rule
    reason: str


def decide(policy: Policy, tool_name: str, risk: str | None) -> Decision:
    """Apply the policy: a per-tool rule wins, then the high-risk rule, then the default.

    A per-tool rule is a person's explicit choice for that tool (``allow`` opens even its
    high-risk forms, ``deny`` closes it); without one, a high-risk call follows ``highRisk``
    and any other call ``toolDefault``.
    """
    tool_rule = policy.tools.get(tool_name)
    if tool_rule is not None:
        return Decision(
            rule=tool_rule,
            reason=f"policy rule for {tool_name}: {tool_rule}"
            + (f" (high risk: {risk})" if risk else ""),
        )
    if risk is not None:
        return Decision(rule=policy.highRisk, reason=f"high risk: {risk}")
    return Decision(rule=policy.toolDefault, reason=f"policy default: {policy.toolDefault}")
