"""The tools offered to the model, and their specs as providers see them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..providers.base import ToolSpec
from .base import Tool
from .files import FileListTool, FileReadTool, FileWriteTool
from .http import HttpRequestTool
from .memory import MemoryAppendTool, MemoryGetTool
from .notebook_vars import NotebookVariablesTool
from .python import PythonExecTool
from .shell import BashExecTool

__all__ = ["default_tools", "tool_specs"]


def default_tools() -> dict[str, Tool[Any]]:
    """A fresh instance of every tool, keyed by its wire name (``bash.exec`` ...)."""
    tools: list[Tool[Any]] = [
        BashExecTool(),
        FileReadTool(),
        FileWriteTool(),
        FileListTool(),
        HttpRequestTool(),
        PythonExecTool(),
        MemoryGetTool(),
        MemoryAppendTool(),
        NotebookVariablesTool(),
    ]
    return {t.name: t for t in tools}


def tool_specs(tools: Mapping[str, Tool[Any]] | Iterable[Tool[Any]]) -> list[ToolSpec]:
    """The :class:`ToolSpec` of each tool (name, description, JSON Schema of its arguments)."""
    items = tools.values() if isinstance(tools, Mapping) else tools
    return [
        ToolSpec(name=t.name, description=t.description, parameters=t.parameters()) for t in items
    ]
