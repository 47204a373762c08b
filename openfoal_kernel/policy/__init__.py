"""Policy evaluation on every tool call: allow, deny or gate."""

from __future__ import annotations

from .evaluate import Decision, decide

__all__ = ["Decision", "decide"]
