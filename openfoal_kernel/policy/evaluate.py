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

    A per-tool ``allow`` does not bypass the high-risk rule: a high-risk call is gated (or
    denied) unless the high-risk rule itself allows it, so opening a tool never opens its
    dangerous forms by accident.
    """
    tool_rule = policy.tools.get(tool_name)
    if tool_rule == "deny":
        return Decision(rule="deny", reason=f"policy denies {tool_name}")
    if risk is not None and policy.highRisk != "allow":
        return Decision(rule=policy.highRisk, reason=f"high risk: {risk}")
    if tool_rule is not None:
        return Decision(rule=tool_rule, reason=f"policy rule for {tool_name}: {tool_rule}")
    return Decision(rule=policy.toolDefault, reason=f"policy default: {policy.toolDefault}")
