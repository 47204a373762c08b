"""What a gated call would change, shown on its card: a ``file.write`` as a unified diff.

The gateway reads the workspace file when the gate is raised (through the same path
confinement the tools use), so the person deciding sees the change against the file as it
is then. In cloud mode the sandbox works on the same workspace (a bind mount).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from openfoal_kernel.executors.confine import Confined, Roots, read_bytes
from openfoal_kernel.protocol import ErrorCode, GateItem, OpenFoalError
from openfoal_kernel.protocol.types import GatePreview
from openfoal_kernel.redact import redact_text

#: Largest current file read for a diff (what ``file.write`` may write at most, plus one).
MAX_CURRENT_BYTES = 1024 * 1024 + 1
#: Longest diff sent on a card; a longer one is cut at a line end and marked ``truncated``.
MAX_DIFF_CHARS = 200_000


def gate_preview(workspace: Path, gate: GateItem) -> GatePreview | None:
    """The preview of a gated call, or ``None`` for a tool that has none."""
    if gate.toolName != "file.write":
        return None
    return file_write_preview(workspace, gate.args)


def file_write_preview(workspace: Path, args: dict[str, Any]) -> GatePreview | None:
    """Diff of ``file.write`` ``args`` (path, content, append) against the workspace file."""
    path, content = args.get("path"), args.get("content")
    if not isinstance(path, str) or not path or not isinstance(content, str):
        return None  # the tool will refuse these arguments itself
    try:
        data: bytes | None = read_bytes(Confined(Roots(workspace)), path, MAX_CURRENT_BYTES)
    except OpenFoalError as exc:
        if exc.code != ErrorCode.NOT_FOUND:
            return GatePreview(path=path, note=exc.message)
        data = None
    if data is not None and len(data) >= MAX_CURRENT_BYTES:
        return GatePreview(path=path, exists=True, note="the current file is too large to diff")
    try:
        current = "" if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return GatePreview(path=path, exists=True, note="the current file is not UTF-8 text")
    new = current + content if args.get("append") else content
    lines = list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{path}" if data is not None else "/dev/null",
            tofile=f"b/{path}",
        )
    )
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    text, truncated = "", False
    for line in lines:
        line = line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        if len(text) + len(line) > MAX_DIFF_CHARS:
            truncated = True
            break
        text += line
    return GatePreview(
        path=path,
        exists=data is not None,
        diff=redact_text(text),
        added=added,
        removed=removed,
        truncated=truncated,
    )
