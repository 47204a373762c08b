"""The gateway's memory methods over the workspace's Markdown memory files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from openfoal_kernel.memory import append_daily, archive, prompt_context, read_memory
from openfoal_kernel.protocol.results import (
    MemoryAppendResult,
    MemoryArchiveResult,
    MemoryGetResult,
)
from openfoal_kernel.protocol.session_keys import canonical_session_key


class MemoryService:
    """``memory.get``, ``memory.appendDaily``, ``memory.archive``; the prompt's memory part."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace

    async def get(self, path: str) -> MemoryGetResult:
        """Read ``MEMORY.md`` or ``memory/YYYY-MM-DD.md``."""
        content = await asyncio.to_thread(read_memory, self.workspace, path)
        return MemoryGetResult(path=path.strip().removeprefix("./"), content=content)

    async def append_daily(self, text: str, also_long_term: bool) -> MemoryAppendResult:
        """Append to today's note (and MEMORY.md)."""
        path, written = await asyncio.to_thread(
            append_daily, self.workspace, text, also_long_term=also_long_term
        )
        return MemoryAppendResult(path=path, bytes=written)

    async def archive(self, date: str | None, clear_daily: bool) -> MemoryArchiveResult:
        """Archive a day's note."""
        archived, path = await asyncio.to_thread(
            archive, self.workspace, date=date, clear_daily=clear_daily
        )
        return MemoryArchiveResult(archived=archived, path=path)

    async def prompt_for(self, session_key: str) -> str:
        """Memory for the prompt of a personal session (main or a direct chat), else ''.

        Group sessions never see personal memory.
        """
        tail = canonical_session_key(session_key).split("/", 2)[2]
        if not (tail == "main" or tail.startswith("main:") or tail.startswith("dm:")):
            return ""
        return await asyncio.to_thread(prompt_context, self.workspace)
