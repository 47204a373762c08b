"""notebook.variables against a real ipykernel: bounds, secrets, unbound and dead kernels."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from openfoal_kernel.executors.code_kernel import CodeKernel
from openfoal_kernel.executors.local import LocalExecutor
from openfoal_kernel.tools.base import ToolContext
from openfoal_kernel.tools.notebook_vars import NotebookVariablesTool, mentions


def _ctx(executor: LocalExecutor) -> ToolContext:
    return ToolContext(
        session_id="s", run_id="r", trace_id="t", workspace=executor.workspace, executor=executor
    )


def test_mentions_are_identifiers_after_at() -> None:
    assert mentions("look at @df, then @df and @x_1; mail me@example.com @9no") == ["df", "x_1"]


@pytest.mark.asyncio
async def test_unbound_chat_is_refused(tmp_path: Path) -> None:
    ex = LocalExecutor(tmp_path)
    res = await NotebookVariablesTool().invoke({}, _ctx(ex))
    assert res.status == "failed" and res.error is not None
    assert res.error["code"] == "INVALID_REQUEST" and "bound to a notebook" in res.output


@pytest.mark.asyncio
async def test_listing_then_a_dead_kernel(tmp_path: Path) -> None:
    kernel = await CodeKernel.start(cwd=tmp_path)
    try:
        ex = LocalExecutor(
            tmp_path, code_kernel_connection=kernel.connection_info, notebook_bound=True
        )
        setup = (
            "import sys\n"
            "text = 'x' * 10000\n"
            "db_password = 'hunter2-very-secret'\n"
            "conf = {'url': 'postgres://u:pw123456@db/x', 'n': 1}\n"
        )
        await kernel.execute(setup, timeout_s=60, max_output_bytes=1000)
        res = await NotebookVariablesTool().invoke({"repr_chars": 50}, _ctx(ex))
        assert res.status == "success", res.output
        out = res.output
        assert "text: builtins.str, length 10000" in out and "x" * 51 not in out
        assert "hunter2" not in out and "db_password: builtins.str (secret-like name" in out
        assert "pw123456" not in out and "conf: builtins.dict, length 2" in out
        assert "- sys:" not in out  # modules are not variables
        # no pandas/numpy imported by the probe, no names left behind
        check = await kernel.execute(
            "print('pandas' in sys.modules, [k for k in dir() if 'openfoal' in k])",
            timeout_s=30,
            max_output_bytes=1000,
        )
        assert check.text.strip() == "False []"
        pid = int(
            (
                await kernel.execute(
                    "import os; print(os.getpid())", timeout_s=30, max_output_bytes=100
                )
            ).text
        )
        os.kill(pid, signal.SIGKILL)
        res = await NotebookVariablesTool().invoke({}, _ctx(ex))
        assert res.status == "failed" and res.error is not None
        assert res.error["code"] == "TOOL_EXEC_FAILED"
        assert "kernel" in res.error["message"]
        await ex.aclose()
    finally:
        await kernel.aclose()
