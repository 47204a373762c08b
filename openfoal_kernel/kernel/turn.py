"""Builds one run's agent loop from a :class:`RunSpec`: model, tools, executor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..agent.loop import AgentLoop, EventSink, GateHandler
from ..protocol.kernel_wire import ModelSettings, RunSpec
from ..providers.base import ModelProvider
from ..providers.config import build_provider
from ..tools.base import Tool, ToolContext
from ..tools.registry import default_tools
from .shared_http import SHARED_HTTP


def make_provider(settings: ModelSettings) -> ModelProvider:
    """Build the provider chain for these settings (raises ModelError when unconfigured).

    Its providers share the kernel's HTTP client, so runs reuse connections to the model."""
    return build_provider(settings, http_client=SHARED_HTTP.get())


def make_tools(*, notebook_bound: bool = False) -> dict[str, Tool[Any]]:
    """Return the tools offered to the model (``notebook.variables`` only when bound)."""
    tools = default_tools()
    if not notebook_bound:
        tools.pop("notebook.variables", None)
    return tools


def build_loop(
    spec: RunSpec,
    sink: EventSink,
    *,
    executor: Any,
    gate: GateHandler | None = None,
    memory: str = "",
) -> AgentLoop:
    """Assemble the loop of one run."""
    workspace = Path(spec.workspace or os.getcwd())
    ctx = ToolContext(
        session_id=spec.sessionId,
        run_id=spec.runId,
        trace_id=spec.traceId,
        workspace=workspace,
        executor=executor,
        policy=spec.policy,
        runtime_mode=spec.runtimeMode,
        memory_root=Path(spec.memoryRoot) if spec.memoryRoot else None,
    )
    return AgentLoop(
        spec=spec,
        provider_factory=lambda: make_provider(spec.model),
        tools=make_tools(notebook_bound=bool(getattr(executor, "notebook_bound", False))),
        tool_ctx=ctx,
        sink=sink,
        gate=gate,
        memory=memory,
    )
