"""What a notebook on the agent kernel gets besides turns: commands, history, completion, help.

* A cell that is a single ``/word`` is a kernel command (:data:`COMMANDS`), not a turn.
* History: the cells of this kernel's conversation with their answers (``history_request``).
* Completion: ``/`` commands, and names of files in the workspace for the word being typed.
* Inspection: a tool's description, for a tool name under the cursor.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..tools.base import Tool

#: Kernel commands a cell may consist of, with what they do.
COMMANDS = {
    "/help": "show this help (in the pager)",
    "/clear": "start a new conversation: forget earlier cells and clear this output",
    "/tools": "list the tools the agent may call",
}
_COMMAND = re.compile(r"^/[A-Za-z][\w-]*$")
_WORD = re.compile(r"[\w./-]*$")
#: The history session number of this kernel's cells (one conversation per process).
HISTORY_SESSION = 1


def command_of(code: str) -> str | None:
    """The kernel command a cell is, or ``None`` for a chat turn."""
    text = code.strip()
    return text if _COMMAND.match(text) else None


def help_text(tools: dict[str, Tool[Any]]) -> str:
    """The pager text of ``/help``."""
    lines = ["OpenFoal agent kernel: each cell is a chat turn with the agent.", "", "Commands:"]
    lines += [f"  {name:8} {what}" for name, what in COMMANDS.items()]
    lines += ["", "Tools: " + ", ".join(sorted(tools))]
    return "\n".join(lines)


def tools_text(tools: dict[str, Tool[Any]]) -> str:
    """The markdown list of ``/tools``."""
    return "\n".join(f"- `{name}`: {tool.description}" for name, tool in sorted(tools.items()))


@dataclass
class CellHistory:
    """The inputs and answers of this kernel's cells, for ``history_request``."""

    cells: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, line: int, code: str, answer: str) -> None:
        """Record one executed cell."""
        self.cells.append((line, code, answer))

    def query(
        self,
        access: str,
        *,
        output: bool,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Entries ``(session, line, input)`` (or ``(session, line, (input, output))``)."""
        cells = list(self.cells)
        if access == "range":
            cells = [c for c in cells if (start or 0) <= c[0] < (stop or c[0] + 1)]
        elif access == "search":
            cells = [c for c in cells if fnmatch.fnmatchcase(c[1], pattern or "*")]
            if unique:  # the latest cell of each input
                latest = {code: (line, code, answer) for line, code, answer in cells}
                cells = sorted(latest.values())
        if access in ("tail", "search") and n is not None:
            cells = cells[-n:] if n > 0 else []
        return [
            (HISTORY_SESSION, line, (code, answer) if output else code)
            for line, code, answer in cells
        ]


def complete(code: str, cursor_pos: int, workspace: str) -> dict[str, Any]:
    """A ``complete_reply``: commands after ``/`` at the start, else workspace file names."""
    head = code[:cursor_pos]
    word = _WORD.search(head)
    prefix = word.group(0) if word else ""
    start = cursor_pos - len(prefix)
    if prefix.startswith("/") and not head[:start].strip():
        matches = [c for c in COMMANDS if c.startswith(prefix)]
    elif prefix:
        folder, _, stem = prefix.rpartition("/")
        base = os.path.join(workspace, folder) if folder else workspace
        try:
            names = sorted(os.listdir(base))
        except OSError:
            names = []
        lead = f"{folder}/" if folder else ""
        matches = [
            lead + name for name in names if name.startswith(stem) and not name.startswith(".")
        ]
    else:
        matches = []
    return {
        "status": "ok",
        "matches": matches,
        "cursor_start": start,
        "cursor_end": cursor_pos,
        "metadata": {},
    }


def inspect(code: str, cursor_pos: int, tools: dict[str, Tool[Any]]) -> dict[str, Any]:
    """An ``inspect_reply``: the description of the tool named under the cursor."""
    left = re.search(r"[\w.]*$", code[:cursor_pos])
    right = re.match(r"[\w.]*", code[cursor_pos:])
    name = (left.group(0) if left else "") + (right.group(0) if right else "")
    tool = tools.get(name.strip("."))
    if tool is None:
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}
    text = f"{tool.name}: {tool.description}"
    return {
        "status": "ok",
        "found": True,
        "data": {"text/plain": text, "text/markdown": f"**`{tool.name}`**: {tool.description}"},
        "metadata": {},
    }
