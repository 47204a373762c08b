"""``memory.get`` and ``memory.append``: the agent's Markdown memory in the workspace.

They use the same functions as the gateway's memory methods (:mod:`openfoal_kernel.memory`) on
the workspace's host path, in every runtime mode: memory is the agent's own state, kept beside
the session, not an effect inside the sandbox.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from ..memory import LONG_TERM, MAX_APPEND_BYTES, append_daily, read_memory
from ._common import MAX_OUTPUT_BYTES, cap_text, from_error, truncation_marker
from .base import Tool, ToolContext, ToolResult


class MemoryGetArgs(BaseModel):
    """Arguments of memory.get."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        default=LONG_TERM,
        description="MEMORY.md (long-term facts) or memory/YYYY-MM-DD.md (a day's notes).",
    )


class MemoryAppendArgs(BaseModel):
    """Arguments of memory.append."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=MAX_APPEND_BYTES,
        description="Markdown to add to today's notes (memory/YYYY-MM-DD.md).",
    )
    long_term: bool = Field(
        default=False, description="Also add it to MEMORY.md (durable facts and preferences)."
    )


class MemoryGetTool(Tool[MemoryGetArgs]):
    """Reads a memory file ('' when it does not exist yet)."""

    name = "memory.get"
    description = (
        "Read the agent's memory: MEMORY.md (long-term) or memory/YYYY-MM-DD.md (daily notes)."
    )
    Args = MemoryGetArgs

    async def run(self, args: MemoryGetArgs, ctx: ToolContext) -> ToolResult:
        """Read through :func:`openfoal_kernel.memory.read_memory`."""
        try:
            text = await asyncio.to_thread(read_memory, ctx.memory_root or ctx.workspace, args.path)
        except Exception as exc:
            return from_error(exc)
        out, cut = cap_text(text)
        if cut:
            out += truncation_marker(MAX_OUTPUT_BYTES)
        return ToolResult(status="success", output=out or f"({args.path} is empty)")


class MemoryAppendTool(Tool[MemoryAppendArgs]):
    """Appends a note to today's daily file (and optionally MEMORY.md)."""

    name = "memory.append"
    description = (
        "Remember something: append Markdown to today's notes, and with long_term=true also "
        "to MEMORY.md."
    )
    Args = MemoryAppendArgs

    async def run(self, args: MemoryAppendArgs, ctx: ToolContext) -> ToolResult:
        """Append through :func:`openfoal_kernel.memory.append_daily`."""
        try:
            path, n = await asyncio.to_thread(
                append_daily,
                ctx.memory_root or ctx.workspace,
                args.text,
                also_long_term=args.long_term,
            )
        except Exception as exc:
            return from_error(exc)
        extra = f" and to {LONG_TERM}" if args.long_term else ""
        return ToolResult(status="success", output=f"appended {n} bytes to {path}{extra}")
