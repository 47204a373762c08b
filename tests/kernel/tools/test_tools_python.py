"""python.exec in a real code kernel: persistence, reconnects, displays, errors, timeouts."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from openfoal_kernel.executors.code_kernel import BINDING_KEY, CodeKernel
from openfoal_kernel.executors.local import LocalExecutor
from openfoal_kernel.tools._common import MAX_OUTPUT_BYTES
from openfoal_kernel.tools.base import ToolContext
from openfoal_kernel.tools.python import PythonExecTool

pytestmark = pytest.mark.asyncio(loop_scope="module")

# A 1x1 PNG, so a plot-like image display needs no plotting library.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CodeKernel]:
    """One code kernel for the module, as the gateway would start it for a session."""
    k = await CodeKernel.start(cwd=tmp_path_factory.mktemp("ck"))
    yield k
    await k.aclose()


def _ctx(executor: LocalExecutor) -> ToolContext:
    return ToolContext(
        session_id="s", run_id="r", trace_id="t", workspace=executor.workspace, executor=executor
    )


async def _run(executor: LocalExecutor, code: str, **kw: float) -> tuple[str, str]:
    res = await PythonExecTool().invoke({"code": code, **kw}, _ctx(executor))
    return res.status, res.output


async def test_state_persists_across_calls_and_clients(kernel: CodeKernel, tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path, code_kernel_connection=kernel.connection_info)
    assert await _run(ex, "x = 41") == ("success", "")
    assert await _run(ex, "x + 1") == ("success", "42\n")
    status, pid = await _run(ex, "import os; os.getpid()")
    assert status == "success" and int(pid) != os.getpid()  # never this process
    await ex.aclose()  # what a restart of the agent kernel does to its client
    again = LocalExecutor(tmp_path, code_kernel_connection=kernel.connection_info)
    assert await _run(again, "print(x)") == ("success", "41\n")
    await again.aclose()
    assert await kernel.execute("x", timeout_s=10, max_output_bytes=100) is not None  # still up


async def test_rich_outputs_go_to_displays(kernel: CodeKernel, tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path, code_kernel=kernel)
    code = (
        "from IPython.display import HTML, Image, display\n"
        "import base64\n"
        "display(HTML('<table><tr><td>1</td></tr></table>'))\n"
        f"Image(data=base64.b64decode('{PNG}'), format='png')\n"
    )
    res = await PythonExecTool().invoke({"code": code}, _ctx(ex))
    assert res.status == "success"
    assert [sorted(d["data"]) for d in res.displays] == [
        ["text/html", "text/plain"],
        ["image/png", "text/plain"],
    ]
    assert res.displays[0]["data"]["text/html"] == "<table><tr><td>1</td></tr></table>"
    assert res.displays[1]["data"]["image/png"].startswith("iVBOR")
    # The model gets the text rendering only.
    assert res.output == "<IPython.core.display.HTML object>\n<IPython.core.display.Image object>\n"


async def test_error_has_clean_traceback(kernel: CodeKernel, tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path, code_kernel=kernel)
    res = await PythonExecTool().invoke(
        {"code": "print('before')\ndef f():\n    return 1 / 0\nf()"}, _ctx(ex)
    )
    assert res.status == "failed"
    assert res.error == {
        "code": "TOOL_EXEC_FAILED",
        "message": "ZeroDivisionError: division by zero",
    }
    assert res.output.startswith("before\n")
    assert "return 1 / 0" in res.output and res.output.endswith(
        "ZeroDivisionError: division by zero"
    )
    assert "\x1b[" not in res.output


async def test_timeout_interrupts_and_kernel_stays_usable(
    kernel: CodeKernel, tmp_path: Path
) -> None:
    ex = LocalExecutor(tmp_path, code_kernel=kernel)
    await _run(ex, "kept = 'yes'")
    started = time.monotonic()
    res = await PythonExecTool().invoke(
        {"code": "import time\nprint('start', flush=True)\ntime.sleep(60)", "timeout_s": 1},
        _ctx(ex),
    )
    assert time.monotonic() - started < 10
    assert res.status == "timeout" and res.error is not None
    assert res.error["code"] == "TOOL_TIMEOUT"
    assert res.output.startswith("start\n") and "the kernel was interrupted" in res.output
    started = time.monotonic()
    assert await _run(ex, "kept") == ("success", "'yes'\n")
    assert time.monotonic() - started < 3


async def test_cancel_interrupts_the_kernel(kernel: CodeKernel, tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path, code_kernel=kernel)
    task = asyncio.create_task(_run(ex, "import time\ntime.sleep(60)"))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()
    assert await _run(ex, "2 + 2", timeout_s=10) == ("success", "4\n")
    assert time.monotonic() - started < 5  # the sleep was interrupted, not waited out


async def test_output_cap(kernel: CodeKernel, tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path, code_kernel=kernel)
    status, out = await _run(ex, "print('a' * 200_000)")
    assert status == "success"
    assert out == "a" * MAX_OUTPUT_BYTES + f"\n[output truncated at {MAX_OUTPUT_BYTES} bytes]"


async def test_risk_when_bound_to_a_notebook(kernel: CodeKernel, tmp_path: Path) -> None:
    tool = PythonExecTool()
    args = tool.Args(code="df.head()")
    plain = LocalExecutor(tmp_path, code_kernel_connection=kernel.connection_info)
    assert tool.risk(args, _ctx(plain)) == "runs Python on the host"  # local: host code

    class SandboxLike:
        mode = "cloud"
        workspace = tmp_path

    assert tool.risk(args, _ctx(SandboxLike())) is None  # contained in the sandbox
    bound = LocalExecutor(
        tmp_path, code_kernel_connection={**kernel.connection_info, BINDING_KEY: "notebook"}
    )
    reason = tool.risk(args, _ctx(bound))
    assert reason == "runs code in the user's notebook kernel"
    assert await _run(bound, "kept") == ("success", "'yes'\n")  # it is the same kernel
    await plain.aclose()
    await bound.aclose()


async def test_own_kernel_started_in_workspace_and_shut_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    ex = LocalExecutor(tmp_path)
    workspace = str(ex.workspace)  # resolved
    status, out = await _run(ex, "import os; print(os.getcwd()); print(os.getpid())")
    assert status == "success"
    cwd, pid = out.split()
    assert cwd == workspace
    assert await _run(ex, "import os; os.environ.get('OPENAI_API_KEY')") == ("success", "")
    # The kernel dies under the code (a crash): a clear failure, then a fresh kernel.
    await _run(ex, "lost = 1")
    res = await PythonExecTool().invoke({"code": "import os; os._exit(1)"}, _ctx(ex))
    assert res.status == "failed" and res.error is not None
    assert res.error["code"] == "TOOL_EXEC_FAILED" and "code kernel died" in res.output
    assert _gone(int(pid))
    status, out = await _run(ex, "import os; print(os.getpid()); lost")
    assert status == "failed" and "NameError" in out
    await ex.aclose()
    assert _gone(int(out.split()[0]))


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait until process ``pid`` no longer exists."""
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_own_kernel_slow_to_start_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kernel that answers nothing for its first seconds, as on a machine whose cores are
    # all busy: its liveness is its process, not a heartbeat missed within one second.
    spec = tmp_path / "jupyter" / "kernels" / "slow-python"
    spec.mkdir(parents=True)
    launch = f"sleep 3; exec {sys.executable} -m ipykernel_launcher -f {{connection_file}}"
    (spec / "kernel.json").write_text(
        json.dumps({"argv": ["sh", "-c", launch], "display_name": "slow", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    kernel = await CodeKernel.start(cwd=tmp_path, kernel_name="slow-python")
    try:
        res = await kernel.execute("print(6 * 7)", timeout_s=60, max_output_bytes=1000)
        assert (res.status, res.text) == ("ok", "42\n")
    finally:
        await kernel.aclose()
