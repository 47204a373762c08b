"""A gateway-side client of one agent kernel: its comm, its turns, its iopub stream.

The bridge speaks only the Jupyter messaging spec: once it hears the kernel's iopub it opens
a comm (target ``openfoal.v1``); a turn is a ``run`` comm_msg, a gate decision a
``gate_reply`` comm_msg, the session's code kernel (started when a turn first runs Python) a
``code_kernel_reply`` comm_msg, and the kernel's events come back as comm_msg on iopub (see
:mod:`openfoal_kernel.protocol.kernel_wire`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.session import Session as JupyterSession
from pydantic import ValidationError

from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.kernel_wire import (
    COMM_TARGET,
    CodeKernelAnswer,
    GateAnswer,
    KernelEvent,
    ParkedResult,
    RunRequest,
    RunSpec,
)

log = logging.getLogger(__name__)

EventCallback = Callable[["KernelBridge", KernelEvent], Awaitable[None]]
#: Start (or find) a session's code kernel; returns its connection info.
CodeKernelCallback = Callable[[str], Awaitable[dict[str, Any]]]


class KernelBridge:
    """Talks to one OpenFoal kernel over its Jupyter channels.

    It has its own Jupyter ``Session`` object (same key as the kernel's): iopub is
    broadcast, and two subscribers sharing one Session would reject each other's
    messages as replays.
    """

    def __init__(
        self,
        kernel_id: str,
        km: Any,
        *,
        on_event: EventCallback,
        owned: bool,
        on_code_kernel: CodeKernelCallback | None = None,
    ) -> None:
        self.kernel_id = kernel_id
        self.km = km
        self.owned = owned  # started by the gateway (an agent kernel) vs. a notebook's kernel
        self.session_id: str | None = None
        self.last_used = time.monotonic()
        self.last_iopub = time.monotonic()  # when the latest iopub message was read
        self.on_event = on_event
        self.on_code_kernel = on_code_kernel
        self._serving: set[asyncio.Task[None]] = set()
        self.client = self._new_client()
        self._tasks: list[asyncio.Task[None]] = []
        #: The open turns of this kernel: runId -> (spec, future of its ``ended`` data).
        self.runs: dict[str, tuple[RunSpec, asyncio.Future[dict[str, Any]]]] = {}
        self._terminated: set[str] = set()
        # iopub is a PUB/SUB socket: until our subscription reaches the kernel's publisher
        # (after a start or a restart), its messages are dropped. The comm is opened, and a
        # run sent, only once a status message of ours has come back on iopub.
        self.iopub_synced = False
        self.comm_id: str | None = None
        self._probes: dict[str, asyncio.Future[None]] = {}
        #: Set while a live process is behind the bridge; cleared from the moment its death
        #: is noticed until the restarted process is reconnected.
        self.up = asyncio.Event()
        self.up.set()
        self._lost_pids: set[int] = set()

    @property
    def pid(self) -> int | None:
        """The pid of the kernel process now behind the bridge (None when unknown)."""
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        return pid if isinstance(pid, int) else None

    def mark_lost(self, pid: int | None) -> bool:
        """Note that the process ``pid`` died; False when that death was noted already."""
        if pid is not None and pid in self._lost_pids:
            return False
        if pid is not None:
            self._lost_pids.add(pid)
        self.up.clear()
        return True

    async def wait_up(self, timeout: float = 90.0) -> None:
        """Wait until a live process is behind the bridge (after a restart: reconnected)."""
        await asyncio.wait_for(self.up.wait(), timeout)

    def _new_client(self) -> AsyncKernelClient:
        """A client of the kernel's current ports (a client's channels start only once)."""
        km = self.km
        session = JupyterSession(
            key=km.session.key,
            signature_scheme=km.session.signature_scheme,
            username="openfoal-gateway",
        )
        client = AsyncKernelClient(session=session)
        client.load_connection_info(km.get_connection_info(session=False))
        return client

    async def start(self, *, wait_ready: bool) -> None:
        """Open the channels and start reading iopub; an owned kernel also gets its comm."""
        self.client.start_channels(stdin=False, hb=False, control=True)
        if wait_ready:  # before the readers start: it reads the kernel_info reply itself
            await self.client.wait_for_ready(timeout=60)
        self._tasks = [
            asyncio.create_task(self._read_iopub()),
            asyncio.create_task(self._read_shell()),
        ]
        if wait_ready:
            await self.sync_iopub()
            self.open_comm()

    async def sync_iopub(self, timeout: float = 30.0, *, control: bool = False) -> None:
        """Wait until iopub delivers: probe with kernel_info until its status comes back.

        ``control``: probe on the control channel, which a kernel serves while its shell is
        busy (a notebook's kernel may be running a cell that waits for exactly this).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        channel = self.client.control_channel if control else self.client.shell_channel
        while not self.iopub_synced:
            msg = self.client.session.msg("kernel_info_request", {})
            probe: asyncio.Future[None] = loop.create_future()
            self._probes[msg["header"]["msg_id"]] = probe
            channel.send(msg)
            try:
                await asyncio.wait_for(probe, 0.5)
                self.iopub_synced = True
            except asyncio.TimeoutError:
                if loop.time() > deadline:
                    raise TimeoutError(
                        f"kernel {self.kernel_id} does not answer on iopub"
                    ) from None
            finally:
                self._probes.pop(msg["header"]["msg_id"], None)

    def open_comm(self) -> None:
        """Open the gateway's comm (iopub must be synced): from now on the kernel reports."""
        self.comm_id = uuid.uuid4().hex
        content = {"comm_id": self.comm_id, "target_name": COMM_TARGET, "data": {}}
        self.client.shell_channel.send(self.client.session.msg("comm_open", content))

    def _comm_msg(self, data: dict[str, Any]) -> None:
        assert self.comm_id is not None
        content = {"comm_id": self.comm_id, "data": data}
        self.client.shell_channel.send(self.client.session.msg("comm_msg", content))

    async def attach_notebook(self, timeout: float = 60.0) -> None:
        """Sync iopub through the control channel, then open the comm.

        Comm messages are served while a cell runs, so a first cell that waits for the
        gateway goes on as soon as the comm is open.
        """
        self.iopub_synced = False
        await self.sync_iopub(timeout, control=True)
        self.open_comm()

    async def execute(self, spec: RunSpec, code: str) -> asyncio.Future[dict[str, Any]]:
        """Start a turn (a ``run`` comm_msg); return the future of the kernel's ``ended``."""
        self.last_used = time.monotonic()
        if not self.iopub_synced:
            await self.sync_iopub()
        if self.comm_id is None:
            self.open_comm()
        ended: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.runs[spec.runId] = (spec, ended)
        self._comm_msg(RunRequest(spec=spec, code=code).model_dump(mode="json"))
        return ended

    async def _read_iopub(self) -> None:
        while True:
            try:
                msg = await self.client.get_iopub_msg()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading iopub of kernel %s", self.kernel_id)
                await asyncio.sleep(0.1)
                continue
            self.last_iopub = time.monotonic()
            msg_type = msg["msg_type"]
            if msg_type == "comm_msg" and msg["content"].get("comm_id") == self.comm_id:
                await self._kernel_data(msg["content"].get("data") or {})
            elif msg_type == "comm_close" and msg["content"].get("comm_id") == self.comm_id:
                self.comm_id = None
            elif self._probes and msg_type == "status":
                probe = self._probes.get(msg["parent_header"].get("msg_id", ""))
                if probe is not None and not probe.done():
                    probe.set_result(None)

    async def _kernel_data(self, data: dict[str, Any]) -> None:
        try:
            event = KernelEvent.model_validate(data)
        except ValidationError:
            log.warning("kernel %s sent a malformed event: %r", self.kernel_id, data)
            return
        if event.kind == "ended":
            await self._ended(event)
            return
        if event.kind == "code_kernel":
            self._serve_code_kernel(event)
            return
        if event.kind == "event" and event.event in ev.TERMINAL_EVENTS:
            self._terminated.add(event.runId)
        await self._deliver(event)

    def _serve_code_kernel(self, event: KernelEvent) -> None:
        """Start the session's code kernel in the background (iopub reading goes on) and
        answer the kernel with its connection info, or with why there is none."""
        request_id = str(event.payload.get("requestId", ""))

        async def serve() -> None:
            session_id = self.session_id
            try:
                if self.on_code_kernel is None or not session_id:
                    raise RuntimeError("this kernel serves no session of the gateway")
                if event.sessionId != session_id:
                    raise RuntimeError(f"this kernel serves session {session_id}")
                connection = await self.on_code_kernel(session_id)
                answer = CodeKernelAnswer(requestId=request_id, connection=connection)
            except Exception as exc:
                log.warning("no code kernel for kernel %s: %s", self.kernel_id, exc)
                answer = CodeKernelAnswer(
                    requestId=request_id, error=f"could not start the session's code kernel: {exc}"
                )
            if self.comm_id is not None:
                self._comm_msg(answer.model_dump(mode="json"))

        task = asyncio.create_task(serve())
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _ended(self, event: KernelEvent) -> None:
        """The kernel is done with a run; one it refused still ends with ``agent.failed``."""
        entry = self.runs.pop(event.runId, None)
        terminated = event.runId in self._terminated
        self._terminated.discard(event.runId)
        if entry is None:
            if event.error:
                log.warning("kernel %s refused a request: %s", self.kernel_id, event.error)
            return
        spec, ended = entry
        if not terminated:
            error = {
                **(event.error or {"code": "RUNTIME_LOST", "message": "the run ended unreported"}),
                "traceId": spec.traceId,
            }
            failed = KernelEvent(
                kind="event",
                runId=spec.runId,
                sessionId=spec.sessionId,
                traceId=spec.traceId,
                event=ev.AGENT_FAILED,
                payload={"error": error},
            )
            await self._deliver(failed)
        if not ended.done():
            ended.set_result(event.model_dump(exclude_none=True))

    async def _deliver(self, event: KernelEvent) -> None:
        try:
            await self.on_event(self, event)
        except Exception:
            log.exception("handling an event of kernel %s", self.kernel_id)

    async def _read_shell(self) -> None:
        """Drain shell replies (probes, comm traffic has none): nothing waits on them."""
        while True:
            try:
                await self.client.get_shell_msg()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading shell replies of kernel %s", self.kernel_id)
                await asyncio.sleep(0.1)

    def send_gate_reply(self, gate_id: str, decision: str, resolved_by: str) -> None:
        """Deliver a gate decision to the waiting kernel (a ``gate_reply`` on the comm)."""
        if self.comm_id is None:
            log.warning("kernel %s has no open comm for gate %s", self.kernel_id, gate_id)
            return
        answer = GateAnswer(gateId=gate_id, decision=decision, resolvedBy=resolved_by)  # type: ignore[arg-type]
        self._comm_msg(answer.model_dump(mode="json"))

    def send_parked_result(self, result: ParkedResult) -> bool:
        """Tell a notebook's kernel how the run its cell parked on ended; False: no comm."""
        if self.comm_id is None:
            return False
        self._comm_msg(result.model_dump(mode="json"))
        return True

    async def interrupt(self) -> None:
        """Interrupt by message (kernel spec ``interrupt_mode: message``)."""
        await self.km.interrupt_kernel()

    async def close(self) -> None:
        """Stop reading and close the channels."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self.client.stop_channels()

    async def reconnect(self, before: Any = None, timeout: float = 60.0) -> None:
        """After a restart: reopen the channels on the kernel's current ports.

        A kernel that dies early is restarted on new random ports; channels left on the old
        ones would never hear it again. ``before`` is the kernel manager's ``ready`` future
        from before the restart began: the ports are known once a newer one is done. The
        new process has no comm yet: the next turn (or the notebook attach) opens one.
        """
        await self.close()
        self.iopub_synced = False
        self.comm_id = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while before is not None and loop.time() < deadline:
            ready = getattr(self.km, "ready", None)
            if ready is None or (ready is not before and ready.done()):
                break
            await asyncio.sleep(0.05)
        self.client = self._new_client()
        await self.start(wait_ready=False)
        self.up.set()
