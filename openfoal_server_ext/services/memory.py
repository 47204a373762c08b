"""The gateway's memory methods over the workspace's Markdown memory files."""

from __future__ import annotations

import asyncio
import hashlib
import re
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

    def __init__(self, workspace: Path, *, server_owner: str | None = None) -> None:
        self.workspace = workspace
        self.server_owner = server_owner

    def root_for(self, user: str | None) -> Path:
        """Where ``user``'s memory files live: the workspace for the server owner (and
        when no user is named), ``.openfoal/users/<name>/`` in it for anyone else."""
        if user is None or user == self.server_owner:
            return self.workspace
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", user)[:64].lstrip(".") or "_"
        digest = hashlib.sha256(user.encode()).hexdigest()[:8]
        root = self.workspace / ".openfoal" / "users" / f"{safe}-{digest}"
        root.mkdir(parents=True, exist_ok=True)
        return root

    async def get(self, path: str, user: str | None = None) -> MemoryGetResult:
        """Read ``MEMORY.md`` or ``memory/YYYY-MM-DD.md`` of ``user``."""
        content = await asyncio.to_thread(read_memory, self.root_for(user), path)
        return MemoryGetResult(path=path.strip().removeprefix("./"), content=content)

    async def append_daily(
        self, text: str, also_long_term: bool, user: str | None = None
    ) -> MemoryAppendResult:
        """Append to today's note (and MEMORY.md) of ``user``."""
        path, written = await asyncio.to_thread(
            append_daily, self.root_for(user), text, also_long_term=also_long_term
        )
        return MemoryAppendResult(path=path, bytes=written)

    async def archive(
        self, date: str | None, clear_daily: bool, user: str | None = None
    ) -> MemoryArchiveResult:
        """Archive a day's note of ``user``."""
        archived, path = await asyncio.to_thread(
            archive, self.root_for(user), date=date, clear_daily=clear_daily
        )
        return MemoryArchiveResult(archived=archived, path=path)

    async def prompt_for(self, session_key: str, user: str | None = None) -> str:
        """Memory for the prompt of a personal session (main or a direct chat), else ''.

        Group sessions never see personal memory.
        """
        tail = canonical_session_key(session_key).split("/", 2)[2]
        if not (tail == "main" or tail.startswith("main:") or tail.startswith("dm:")):
            return ""
        return await asyncio.to_thread(prompt_context, self.root_for(user))
