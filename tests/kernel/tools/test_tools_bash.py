"""bash.exec through the local executor: workspace cwd, exit codes, timeout, caps, abort."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from openfoal_kernel.executors.local import LocalExecutor
from openfoal_kernel.tools.base import ToolContext
from openfoal_kernel.tools.shell import MAX_STREAM_BYTES, BashExecTool


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _gone(*pids: int, timeout: float = 3.0) -> bool:
    """Wait until none of ``pids`` runs (a SIGKILLed process takes a moment to exit)."""
    deadline = time.monotonic() + timeout
    while any(_running(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _read_pid(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


async def _wait_for_pid(path: Path, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while (pid := _read_pid(path)) is None:
        assert time.monotonic() < deadline, f"{path} never written"
        await asyncio.sleep(0.01)
    return pid


@pytest.mark.asyncio
async def test_runs_in_workspace(workspace: Path, make_ctx: Callable[..., ToolContext]) -> None:
    (workspace / "sub").mkdir()
    res = await BashExecTool().invoke({"command": "pwd; echo hi >&2"}, make_ctx())
    assert res.status == "success" and res.error is None
    assert res.output == f"{workspace}\n[stderr]\nhi\n"
    res = await BashExecTool().invoke({"command": "pwd", "cwd": "sub"}, make_ctx())
    assert res.output == f"{workspace}/sub\n"
    assert res.duration_ms > 0
    for cwd in ("..", "/tmp", f"{workspace}-evil"):
        res = await BashExecTool().invoke({"command": "pwd", "cwd": cwd}, make_ctx())
        assert res.status == "failed" and res.error is not None, cwd
        assert res.error["code"] == "FORBIDDEN", cwd


@pytest.mark.asyncio
async def test_nonzero_exit_keeps_output(make_ctx: Callable[..., ToolContext]) -> None:
    res = await BashExecTool().invoke(
        {"command": "echo partial; echo oops >&2; exit 3"}, make_ctx()
    )
    assert res.status == "failed"
    assert res.error == {"code": "TOOL_EXEC_FAILED", "message": "command exited with code 3"}
    assert res.output == "partial\n[stderr]\noops\n\n[command exited with code 3]"


@pytest.mark.asyncio
async def test_timeout_kills_and_reports(
    workspace: Path, make_ctx: Callable[..., ToolContext]
) -> None:
    started = time.monotonic()
    res = await BashExecTool().invoke(
        {"command": "echo before; sleep 30 & echo $! > bg.pid; sleep 30", "timeout_s": 0.5},
        make_ctx(),
    )
    assert time.monotonic() - started < 5
    assert res.status == "timeout"
    assert res.error is not None and res.error["code"] == "TOOL_TIMEOUT"
    assert res.output.startswith("before\n") and "timed out after 0.5 s" in res.output
    assert _gone(int((workspace / "bg.pid").read_text()))


@pytest.mark.asyncio
async def test_output_cap_is_marked(make_ctx: Callable[..., ToolContext]) -> None:
    res = await BashExecTool().invoke(
        {"command": "head -c 200000 /dev/zero | tr '\\0' a; head -c 100000 /dev/zero >&2"},
        make_ctx(),
    )
    assert res.status == "success"
    assert res.output.startswith("a" * MAX_STREAM_BYTES + "\n[stderr]\n")
    assert res.output.endswith(
        f"[output truncated: each stream is capped at {MAX_STREAM_BYTES} bytes]"
    )
    assert len(res.output.encode()) < 2 * MAX_STREAM_BYTES + 200


@pytest.mark.asyncio
async def test_background_job_does_not_outlive_or_hang_the_call(
    workspace: Path, make_ctx: Callable[..., ToolContext]
) -> None:
    started = time.monotonic()
    res = await BashExecTool().invoke(
        {"command": "sleep 30 & echo $! > bg.pid; echo done"}, make_ctx()
    )
    assert res.output == "done\n" and time.monotonic() - started < 3
    assert _gone(int((workspace / "bg.pid").read_text()))


@pytest.mark.asyncio
async def test_cancel_kills_the_process_group(
    workspace: Path, make_ctx: Callable[..., ToolContext]
) -> None:
    """Abort cancels the task: the shell and its grandchild ``sleep`` are both gone."""
    command = "bash -c 'sleep 60 & echo $! > grandchild.pid; wait' & echo $$ > shell.pid; wait"
    task = asyncio.create_task(BashExecTool().invoke({"command": command}, make_ctx()))
    grandchild = await _wait_for_pid(workspace / "grandchild.pid")
    shell = await _wait_for_pid(workspace / "shell.pid")
    assert _running(grandchild) and _running(shell)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gone(grandchild, shell)


@pytest.mark.asyncio
async def test_environment_has_no_credentials(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-should-not-leak")
    monkeypatch.setenv("OPENFOAL_VISIBLE", "yes")
    ex = LocalExecutor(workspace)
    res = await ex.run_command("env", timeout_s=5, max_output_bytes=100_000)
    assert "should-not-leak" not in res.stdout and "OPENFOAL_VISIBLE=yes" in res.stdout
    await ex.aclose()


@pytest.mark.asyncio
async def test_bad_arguments(make_ctx: Callable[..., ToolContext]) -> None:
    tool = BashExecTool()
    for raw in ({}, {"command": ""}, {"command": "ls", "timeout_s": 0}, {"command": "ls", "x": 1}):
        res = await tool.invoke(raw, make_ctx())
        assert res.status == "failed" and res.error is not None, raw
        assert res.error["code"] == "INVALID_REQUEST", raw


def test_risk(make_ctx: Callable[..., ToolContext]) -> None:
    tool = BashExecTool()
    args = tool.Args(command="ls")
    reason = tool.risk(args, make_ctx(bashMode="host"))
    assert reason is not None and "host" in reason
    # bashMode "sandbox" asks for the sandbox; a local executor still runs it on the host.
    reason = tool.risk(args, make_ctx(bashMode="sandbox"))
    assert reason is not None and "executor is local" in reason
    # inside the session's sandbox (cloud mode) a shell is contained, whatever bashMode says
    for mode in ("host", "sandbox"):
        ctx = make_ctx(bashMode=mode)
        cloud = dataclasses.replace(ctx, executor=_CloudExecutor())  # type: ignore[arg-type]
        assert tool.risk(args, cloud) is None


class _CloudExecutor:
    """Only what ``risk`` reads of an executor: its mode."""

    mode = "cloud"
