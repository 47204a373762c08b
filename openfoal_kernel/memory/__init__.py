"""Agent memory as Markdown in the workspace: ``MEMORY.md`` and ``memory/YYYY-MM-DD.md``.

The files are the source of truth. The same plain functions serve the agent's ``memory.get`` /
``memory.append`` tools and the gateway's ``memory.get`` / ``memory.appendDaily`` /
``memory.archive`` methods.
"""

from __future__ import annotations

from .files import (
    ARCHIVE_DIR,
    DAILY_DIR,
    LONG_TERM,
    MAX_APPEND_BYTES,
    MAX_READ_BYTES,
    append_daily,
    archive,
    daily_path,
    prompt_context,
    read_memory,
)

__all__ = [
    "ARCHIVE_DIR",
    "DAILY_DIR",
    "LONG_TERM",
    "MAX_APPEND_BYTES",
    "MAX_READ_BYTES",
    "append_daily",
    "archive",
    "daily_path",
    "prompt_context",
    "read_memory",
]
