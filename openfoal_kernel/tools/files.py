"""``file.read``, ``file.write``, ``file.list``: workspace files through the session's executor.

Confinement (no ``..``, no symlinks followed, no hard-linked files, nothing outside the roots)
is the executor's job; these tools add size caps and the risk rule for writes.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from ..executors.base import FileEntry
from ..protocol.errors import ErrorCode
from ._common import MAX_OUTPUT_BYTES, cap_text, decode, from_error, looks_binary
from .base import Tool, ToolContext, ToolResult

#: Largest read (a longer file comes back cut, marked) and largest write, in bytes.
MAX_READ_BYTES = 1024 * 1024
DEFAULT_READ_BYTES = 256 * 1024
MAX_WRITE_BYTES = 1024 * 1024
MAX_LIST_ENTRIES = 2000
#: Where the agent may write without a high-risk flag, relative to the workspace.
SCRATCH_AREAS: tuple[tuple[str, ...], ...] = (("scratch",), (".openfoal", "tmp"))

_PATH_HELP = "Path relative to the workspace root (or absolute, inside the workspace)."


class ReadArgs(BaseModel):
    """Arguments of file.read."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description=_PATH_HELP)
    max_bytes: int = Field(
        default=DEFAULT_READ_BYTES,
        ge=1,
        le=MAX_READ_BYTES,
        description="Read at most this many bytes from the start of the file.",
    )


class WriteArgs(BaseModel):
    """Arguments of file.write."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description=_PATH_HELP + " Missing folders are created.")
    content: str = Field(max_length=MAX_WRITE_BYTES, description="UTF-8 text to write.")
    append: bool = Field(default=False, description="Append to the file instead of replacing it.")


class ListArgs(BaseModel):
    """Arguments of file.list."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(default=".", description="Directory to list. " + _PATH_HELP)
    depth: int = Field(default=1, ge=1, le=5, description="1 lists the folder; 2 adds subfolders.")
    max_entries: int = Field(
        default=200, ge=1, le=MAX_LIST_ENTRIES, description="Stop after this many entries."
    )


def in_scratch(path: str, workspace: Path) -> bool:
    """Whether ``path`` names something inside a scratch area of the workspace (lexically)."""
    p = PurePosixPath(path)
    if ".." in p.parts:
        return False
    parts = p.parts
    if p.is_absolute():
        for ws in (PurePosixPath(workspace), PurePosixPath(Path(workspace).resolve())):
            if parts[: len(ws.parts)] == ws.parts:
                parts = parts[len(ws.parts) :]
                break
        else:
            return False
    return any(len(parts) > len(a) and parts[: len(a)] == a for a in SCRATCH_AREAS)


class FileReadTool(Tool[ReadArgs]):
    """Reads a text file of the workspace; the content comes back as data, verbatim."""

    name = "file.read"
    description = (
        "Read a text file in the workspace. Returns its content verbatim (binary files are "
        "not shown). Files over max_bytes are cut."
    )
    Args = ReadArgs

    async def run(self, args: ReadArgs, ctx: ToolContext) -> ToolResult:
        """Read up to ``max_bytes`` (one byte more tells whether the file is longer)."""
        try:
            data = await ctx.executor.read_file(args.path, max_bytes=args.max_bytes + 1)
        except Exception as exc:
            return from_error(exc)
        cut = len(data) > args.max_bytes
        data = data[: args.max_bytes]
        if looks_binary(data):
            more = "+" if cut else ""
            note = f"[binary file: {len(data)}{more} bytes, not shown]"
            return ToolResult(status="success", output=note)
        text = decode(data)
        if cut:
            text += f"\n[file truncated at {args.max_bytes} bytes]"
        return ToolResult(status="success", output=text)


class FileWriteTool(Tool[WriteArgs]):
    """Writes (atomically) or appends a text file of the workspace."""

    name = "file.write"
    description = (
        "Write a UTF-8 text file in the workspace (replacing it, or appending). Writes under "
        "scratch/ are routine; elsewhere they may need approval. At most 1 MiB per call."
    )
    Args = WriteArgs

    def risk(self, args: WriteArgs, ctx: ToolContext) -> str | None:
        """Writing outside the scratch areas can change the user's work: high risk."""
        if in_scratch(args.path, ctx.workspace):
            return None
        return f"writes {args.path!r}, outside the scratch area (scratch/, .openfoal/tmp/)"

    async def run(self, args: WriteArgs, ctx: ToolContext) -> ToolResult:
        """Encode, check the size cap, write through the executor."""
        data = args.content.encode("utf-8", "surrogatepass")
        if len(data) > MAX_WRITE_BYTES:
            msg = f"content is {len(data)} bytes; the limit is {MAX_WRITE_BYTES}"
            return ToolResult.failed(ErrorCode.INVALID_REQUEST.value, msg)
        try:
            n = await ctx.executor.write_file(args.path, data, append=args.append)
        except Exception as exc:
            return from_error(exc)
        verb = "appended" if args.append else "wrote"
        return ToolResult(status="success", output=f"{verb} {n} bytes to {args.path}")


class FileListTool(Tool[ListArgs]):
    """Lists a workspace directory (optionally a few levels deep); symlinks are not followed."""

    name = "file.list"
    description = (
        "List files and folders in the workspace: kind, size and path of each entry. "
        "Use depth > 1 to include subfolders."
    )
    Args = ListArgs

    async def run(self, args: ListArgs, ctx: ToolContext) -> ToolResult:
        """Breadth-first listing through ``executor.list_dir``, bounded by ``max_entries``."""
        entries: list[FileEntry] = []
        level = [args.path]
        cut = False
        try:
            for depth in range(args.depth):
                nxt: list[str] = []
                for folder in level:
                    room = args.max_entries - len(entries)
                    got = await ctx.executor.list_dir(folder, max_entries=room + 1)
                    if len(got) > room:
                        cut = True
                        got = got[:room]
                    entries.extend(got)
                    nxt.extend(e.path for e in got if e.kind == "dir")
                    if cut:
                        break
                if cut or depth + 1 == args.depth:
                    break
                level = nxt
        except Exception as exc:
            return from_error(exc)
        lines = [_line(e) for e in entries] or ["(empty)"]
        if cut:
            lines.append(f"[listing stopped at {args.max_entries} entries]")
        text, trimmed = cap_text("\n".join(lines))
        if trimmed:
            text += f"\n[listing truncated at {MAX_OUTPUT_BYTES} bytes]"
        return ToolResult(status="success", output=text)


def _line(e: FileEntry) -> str:
    if e.kind == "dir":
        return f"dir     {'':>10}  {e.path}/"
    if e.kind == "symlink":
        return f"symlink {'':>10}  {e.path} (not followed)"
    return f"{e.kind:<7} {e.size:>10}  {e.path}"
