"""The gateway's kernel bridge against a real agent kernel, without a Jupyter server.

A ``KernelManager`` starts the ``openfoal`` kernel; the bridge opens its comm, runs turns on
it, answers gates, interrupts, attaches to a notebook's kernel and survives a restart.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from jupyter_client.manager import AsyncKernelManager

from openfoal_kernel.protocol.kernel_wire import KernelEvent, RunSpec
from openfoal_kernel.providers.config import settings_from_env
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep, api_tool_name
from openfoal_server_ext.kernels.bridge import KernelBridge
from openfoal_testing.plugin import scripted_env

pytestmark = pytest.mark.asyncio
TIMEOUT = 60.0


class Events:
    """What the bridge delivered, with a way to wait for one."""

    def __init__(self) -> None:
        self.items: list[KernelEvent] = []
        self.changed = asyncio.Event()

    async def __call__(self, bridge: KernelBridge, event: KernelEvent) -> None:
        self.items.append(event)
        self.changed.set()

    def names(self, run_id: str) -> list[str]:
        return [e.event or "" for e in self.items if e.kind == "event" and e.runId == run_id]

    async def wait_for(self, run_id: str, name: str) -> KernelEvent:
        async def found() -> KernelEvent:
            while True:
                for e in self.items:
                    if e.runId == run_id and e.event == name:
                        return e
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(found(), TIMEOUT)


@pytest_asyncio.fixture
async def kernel(model, monkeypatch, tmp_path) -> AsyncIterator[AsyncKernelManager]:
    for key, value in scripted_env(model).items():
        monkeypatch.setenv(key, value)
    km = AsyncKernelManager(kernel_name="openfoal")
    await km.start_kernel(cwd=str(tmp_path))
    yield km
    await km.shutdown_kernel(now=True)


def _spec(tmp_path: Any) -> RunSpec:
    return RunSpec(
        runId=f"run_{uuid.uuid4().hex[:8]}",
        sessionId="sess_bridge",
        traceId=uuid.uuid4().hex,
        model=settings_from_env(),
        workspace=str(tmp_path),
    )


async def _bridge(km: AsyncKernelManager, events: Events, *, owned: bool = True) -> KernelBridge:
    bridge = KernelBridge("k1", km, on_event=events, owned=owned)
    await bridge.start(wait_ready=owned)
    return bridge


async def test_a_turn_runs_on_the_comm(kernel, model, tmp_path) -> None:
    events = Events()
    bridge = await _bridge(kernel, events)
    try:
        model.enqueue(Reply.of(TextStep(text="An answer in parts.", chunk_size=4)))
        spec = _spec(tmp_path)
        ended = await asyncio.wait_for(await bridge.execute(spec, "hello"), TIMEOUT)
        assert ended["status"] == "ok"
        names = events.names(spec.runId)
        assert names[-1] == "agent.completed" and "agent.delta" in names
        text = "".join(
            "".join(e.deltas) if e.deltas else e.payload.get("delta", "")
            for e in events.items
            if e.event == "agent.delta"
        )
        assert text == "An answer in parts."
        stored = [e.message for e in events.items if e.kind == "message" and e.message]
        assert stored[-1].role == "assistant" and stored[-1].content == "An answer in parts."
        assert model.requests[-1].transcript()[-1].content == "hello"
    finally:
        await bridge.close()


async def test_gate_answered_through_the_bridge(kernel, model, tmp_path) -> None:
    events = Events()
    bridge = await _bridge(kernel, events)
    try:
        call = {"command": "echo approved > out.txt"}
        model.enqueue(
            Reply.of(ToolCallStep(name=api_tool_name("bash.exec"), arguments=call)),
            Reply.of(TextStep(text="done")),
        )
        spec = _spec(tmp_path)
        ended = await bridge.execute(spec, "write it")
        requested = await events.wait_for(spec.runId, "policy-gate.requested")
        bridge.send_gate_reply(requested.payload["gate"]["gateId"], "approve", "alice")
        assert (await asyncio.wait_for(ended, TIMEOUT))["status"] == "ok"
        resolved = await events.wait_for(spec.runId, "policy-gate.resolved")
        assert resolved.payload["gate"]["resolvedBy"] == "alice"
        assert (tmp_path / "out.txt").read_text() == "approved\n"
    finally:
        await bridge.close()


async def test_interrupt_and_a_refused_second_turn(kernel, model, tmp_path) -> None:
    events = Events()
    bridge = await _bridge(kernel, events)
    try:
        model.enqueue(
            Reply.of(ToolCallStep(name=api_tool_name("bash.exec"), arguments={"command": "true"}))
        )
        first = _spec(tmp_path)
        first_ended = await bridge.execute(first, "wait at a gate")
        await events.wait_for(first.runId, "policy-gate.requested")
        # a second turn while the first runs: refused with a structured error, as agent.failed
        second = _spec(tmp_path)
        refused = await asyncio.wait_for(await bridge.execute(second, "again"), TIMEOUT)
        assert refused["status"] == "error"
        failed = await events.wait_for(second.runId, "agent.failed")
        assert failed.payload["error"]["code"] == "INVALID_REQUEST"
        assert failed.payload["error"]["traceId"] == second.traceId
        await bridge.interrupt()
        assert (await asyncio.wait_for(first_ended, TIMEOUT))["status"] == "abort"
        aborted = await events.wait_for(first.runId, "agent.failed")
        assert aborted.payload.get("aborted") is True
    finally:
        await bridge.close()


async def test_attach_to_a_notebook_kernel_sees_its_cells(kernel, model, tmp_path) -> None:
    events = Events()
    bridge = await _bridge(kernel, events, owned=False)
    client = kernel.client()
    client.start_channels()
    try:
        await bridge.attach_notebook()
        await client.wait_for_ready(timeout=TIMEOUT)
        model.enqueue(Reply.of(TextStep(text="From the notebook.")))
        reply = await client.execute_interactive("a notebook cell", timeout=TIMEOUT)
        assert reply["content"]["status"] == "ok"
        accepted = next(e for e in events.items if e.event == "agent.accepted")
        await events.wait_for(accepted.runId, "agent.completed")
        assert accepted.sessionId.startswith("nb_")
    finally:
        client.stop_channels()
        await bridge.close()


async def test_a_restarted_kernel_gets_a_new_comm(kernel, model, tmp_path) -> None:
    events = Events()
    bridge = await _bridge(kernel, events)
    try:
        before = kernel.ready
        await kernel.restart_kernel(now=True)
        await bridge.reconnect(before)
        assert bridge.comm_id is None  # the new process has none yet
        model.enqueue(Reply.of(TextStep(text="after the restart")))
        spec = _spec(tmp_path)
        ended = await asyncio.wait_for(await bridge.execute(spec, "still there?"), TIMEOUT)
        assert ended["status"] == "ok"
        assert events.names(spec.runId)[-1] == "agent.completed"
    finally:
        await bridge.close()
