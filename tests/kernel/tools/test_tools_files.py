"""file.read / file.write / file.list: confinement to the workspace roots, caps, risk."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from openfoal_kernel.executors.confine import (
    Confined,
    ConfinementError,
    Roots,
    read_bytes,
    write_atomic,
)
from openfoal_kernel.executors.local import LocalExecutor
from openfoal_kernel.protocol.errors import OpenFoalError
from openfoal_kernel.tools.base import ToolContext
from openfoal_kernel.tools.files import (
    MAX_WRITE_BYTES,
    FileListTool,
    FileReadTool,
    FileWriteTool,
)

SECRET = "TOP SECRET outside the workspace"


@pytest.fixture
def layout(workspace: Path) -> dict[str, Path]:
    """A workspace with every kind of way out prepared next to ordinary files."""
    base = workspace.parent
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    evil = base / (workspace.name + "-evil")  # shares the root's name as a prefix
    evil.mkdir()
    (evil / "secret.txt").write_text(SECRET)
    (workspace / "notes.txt").write_text("hello notes\n")
    (workspace / "sub").mkdir()
    (workspace / "sub" / "inner.txt").write_text("inner\n")
    (workspace / "link_out").symlink_to(outside)
    (workspace / "link_file").symlink_to(outside / "secret.txt")
    (workspace / "link_in").symlink_to(workspace / "notes.txt")
    (workspace / "deep" / "a").mkdir(parents=True)
    (workspace / "deep" / "a" / "link_mid").symlink_to(outside)
    os.link(outside / "secret.txt", workspace / "hard")
    os.mkfifo(workspace / "fifo")
    return {"ws": workspace, "outside": outside, "evil": evil}


def _snapshot(*folders: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            out[str(p)] = p.read_bytes() if p.is_file() else b"<dir>"
    return out


def traversal_cases(ws: Path) -> list[tuple[str, str]]:
    """(path, why) pairs that must all be refused with FORBIDDEN."""
    return [
        ("../outside/secret.txt", "dot-dot out of the root"),
        ("sub/../../outside/secret.txt", "dot-dot through a subfolder"),
        ("sub/../notes.txt", "dot-dot even when it would stay inside"),
        (str(ws.parent / "outside" / "secret.txt"), "absolute path outside"),
        (f"{ws}-evil/secret.txt", "sibling sharing the root's name prefix"),
        (f"{ws}/../outside/secret.txt", "absolute path with dot-dot"),
        ("/etc/passwd", "system file"),
        ("/proc/self/root/etc/passwd", "procfs root link"),
        ("link_out/secret.txt", "symlinked folder leading out"),
        ("link_file", "symlinked file leading out"),
        ("link_in", "symlink even when it points inside"),
        ("deep/a/link_mid/secret.txt", "symlink deep in the path"),
        ("hard", "hard link to a file outside"),
        ("fifo", "not a regular file (a FIFO must not block)"),
        ("notes.txt\x00.png", "NUL byte"),
    ]


@pytest.mark.asyncio
async def test_read_traversal_table(
    layout: dict[str, Path], make_ctx: Callable[..., ToolContext]
) -> None:
    ctx = make_ctx()
    cases = traversal_cases(layout["ws"])
    assert len(cases) >= 12
    for path, why in cases:
        res = await FileReadTool().invoke({"path": path}, ctx)
        assert res.status == "failed", (path, why, res)
        assert res.error is not None and res.error["code"] == "FORBIDDEN", (path, why, res.error)
        assert "refused" in res.output and SECRET not in res.output, (path, why)


@pytest.mark.asyncio
async def test_write_traversal_table_changes_nothing_outside(
    layout: dict[str, Path], make_ctx: Callable[..., ToolContext]
) -> None:
    ctx = make_ctx()
    before = _snapshot(layout["outside"], layout["evil"])
    for path, why in traversal_cases(layout["ws"]):
        for append in (False, True):
            res = await FileWriteTool().invoke(
                {"path": path, "content": "pwned", "append": append}, ctx
            )
            assert res.status == "failed", (path, why, append, res)
            assert res.error is not None and res.error["code"] == "FORBIDDEN", (path, why, res)
    # New names through a way out are refused too, and nothing appears or changes outside.
    for path in ("link_out/new.txt", "deep/a/link_mid/new/x.txt", f"{layout['ws']}-evil/n.txt"):
        res = await FileWriteTool().invoke({"path": path, "content": "pwned"}, ctx)
        assert res.error is not None and res.error["code"] == "FORBIDDEN", (path, res)
    assert _snapshot(layout["outside"], layout["evil"]) == before
    assert (layout["ws"] / "link_file").is_symlink()  # the link itself was not replaced


@pytest.mark.asyncio
async def test_list_traversal_refused(
    layout: dict[str, Path], make_ctx: Callable[..., ToolContext]
) -> None:
    ctx = make_ctx()
    for path in ("..", "../outside", "link_out", "deep/a/link_mid", f"{layout['ws']}-evil", "/"):
        res = await FileListTool().invoke({"path": path}, ctx)
        assert res.error is not None and res.error["code"] == "FORBIDDEN", (path, res)
        assert "secret.txt" not in res.output


def _exchange(a: Path, b: Path) -> None:
    """Swap two directory entries atomically (renameat2 RENAME_EXCHANGE): both always exist."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, bytes(a), at_fdcwd, bytes(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def test_symlink_swapped_in_between_check_and_open(layout: dict[str, Path]) -> None:
    """A folder swapped with a symlink leading out while paths are opened: nothing leaves."""
    ws = layout["ws"]
    (ws / "race").mkdir()
    (ws / "race" / "secret.txt").write_text("inside copy")
    (ws / "swap").symlink_to(layout["outside"])
    confined = Confined(Roots(ws))
    stop = threading.Event()

    def swapper() -> None:
        while not stop.is_set():
            _exchange(ws / "race", ws / "swap")

    thread = threading.Thread(target=swapper)
    thread.start()
    seen = {"inside": 0, "refused": 0, "wrote": 0}
    try:
        for i in range(2000):
            try:
                data = read_bytes(confined, "race/secret.txt", 1000)
            except ConfinementError:
                seen["refused"] += 1
            else:
                assert data == b"inside copy", data  # never the outside file
                seen["inside"] += 1
            if i % 8 == 0:
                try:
                    write_atomic(confined, "race/written.txt", b"written")
                    seen["wrote"] += 1
                except ConfinementError:
                    seen["refused"] += 1
    finally:
        stop.set()
        thread.join()
    assert seen["inside"] > 0 and seen["refused"] > 0, seen  # the race really happened
    assert sorted(p.name for p in layout["outside"].iterdir()) == ["secret.txt"]
    assert (layout["outside"] / "secret.txt").read_text() == SECRET


@pytest.mark.asyncio
async def test_read_write_list_inside(
    layout: dict[str, Path], make_ctx: Callable[..., ToolContext]
) -> None:
    ws, ctx = layout["ws"], make_ctx()
    res = await FileReadTool().invoke({"path": "sub/inner.txt"}, ctx)
    assert (res.status, res.output) == ("success", "inner\n")
    res = await FileReadTool().invoke({"path": str(ws / "notes.txt")}, ctx)
    assert res.output == "hello notes\n"

    res = await FileWriteTool().invoke({"path": "out/deeper/new.txt", "content": "één\n"}, ctx)
    assert res.status == "success" and res.output == "wrote 6 bytes to out/deeper/new.txt"
    res = await FileWriteTool().invoke(
        {"path": "out/deeper/new.txt", "content": "twee\n", "append": True}, ctx
    )
    assert res.output == "appended 5 bytes to out/deeper/new.txt"
    assert (ws / "out/deeper/new.txt").read_text() == "één\ntwee\n"
    res = await FileWriteTool().invoke({"path": "notes.txt", "content": "replaced"}, ctx)
    assert (ws / "notes.txt").read_text() == "replaced"
    assert not [p for p in ws.rglob("*.tmp")]  # the atomic write left no temp file

    res = await FileListTool().invoke({"path": ".", "depth": 2}, ctx)
    lines = res.output.splitlines()
    assert any(line.endswith(" sub/") for line in lines)
    assert any(line.endswith(" sub/inner.txt") and "6" in line for line in lines)
    assert any("link_out (not followed)" in line for line in lines)
    assert not any("secret.txt" in line for line in lines)  # symlinked folders not entered


@pytest.mark.asyncio
async def test_caps_errors_and_binary(
    workspace: Path, make_ctx: Callable[..., ToolContext]
) -> None:
    ctx = make_ctx()
    (workspace / "big.txt").write_text("x" * 5000)
    res = await FileReadTool().invoke({"path": "big.txt", "max_bytes": 1000}, ctx)
    assert res.output == "x" * 1000 + "\n[file truncated at 1000 bytes]"
    (workspace / "bin.dat").write_bytes(b"\x89PNG\x00\x01\x02")
    res = await FileReadTool().invoke({"path": "bin.dat"}, ctx)
    assert res.output == "[binary file: 7 bytes, not shown]"
    res = await FileReadTool().invoke({"path": "missing.txt"}, ctx)
    assert res.error == {"code": "NOT_FOUND", "message": "missing.txt: no such file or directory"}
    (workspace / "folder").mkdir()
    res = await FileReadTool().invoke({"path": "folder"}, ctx)
    assert res.error == {"code": "INVALID_REQUEST", "message": "folder: is a directory"}
    res = await FileWriteTool().invoke({"path": "folder", "content": "x"}, ctx)
    assert res.error == {"code": "INVALID_REQUEST", "message": "folder: is a directory"}
    res = await FileReadTool().invoke({"path": "big.txt", "max_bytes": 10**9}, ctx)
    assert res.error is not None and res.error["code"] == "INVALID_REQUEST"
    # 4-byte characters: within the character limit, over the byte limit.
    res = await FileWriteTool().invoke(
        {"path": "x.txt", "content": "😀" * (MAX_WRITE_BYTES // 2)}, ctx
    )
    assert res.error is not None and res.error["code"] == "INVALID_REQUEST"
    assert not (workspace / "x.txt").exists()
    for i in range(30):
        (workspace / f"f{i:02}.txt").write_text("")
    res = await FileListTool().invoke({"max_entries": 10}, ctx)
    assert res.output.splitlines()[-1] == "[listing stopped at 10 entries]"
    assert len(res.output.splitlines()) == 11
    assert res.duration_ms > 0


@pytest.mark.asyncio
async def test_hardlink_inside_is_refused_too(
    workspace: Path, make_ctx: Callable[..., ToolContext]
) -> None:
    # A hard link carries no target to check, so any file with two links is refused.
    (workspace / "a.txt").write_text("a")
    os.link(workspace / "a.txt", workspace / "b.txt")
    res = await FileReadTool().invoke({"path": "b.txt"}, make_ctx())
    assert res.error is not None and res.error["code"] == "FORBIDDEN"
    assert "hard link" in res.output


@pytest.mark.asyncio
async def test_extra_roots(tmp_path: Path, workspace: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "d.csv").write_text("a,b\n")
    ex = LocalExecutor(workspace, roots=[data])
    ctx = ToolContext(session_id="s", run_id="r", trace_id="t", workspace=workspace, executor=ex)
    res = await FileReadTool().invoke({"path": str(data / "d.csv")}, ctx)
    assert res.output == "a,b\n"
    res = await FileListTool().invoke({"path": str(data)}, ctx)
    assert res.output.endswith(f"{data}/d.csv")
    res = await FileReadTool().invoke({"path": f"{data}x/d.csv"}, ctx)
    assert res.error is not None and res.error["code"] == "FORBIDDEN"


def test_missing_workspace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OpenFoalError) as info:
        LocalExecutor(tmp_path / "nope")
    assert info.value.code.value == "NOT_FOUND" and "nope" in info.value.message


def test_write_risk_table(workspace: Path, make_ctx: Callable[..., ToolContext]) -> None:
    ctx, tool = make_ctx(), FileWriteTool()
    low = ["scratch/a.txt", "./scratch/sub/b.csv", ".openfoal/tmp/x", str(workspace / "scratch/c")]
    high = [
        "notes.txt",
        "scratch",
        "scratch/../notes.txt",
        "scratchy/a.txt",
        ".openfoal/config.json",
        "MEMORY.md",
        "/etc/passwd",
        f"{workspace}-evil/scratch/a",
    ]
    for path in low:
        assert tool.risk(tool.Args(path=path, content=""), ctx) is None, path
    for path in high:
        reason = tool.risk(tool.Args(path=path, content=""), ctx)
        assert reason is not None and "outside the scratch area" in reason, path
