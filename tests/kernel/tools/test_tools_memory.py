"""Memory files: path rules, appends under a lock, archiving, prompt context, the tools."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from openfoal_kernel.memory import append_daily, archive, prompt_context, read_memory
from openfoal_kernel.protocol.errors import OpenFoalError
from openfoal_kernel.tools.base import ToolContext
from openfoal_kernel.tools.memory import MemoryAppendTool, MemoryGetTool

DAY = date(2025, 3, 14)


@pytest.mark.parametrize(
    "path",
    [
        "../MEMORY.md",
        "/etc/passwd",
        "memory/../MEMORY.md",
        "MEMORY.md.bak",
        "memory.md",
        "memory/2025-13-01.md",
        "memory/2025-02-30.md",
        "memory/notes.md",
        "memory/archive/2025-03-14.md",
        "memory/2025-03-14.md/../../x",
        "notes.txt",
        "",
    ],
)
def test_only_memory_paths_are_accepted(workspace: Path, path: str) -> None:
    with pytest.raises(OpenFoalError) as info:
        read_memory(workspace, path)
    assert info.value.code.value == "INVALID_REQUEST"
    assert "only MEMORY.md or memory/YYYY-MM-DD.md" in info.value.message


def test_append_read_and_bytes(workspace: Path) -> None:
    assert read_memory(workspace, "MEMORY.md") == ""  # not written yet
    path, n = append_daily(workspace, "User prefers CSV exports.", today=DAY)
    assert path == "memory/2025-03-14.md"
    first = "# 2025-03-14\n\nUser prefers CSV exports.\n\n"
    assert read_memory(workspace, path) == first and n == len(first.encode())
    path, n = append_daily(
        workspace, "Dataset lives in s3://bucket/x", also_long_term=True, today=DAY
    )
    block = "Dataset lives in s3://bucket/x\n\n"
    assert n == len(block.encode())
    assert read_memory(workspace, path) == first + block
    assert read_memory(workspace, "MEMORY.md") == "# Long-term memory\n\n" + block
    assert (workspace / "memory" / "2025-03-14.md").read_text() == first + block
    with pytest.raises(OpenFoalError) as info:
        append_daily(workspace, "  \n", today=DAY)
    assert info.value.code.value == "INVALID_REQUEST"


def _appender(workspace: str, tag: str) -> None:
    for i in range(40):
        append_daily(Path(workspace), f"{tag}-{i}", also_long_term=True, today=DAY)


def test_concurrent_appends_lose_nothing(workspace: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(str(workspace), t)) for t in ("a", "b")]
    for p in procs:
        p.start()
    _appender(str(workspace), "c")
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    for path in ("memory/2025-03-14.md", "MEMORY.md"):
        lines = [
            x for x in read_memory(workspace, path).splitlines() if x and not x.startswith("#")
        ]
        assert sorted(lines) == sorted(f"{t}-{i}" for t in "abc" for i in range(40)), path


def test_archive_is_lossless_and_idempotent(workspace: Path) -> None:
    assert archive(workspace, date=DAY) == (False, "memory/archive/2025-03-14.md")
    append_daily(workspace, "one", today=DAY)
    assert archive(workspace, date="2025-03-14") == (True, "memory/archive/2025-03-14.md")
    archived = workspace / "memory/archive/2025-03-14.md"
    assert archived.read_text() == "# 2025-03-14\n\none\n\n"
    archive(workspace, date=DAY)  # again: nothing repeated
    assert archived.read_text() == "# 2025-03-14\n\none\n\n"
    append_daily(workspace, "two", today=DAY)
    archive(workspace, date=DAY, clear_daily=True)
    assert archived.read_text() == "# 2025-03-14\n\none\n\ntwo\n\n"
    assert not (workspace / "memory/2025-03-14.md").exists()
    append_daily(workspace, "three", today=DAY)  # a new note after clearing: appended, kept
    archive(workspace, date=DAY, clear_daily=True)
    assert archived.read_text() == "# 2025-03-14\n\none\n\ntwo\n\n# 2025-03-14\n\nthree\n\n"
    for bad in ("2025-3-14", "yesterday", "2025-02-30"):
        with pytest.raises(OpenFoalError) as info:
            archive(workspace, date=bad)
        assert info.value.code.value == "INVALID_REQUEST"


def test_prompt_context_has_long_term_and_two_days(workspace: Path) -> None:
    assert prompt_context(workspace, today=DAY) == ""
    append_daily(workspace, "old note", today=date(2025, 3, 12))
    append_daily(workspace, "yesterday note", today=date(2025, 3, 13))
    append_daily(workspace, "today note", also_long_term=True, today=DAY)
    text = prompt_context(workspace, today=DAY)
    assert "old note" not in text
    assert text.index("## MEMORY.md") < text.index("## memory/2025-03-13.md")
    assert text.index("yesterday note") < text.index("## memory/2025-03-14.md")
    assert text.count("today note") == 2  # once from MEMORY.md, once from today's note


def test_symlinked_memory_file_is_refused(tmp_path: Path, workspace: Path) -> None:
    (tmp_path / "secret").write_text("outside")
    (workspace / "MEMORY.md").symlink_to(tmp_path / "secret")
    with pytest.raises(OpenFoalError) as info:
        read_memory(workspace, "MEMORY.md")
    assert info.value.code.value == "FORBIDDEN"
    with pytest.raises(OpenFoalError):
        append_daily(workspace, "x", also_long_term=True, today=DAY)
    assert (tmp_path / "secret").read_text() == "outside"
    text = prompt_context(workspace, today=DAY)
    assert "outside" not in text and "MEMORY.md could not be read" in text


@pytest.mark.asyncio
async def test_memory_tools(workspace: Path, make_ctx: Callable[..., ToolContext]) -> None:
    ctx = make_ctx()
    res = await MemoryAppendTool().invoke({"text": "likes plots", "long_term": True}, ctx)
    today = date.today().isoformat()
    assert res.status == "success"
    assert (
        res.output.startswith("appended ") and f"memory/{today}.md and to MEMORY.md" in res.output
    )
    res = await MemoryGetTool().invoke({}, ctx)
    assert res.output == "# Long-term memory\n\nlikes plots\n\n"
    res = await MemoryGetTool().invoke({"path": f"memory/{today}.md"}, ctx)
    assert res.output == f"# {today}\n\nlikes plots\n\n"
    res = await MemoryGetTool().invoke({"path": "../etc/passwd"}, ctx)
    assert res.error is not None and res.error["code"] == "INVALID_REQUEST"
    res = await MemoryAppendTool().invoke({"text": ""}, ctx)
    assert res.error is not None and res.error["code"] == "INVALID_REQUEST"
    assert MemoryAppendTool().risk(MemoryAppendTool.Args(text="x"), ctx) is None
