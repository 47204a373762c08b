"""DockerExecutor against a real sandbox container: commands, files, Python, their failures."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import docker
import pytest
from conftest import Sandbox, container_pids, start_sandbox

from openfoal_kernel.executors.base import CommandResult
from openfoal_kernel.protocol.errors import ErrorCode, OpenFoalError
from openfoal_kernel.sandbox.client.executor import DockerExecutor
from openfoal_kernel.sandbox.host.mounts import WorkspaceMounts, is_mount

pytestmark = pytest.mark.docker

LIMIT = 64 * 1024


async def sh(ex: DockerExecutor, command: str, *, timeout_s: float = 10.0) -> CommandResult:
    """Run ``command`` in the sandbox with the usual caps."""
    return await ex.run_command(command, timeout_s=timeout_s, max_output_bytes=LIMIT)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def running(sandbox: Sandbox, needle: str) -> bool:
    """Whether a process whose command line contains ``needle`` runs in the sandbox."""
    return any(needle in cmd for cmd in container_pids(sandbox.client, sandbox.container_id))


async def refused(call: Awaitable[object], code: ErrorCode) -> OpenFoalError:
    """Await ``call``; it must fail with ``code``; return the error."""
    with pytest.raises(OpenFoalError) as info:
        await call
    assert info.value.code == code, info.value.message
    return info.value


# -- run_command -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_command_ok_runs_in_workspace_as_unprivileged_user(
    executor: DockerExecutor, py_sandbox: Sandbox
) -> None:
    res = await sh(executor, "pwd; id -u; echo to-err >&2")
    pwd, uid = res.stdout.split()
    assert (res.exit_code, res.timed_out, res.truncated) == (0, False, False)
    assert pwd == "/workspace"
    assert uid == py_sandbox.handle.user.split(":")[0] != "0"
    assert res.stderr == "to-err\n"


@pytest.mark.asyncio
async def test_command_nonzero_exit_and_cwd(executor: DockerExecutor, py_sandbox: Sandbox) -> None:
    res = await sh(executor, "echo bad >&2; exit 7")
    assert (res.exit_code, res.stderr, res.timed_out) == (7, "bad\n", False)
    (py_sandbox.workspace / "sub").mkdir(exist_ok=True)
    assert (await executor.run_command("pwd", timeout_s=5, max_output_bytes=99, cwd="sub")).stdout
    assert (await sh(executor, "exit 97")).exit_code == 97  # a user's 97 is not "no such dir"
    await refused(
        executor.run_command("pwd", timeout_s=5, max_output_bytes=99, cwd="missing"),
        ErrorCode.NOT_FOUND,
    )
    await refused(
        executor.run_command("pwd", timeout_s=5, max_output_bytes=99, cwd="/etc"),
        ErrorCode.FORBIDDEN,
    )


@pytest.mark.asyncio
async def test_command_output_is_capped(executor: DockerExecutor) -> None:
    res = await executor.run_command(
        "head -c 200000 /dev/zero | tr '\\0' y", timeout_s=10, max_output_bytes=1000
    )
    assert res.exit_code == 0
    assert res.truncated and res.stdout == "y" * 1000


@pytest.mark.asyncio
async def test_command_timeout_kills_every_process(
    executor: DockerExecutor, py_sandbox: Sandbox
) -> None:
    # One child in the call's process group, one that left it for a session of its own.
    res = await sh(
        executor, "echo started; setsid sleep 61.5 & sleep 62.5; echo never", timeout_s=1.0
    )
    assert res.timed_out and res.exit_code == -1
    assert res.stdout == "started\n"
    assert res.duration_ms < 5000
    assert await wait_until(
        lambda: not running(py_sandbox, "sleep 61.5") and not running(py_sandbox, "sleep 62.5")
    ), container_pids(py_sandbox.client, py_sandbox.container_id)
    assert (await sh(executor, "echo still-usable")).stdout == "still-usable\n"


@pytest.mark.asyncio
async def test_command_cancel_kills_it(executor: DockerExecutor, py_sandbox: Sandbox) -> None:
    task = asyncio.create_task(sh(executor, "sleep 63.5", timeout_s=60))
    assert await wait_until(lambda: running(py_sandbox, "sleep 63.5"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_until(lambda: not running(py_sandbox, "sleep 63.5"))
    assert (await sh(executor, "echo after-cancel")).stdout == "after-cancel\n"


@pytest.mark.asyncio
async def test_gone_container_is_sandbox_unavailable(py_sandbox: Sandbox) -> None:
    ex = DockerExecutor(py_sandbox.handle.model_copy(update={"container_id": "f" * 64}))
    try:
        err = await refused(sh(ex, "true"), ErrorCode.SANDBOX_UNAVAILABLE)
        assert err.retryable
    finally:
        await ex.aclose()


@pytest.mark.asyncio
async def test_budget_is_charged_and_enforced(py_sandbox: Sandbox, tmp_path: Path) -> None:
    handle = py_sandbox.handle.model_copy(
        update={"budget_s": 0.001, "ledger": str(tmp_path / "ledger")}
    )
    ex = DockerExecutor(handle)
    try:
        assert (await sh(ex, "true")).exit_code == 0  # nothing used yet: it may run
        await refused(sh(ex, "true"), ErrorCode.BUDGET_EXCEEDED)
        await refused(ex.read_file("x", max_bytes=1), ErrorCode.BUDGET_EXCEEDED)
    finally:
        await ex.aclose()


# -- files -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_files_round_trip(executor: DockerExecutor, py_sandbox: Sandbox) -> None:
    assert await executor.write_file("rt/deep/a.txt", b"hello\n") == 6
    assert await executor.write_file("rt/deep/a.txt", b"more", append=True) == 4
    assert await executor.read_file("rt/deep/a.txt", max_bytes=LIMIT) == b"hello\nmore"
    assert await executor.read_file("rt/deep/a.txt", max_bytes=3) == b"hel"
    await executor.write_file("rt/deep/a.txt", b"replaced")
    await executor.write_file("/workspace/rt/b.bin", bytes(range(256)))
    host_abs = str(py_sandbox.workspace / "rt" / "deep" / "a.txt")
    assert await executor.read_file(host_abs, max_bytes=LIMIT) == b"replaced"
    entries = await executor.list_dir("rt", max_entries=10)
    assert [(e.path, e.kind) for e in entries] == [("rt/b.bin", "file"), ("rt/deep", "dir")]
    assert entries[0].size == 256
    assert len(await executor.list_dir("rt", max_entries=1)) == 1
    names = {e.path for e in await executor.list_dir(".", max_entries=1000)}
    assert "rt" in names


@pytest.mark.asyncio
async def test_workspace_is_shared_with_the_host(
    executor: DockerExecutor, py_sandbox: Sandbox
) -> None:
    ws = py_sandbox.workspace
    (ws / "from-host.txt").write_text("host wrote this")
    assert await executor.read_file("from-host.txt", max_bytes=99) == b"host wrote this"
    assert (await sh(executor, "cat from-host.txt")).stdout == "host wrote this"
    await executor.write_file("from-tool.txt", b"tool wrote this")
    assert (await sh(executor, "echo shell wrote this > from-shell.txt")).exit_code == 0
    assert (ws / "from-tool.txt").read_text() == "tool wrote this"
    assert (ws / "from-shell.txt").read_text() == "shell wrote this\n"
    # What the sandbox writes belongs to the workspace's owner on the host.
    owner = ws.stat().st_uid
    assert (ws / "from-tool.txt").stat().st_uid == owner
    assert (ws / "from-shell.txt").stat().st_uid == owner


@pytest.mark.asyncio
async def test_file_errors(executor: DockerExecutor, py_sandbox: Sandbox) -> None:
    (py_sandbox.workspace / "errs").mkdir(exist_ok=True)
    (py_sandbox.workspace / "errs" / "f").write_text("x")
    await refused(executor.read_file("errs/missing", max_bytes=9), ErrorCode.NOT_FOUND)
    await refused(executor.list_dir("errs/missing", max_entries=9), ErrorCode.NOT_FOUND)
    await refused(executor.read_file("errs", max_bytes=9), ErrorCode.INVALID_REQUEST)
    await refused(executor.write_file("errs", b"x"), ErrorCode.INVALID_REQUEST)
    await refused(executor.list_dir("errs/f", max_entries=9), ErrorCode.INVALID_REQUEST)
    await refused(executor.write_file("errs/f/under", b"x"), ErrorCode.INVALID_REQUEST)
    for bad in ("", ".", "/workspace"):
        await refused(executor.read_file(bad, max_bytes=9), ErrorCode.FORBIDDEN)
    await refused(executor.write_file("a\x00b", b"x"), ErrorCode.FORBIDDEN)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "a/../../etc/passwd",
        "/workspace/../etc/passwd",
        "/etc/passwd",
        "/tmp/x",
        "/workspace-evil/x",
    ],
)
async def test_paths_outside_the_workspace_are_refused(executor: DockerExecutor, path: str) -> None:
    await refused(executor.read_file(path, max_bytes=99), ErrorCode.FORBIDDEN)
    await refused(executor.write_file(path, b"x"), ErrorCode.FORBIDDEN)
    await refused(executor.list_dir(path, max_entries=9), ErrorCode.FORBIDDEN)


@pytest.mark.asyncio
async def test_symlinks_pointing_out_are_refused(
    executor: DockerExecutor, py_sandbox: Sandbox
) -> None:
    ws = py_sandbox.workspace
    links = ws / "links"
    links.mkdir(exist_ok=True)
    for name, target in (("passwd", "/etc/passwd"), ("etc", "/etc"), ("[e]", "/etc")):
        if not (links / name).is_symlink():
            os.symlink(target, links / name)
    # A real folder whose name the glob "[e]" matches: the link must be checked as itself.
    (links / "e").mkdir(exist_ok=True)
    (links / "e" / "passwd").write_text("decoy")
    for path in ("links/passwd", "links/etc/passwd", "links/[e]/passwd"):
        err = await refused(executor.read_file(path, max_bytes=99), ErrorCode.FORBIDDEN)
        assert "symbolic link" in err.message
        await refused(executor.write_file(path, b"x"), ErrorCode.FORBIDDEN)
    for path in ("links/etc", "links/[e]"):
        await refused(executor.list_dir(path, max_entries=9), ErrorCode.FORBIDDEN)
    listed = {e.path: e.kind for e in await executor.list_dir("links", max_entries=9)}
    assert listed["links/passwd"] == "symlink" and listed["links/e"] == "dir"
    assert (links / "passwd").is_symlink()  # the write did not replace the link either


@pytest.mark.asyncio
async def test_workspace_of_a_regular_user_runs_as_that_user(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    os.chown(ws, 1000, 1000)
    sandbox, mounts = start_sandbox(docker_client, ws.resolve(), tmp_path / "state")
    ex = DockerExecutor(sandbox.handle)
    try:
        assert sandbox.handle.user == "1000:1000"
        assert (await sh(ex, "id -u; id -g")).stdout.split() == ["1000", "1000"]
        await ex.write_file("mine.txt", b"x")
        st = (ws / "mine.txt").stat()
        assert (st.st_uid, st.st_gid) == (1000, 1000)
    finally:
        await ex.aclose()
        docker_client.api.remove_container(sandbox.container_id, force=True)
        mounts.release()


def test_idmapped_workspace_mount_is_released(tmp_path: Path) -> None:
    # A root-owned workspace is mapped for the sandbox user; release() must really unmount it
    # (a bind mount of the same filesystem is invisible to os.path.ismount).
    ws = tmp_path / "ws"
    ws.mkdir()
    mounts = WorkspaceMounts(tmp_path / "mounts")
    plan = mounts.plan(ws)
    assert plan.idmapped and is_mount(Path(plan.source))
    assert mounts.plan(ws) == plan  # planned once, mounted once
    mounts.release()
    assert not is_mount(Path(plan.source)) and not Path(plan.source).exists()


# -- run_python ------------------------------------------------------------------------------


async def py(ex: DockerExecutor, code: str, *, timeout_s: float = 10.0, cap: int = LIMIT):
    """Run ``code`` in the sandbox's REPL."""
    return await ex.run_python(code, timeout_s=timeout_s, max_output_bytes=cap)


@pytest.mark.asyncio
async def test_python_value_stdout_and_state(executor: DockerExecutor) -> None:
    assert (await py(executor, "x = 41\nx + 1")).text == "42\n"
    res = await py(executor, "import sys\nprint('out')\nprint('err', file=sys.stderr)\nx")
    assert (res.status, res.text) == ("ok", "out\nerr\n41\n")
    assert (await py(executor, "import os; os.getcwd(), os.getuid() != 0")).text == (
        "('/workspace', True)\n"
    )


@pytest.mark.asyncio
async def test_python_state_survives_a_new_executor(py_sandbox: Sandbox) -> None:
    first = DockerExecutor(py_sandbox.handle)
    await py(first, "kept_across = [1, 2]")
    await first.aclose()
    second = DockerExecutor(py_sandbox.handle)
    try:
        assert (await py(second, "kept_across")).text == "[1, 2]\n"
    finally:
        await second.aclose()


@pytest.mark.asyncio
async def test_python_exception_has_a_traceback(executor: DockerExecutor) -> None:
    res = await py(executor, "print('before')\ndef f():\n    return 1 / 0\nf()")
    assert res.status == "error"
    assert (res.error_name, res.error_value) == ("ZeroDivisionError", "division by zero")
    assert res.text.startswith("before\nTraceback (most recent call last):")
    assert "<cell-" in res.text and "return 1 / 0" in res.text
    syntax = await py(executor, "def (")
    assert (syntax.status, syntax.error_name) == ("error", "SyntaxError")
    assert (await py(executor, "'usable after errors'")).status == "ok"


@pytest.mark.asyncio
async def test_python_timeout_keeps_state(executor: DockerExecutor) -> None:
    await py(executor, "before_timeout = 'still here'")
    started = time.monotonic()
    res = await py(executor, "import time\nwhile True: time.sleep(0.05)", timeout_s=1.0)
    assert res.status == "timeout" and "timed out after 1 s" in res.text
    assert time.monotonic() - started < 4
    assert (await py(executor, "before_timeout")).text == "'still here'\n"


@pytest.mark.asyncio
async def test_python_stuck_past_its_timeout_is_restarted(executor: DockerExecutor) -> None:
    # The code blocks the alarm, so only the host side can stop it: it kills the REPL.
    await py(executor, "lost_on_restart = 1")
    code = "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
    res = await py(executor, code + "time.sleep(60)", timeout_s=0.5)
    assert res.status == "timeout" and "restarted" in res.text
    started = time.monotonic()
    after = await py(executor, "'lost_on_restart' in globals()")
    assert (after.status, after.text) == ("ok", "False\n")
    assert time.monotonic() - started < 5


@pytest.mark.asyncio
async def test_python_cancel_interrupts_and_keeps_state(executor: DockerExecutor) -> None:
    await py(executor, "survives_cancel = 'yes'")
    task = asyncio.create_task(py(executor, "import time\nfor _ in range(600): time.sleep(0.05)"))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()
    assert (await py(executor, "survives_cancel")).text == "'yes'\n"
    assert time.monotonic() - started < 2


@pytest.mark.asyncio
async def test_python_output_is_capped(executor: DockerExecutor) -> None:
    res = await py(executor, "print('p' * 200_000)", cap=1000)
    assert res.status == "ok"
    assert res.text.startswith("p" * 1000)
    assert res.text.endswith("[output truncated at 1000 bytes]")
    assert len(res.text) < 1100
    value = await py(executor, "'v' * 5000", cap=100)
    assert value.text.endswith("[output truncated at 100 bytes]") and len(value.text) < 200


@pytest.mark.asyncio
async def test_python_process_death_is_reported(executor: DockerExecutor) -> None:
    await py(executor, "doomed = 1")
    await refused(py(executor, "import os; os._exit(3)"), ErrorCode.TOOL_EXEC_FAILED)
    assert (await py(executor, "'doomed' in globals()")).text == "False\n"


@pytest.mark.asyncio
async def test_python_needs_a_python_image(py_sandbox: Sandbox) -> None:
    ex = DockerExecutor(py_sandbox.handle.model_copy(update={"python": None}))
    try:
        err = await refused(py(ex, "1"), ErrorCode.TOOL_EXEC_FAILED)
        assert "no Python" in err.message
    finally:
        await ex.aclose()
