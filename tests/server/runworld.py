"""A wired set of run services on a real DuckDB store, with a fake agent kernel at the edge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio

from openfoal_kernel.protocol import KernelEvent, ModelSettings, Policy, RunSpec
from openfoal_server_ext.services.assembly import RunServices, build_run_services
from openfoal_server_ext.services.audit import AuditService
from openfoal_server_ext.services.context import RequestContext
from openfoal_server_ext.services.hub import EventHub
from openfoal_server_ext.services.memory import MemoryService
from openfoal_server_ext.services.sandboxes import SandboxService
from openfoal_server_ext.services.sessions import SessionService
from openfoal_server_ext.store import DuckDBStore, StoreWorker

WAIT_S = 30.0


class FakeBridge:
    """An agent kernel that records what it was sent; the test plays its events."""

    def __init__(self) -> None:
        self.owned = True
        self.last_used = 0.0
        self.last_iopub = 0.0
        self.specs: list[RunSpec] = []
        self.replies: list[tuple[str, str, str]] = []
        self.reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.started = asyncio.Event()
        self.pid: int | None = None

    async def wait_up(self) -> None:
        return None

    async def execute(self, spec: RunSpec, code: str) -> asyncio.Future[dict[str, Any]]:
        self.specs.append(spec)
        self.started.set()
        return self.reply

    def send_gate_reply(self, gate_id: str, decision: str, resolved_by: str) -> None:
        self.replies.append((gate_id, decision, resolved_by))


@dataclass
class FakeKernels:
    """The orchestrator's surface the run services use."""

    bridge: FakeBridge
    mkm: dict[str, Any] = field(default_factory=dict)
    interrupted: int = 0
    released: list[str] = field(default_factory=list)

    async def acquire(
        self, session_id: str, owner: str | None = None, on_wait: Any = None
    ) -> FakeBridge:
        return self.bridge

    async def code_kernel(self, session_id: str) -> dict[str, Any]:
        return {"kernelId": "code-1"}

    def running_code_kernel(self, session_id: str) -> dict[str, Any] | None:
        return None  # a fresh session: the kernel asks for one at its first python.exec

    def connection_info(self, kernel_id: str, binding: str) -> dict[str, Any]:
        return {"kernelId": kernel_id, "binding": binding}

    async def interrupt(self, bridge: FakeBridge) -> None:
        self.interrupted += 1

    async def release_session(self, session_id: str) -> None:
        self.released.append(session_id)


@dataclass
class World:
    """The wired services and what the test observes of them."""

    services: RunServices
    hub: EventHub
    audit: AuditService
    memory: MemoryService
    sandboxes: SandboxService
    sessions: SessionService
    worker: StoreWorker
    kernels: FakeKernels
    frames: list[dict[str, Any]]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["event"] == name]

    async def wait_for(self, name: str, count: int = 1) -> dict[str, Any]:
        async def until() -> dict[str, Any]:
            while len(self.events(name)) < count:
                await asyncio.sleep(0.01)
            return self.events(name)[count - 1]

        return await asyncio.wait_for(until(), WAIT_S)

    def event(self, spec: RunSpec, name: str, payload: dict[str, Any]) -> KernelEvent:
        return KernelEvent(
            kind="event",
            runId=spec.runId,
            sessionId=spec.sessionId,
            traceId=spec.traceId,
            event=name,
            payload=payload,
        )


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Run services wired as the app wires them, on a fresh store under ``tmp_path``."""
    worker = StoreWorker(DuckDBStore(tmp_path / "runs.duckdb"), window_s=0.01)
    hub = EventHub(worker)
    await hub.start()
    sessions = SessionService(worker, hub, workspace_id="default")
    await sessions.start()
    audit = AuditService(worker)
    memory = MemoryService(tmp_path)
    sandboxes = SandboxService(None, audit)
    kernels = FakeKernels(FakeBridge())
    services = build_run_services(
        worker=worker,
        hub=hub,
        sessions=sessions,
        kernels=kernels,  # type: ignore[arg-type]
        audit=audit,
        sandboxes=sandboxes,
        memory=memory,
        model_settings=lambda model: ModelSettings(model=model or "scripted"),
        policy=lambda _session_id: Policy(),
        gate_timeout_s=lambda: 900,
        workspace=str(tmp_path),
        default_owner="alice",
    )
    await services.gates.start()
    frames: list[dict[str, Any]] = []
    hub.subscribe_owner("alice", frames.append)
    yield World(services, hub, audit, memory, sandboxes, sessions, worker, kernels, frames)
    await services.gates.stop()
    await worker.commit()
    worker.close()


def ctx(user: str = "alice") -> RequestContext:
    """A request of ``user`` under a fixed trace id."""
    return RequestContext(user=user, trace_id="0" * 32)
