"""One executor per session inside the kernel: local, or the session's Docker sandbox."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..executors.base import Executor
from ..protocol.kernel_wire import RunSpec


class ExecutorCache:
    """Reuses a session's executor across turns while its mode and targets stay the same."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[tuple[Any, ...], Executor]] = {}

    async def get(
        self,
        spec: RunSpec,
        code_kernel_provider: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> Executor:
        """Return the executor for this run, building (and replacing) it when needed.

        ``code_kernel_provider``: with ``spec.codeKernelOnRequest``, how a local executor gets
        the session's code kernel at its first python.exec."""
        key = (spec.runtimeMode, spec.workspace, repr(spec.codeKernel), repr(spec.sandbox))
        cached = self._items.get(spec.sessionId)
        if cached and cached[0] == key:
            return cached[1]
        if cached:
            await cached[1].aclose()
        executor = _build(spec, code_kernel_provider if spec.codeKernelOnRequest else None)
        self._items[spec.sessionId] = (key, executor)
        return executor

    async def aclose(self) -> None:
        """Close every executor."""
        for _, executor in self._items.values():
            await executor.aclose()
        self._items.clear()


def _build(
    spec: RunSpec, code_kernel_provider: Callable[[], Awaitable[dict[str, Any]]] | None
) -> Executor:
    if spec.runtimeMode == "cloud" and spec.sandbox is not None:
        from ..sandbox.client.executor import DockerExecutor, SandboxHandle

        return DockerExecutor(SandboxHandle.model_validate(spec.sandbox))  # type: ignore[attr-defined]
    from ..executors.local import LocalExecutor

    workspace = Path(spec.workspace or os.getcwd())
    return LocalExecutor(
        workspace,
        code_kernel_connection=spec.codeKernel,
        code_kernel_provider=code_kernel_provider,
    )
