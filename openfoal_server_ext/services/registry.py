"""The run registry: the runs in flight, shared by the run and gate services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from openfoal_kernel.protocol import GateItem

from ..kernels.bridge import KernelBridge
from ..store import RunRow
from . import otel
from .telemetry import ACTIVE_RUNS

#: Called with a run just taken off the registry, before its terminal event goes out.
EndListener = Callable[["ActiveRun"], Awaitable[None]]


@dataclass(kw_only=True)
class ActiveRun:
    """A run in flight."""

    run: RunRow
    bridge: KernelBridge | None = None
    kernel_pid: int | None = None  # the kernel process the run was sent to
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    external: bool = False  # a notebook cell, not started through the gateway
    task: str = "turn"  # "turn" or "compact"
    silent: bool = False  # a memory flush: stored, its text never shown
    auto: bool = False  # started by the gateway itself (an automatic compaction)
    tool_started: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    wrote_memory: bool = False
    notebook_kernel_id: str | None = None  # python.exec bound to this notebook kernel
    dispatch: asyncio.Task[None] | None = None
    sandboxed: bool = False  # holds the session's sandbox until it ends
    #: the gate this run continues after (``continue_after_gate``) and its decision
    continues_gate: GateItem | None = None
    continues_outcome: str = ""
    #: who forced the session back to local mode while this run went (``runtime.setMode``)
    forced_by: str | None = None

    @property
    def waiting_kernel(self) -> bool:
        """True while a live kernel executes this run (and can take a gate reply)."""
        return self.bridge is not None and not self.ended.is_set()


class RunRegistry:
    """The active runs by id and by session (one per session), and who hears of their end."""

    def __init__(self) -> None:
        self._by_id: dict[str, ActiveRun] = {}
        self._by_session: dict[str, ActiveRun] = {}
        self._listeners: list[EndListener] = []

    def add(self, active: ActiveRun) -> None:
        """Register a run as in flight in its session."""
        self._by_id[active.run.id] = active
        self._by_session[active.run.session_id] = active
        ACTIVE_RUNS.set(len(self._by_id))
        run = active.run
        otel.run_started(
            run.id,
            trace_id=run.trace_id,
            session_id=run.session_id,
            model=run.model,
            mode=str(run.runtime_mode or ""),
            task=active.task,
        )

    def discard(self, active: ActiveRun) -> None:
        """Take a run off the registry (it ended, or never started)."""
        self._by_id.pop(active.run.id, None)
        if self._by_session.get(active.run.session_id) is active:
            del self._by_session[active.run.session_id]
        ACTIVE_RUNS.set(len(self._by_id))
        run = active.run
        otel.run_ended(run.id, run.status, run.usage or {}, run.error)

    async def finish(self, active: ActiveRun) -> None:
        """Take an ended run off the registry and tell every end listener."""
        self.discard(active)
        for listener in self._listeners:
            await listener(active)

    def on_end(self, listener: EndListener) -> None:
        """Call ``listener`` with every run that ends from now on."""
        self._listeners.append(listener)

    def get(self, run_id: str) -> ActiveRun | None:
        """The run in flight with this id, if any."""
        return self._by_id.get(run_id)

    def in_session(self, session_id: str) -> ActiveRun | None:
        """The session's run in flight, if any."""
        return self._by_session.get(session_id)

    def busy(self, session_id: str) -> bool:
        """True while the session has a run in flight."""
        return session_id in self._by_session

    def on_bridge(self, bridge: KernelBridge) -> list[ActiveRun]:
        """The runs executing in one agent kernel."""
        return [a for a in self._by_id.values() if a.bridge is bridge]

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)
