"""The degraded policy of a cloud turn whose sandbox cannot be had (``sandboxDegrade``)."""

from __future__ import annotations

from typing import Final, Literal

from ..protocol.types import Policy
from ..tools.registry import default_tools

__all__ = ["READ_ONLY_TOOLS", "degrade_mode", "degraded_policy"]

#: The tools that change nothing, on the host or anywhere: all a ``read-only`` turn may use.
READ_ONLY_TOOLS: Final = frozenset({"file.read", "file.list", "memory.get", "notebook.variables"})


def degrade_mode(policy: Policy) -> Literal["local", "read-only", "fail"]:
    """What a cloud turn does without its sandbox under ``policy``."""
    if policy.sandboxDegrade is not None:
        return policy.sandboxDegrade
    return "local" if policy.bashMode == "host" else "fail"


def degraded_policy(policy: Policy) -> Policy:
    """``policy`` for a turn degraded to ``read-only``: every tool that is not read-only is
    denied by name; the read-only ones keep their rules (their own, high-risk, default)."""
    tools = {name: "deny" for name in default_tools() if name not in READ_ONLY_TOOLS}
    tools.update({k: v for k, v in policy.tools.items() if k in READ_ONLY_TOOLS})
    return policy.model_copy(update={"tools": tools})
