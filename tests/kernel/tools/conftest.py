"""Fixtures for the tool tests: a real workspace, a local executor, a tool context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from openfoal_kernel.executors.local import LocalExecutor
from openfoal_kernel.protocol.types import Policy
from openfoal_kernel.tools.base import ToolContext


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty workspace folder (``<tmp>/ws``), resolved."""
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws.resolve()


@pytest_asyncio.fixture
async def executor(workspace: Path) -> AsyncIterator[LocalExecutor]:
    """A local executor on the workspace (closed after the test)."""
    ex = LocalExecutor(workspace)
    yield ex
    await ex.aclose()


@pytest.fixture
def make_ctx(workspace: Path, executor: LocalExecutor) -> Callable[..., ToolContext]:
    """Build a :class:`ToolContext`; keyword arguments go to :class:`Policy`."""

    def build(**policy: Any) -> ToolContext:
        return ToolContext(
            session_id="s_test",
            run_id="r_test",
            trace_id="t_test",
            workspace=workspace,
            executor=executor,
            policy=Policy(**policy),
        )

    return build
