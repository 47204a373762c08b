"""The OpenFoal agent kernel: a Jupyter kernel whose cells are chat turns.

A run arrives as an ``execute_request``: from the gateway with a :class:`RunSpec` in the
message metadata, or from a notebook as a plain cell (a turn of the notebook's own session).
The agent loop streams its events back on iopub; an ``interrupt_request`` (interrupt mode
``message``) cancels the loop and whatever tool process it started.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from typing import Any

from ipykernel.kernelbase import Kernel

from .. import __version__
from ..agent.loop import RunOutcome
from ..policy.published import POLICY_FILE_ENV, published_policy
from ..protocol import ChatMessage, ErrorCode
from ..protocol.kernel_wire import GATEWAY_ATTACH_MSG_TYPE, RUN_METADATA_KEY, RunSpec
from ..providers.config import settings_from_env
from .executors import ExecutorCache
from .gates import GATE_REPLY_MSG_TYPE, GateKeeper
from .sink import IopubSink
from .turn import build_loop
from .warm import SHARED_HTTP, warm_up

#: How long a notebook turn waits for the gateway to listen (a fresh kernel only).
GATEWAY_WAIT_S = 10.0


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class OpenFoalKernel(Kernel):
    """Jupyter kernel hosting the agent loop."""

    implementation = "openfoal"
    implementation_version = __version__
    banner = "OpenFoal agent kernel: each cell is a chat turn with the agent."
    language_info = {
        "name": "markdown",
        "mimetype": "text/markdown",
        "file_extension": ".md",
        "pygments_lexer": "markdown",
        "codemirror_mode": "markdown",
    }
    help_links = [{"text": "OpenFoal", "url": "https://github.com/openfoal/openfoal"}]
    _execute_sleep = 0.0  # type: ignore[assignment]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executors = ExecutorCache()
        self.gates = GateKeeper(self)
        self.control_handlers[GATE_REPLY_MSG_TYPE] = self.openfoal_gate_reply
        self.control_handlers[GATEWAY_ATTACH_MSG_TYPE] = self.openfoal_gateway_attach
        # set (from the control thread) once an OpenFoal gateway receives this kernel's iopub
        self._gateway_attached = threading.Event()
        # the notebook conversation of this kernel (cells without a gateway RunSpec)
        self.notebook_session_id = _new_id("nb")
        self.notebook_transcript: list[ChatMessage] = []
        warm_up()  # while the kernel waits in the pool, not during a session's first turn

    def _notebook_spec(self) -> RunSpec:
        return RunSpec(
            runId=_new_id("run"),
            sessionId=self.notebook_session_id,
            traceId=uuid.uuid4().hex,
            model=settings_from_env(),
            policy=published_policy(),
            transcript=list(self.notebook_transcript),
            workspace=os.getcwd(),
        )

    async def do_execute(  # type: ignore[override]
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_meta: dict[str, Any] | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        """Run one turn; the reply is sent when the run has ended."""
        raw = (cell_meta or {}).get(RUN_METADATA_KEY)
        from_gateway = raw is not None
        spec = RunSpec.model_validate(raw) if from_gateway else self._notebook_spec()
        if not from_gateway and not code.strip():
            return self._reply("ok")
        if not from_gateway:
            await self._wait_for_gateway()
        parent = self.get_parent("shell")
        sink = IopubSink(self, spec, parent, render=not from_gateway)
        stdin = (self._parent_ident["shell"], parent) if allow_stdin else None
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.ensure_future(self._turn(spec, sink, code, from_gateway, stdin))
        try:
            outcome = await self._task
        except asyncio.CancelledError:
            return self._reply("abort")
        finally:
            self._task = None
        if outcome.status != "completed" and not from_gateway:
            err = outcome.error or {}
            content = {
                "ename": str(err.get("code")),
                "evalue": str(err.get("message")),
                "traceback": [f"{err.get('code')}: {err.get('message')}"],
            }
            self.send_response(self.iopub_socket, "error", content)
            return self._reply("error", **content)
        return self._reply("ok")

    async def _turn(
        self,
        spec: RunSpec,
        sink: IopubSink,
        code: str,
        from_gateway: bool,
        stdin: tuple[Any, dict[str, Any]] | None,
    ) -> RunOutcome:
        """Run the loop; any failure before it starts still ends the run with agent.failed."""
        try:
            if not from_gateway:
                sink.event(
                    "agent.accepted",
                    {
                        "runtimeMode": spec.runtimeMode,
                        "model": spec.model.model or "",
                        "notebookPath": os.environ.get("JPY_SESSION_NAME"),
                    },
                )
                self.notebook_transcript.append(ChatMessage(role="user", content=code))
                sink.message(ChatMessage(role="user", content=code))
            executor = await self._executors.get(spec)
            loop_sink = sink if from_gateway else _Recorder(sink, self.notebook_transcript)

            async def gate(call: Any, reason: str) -> Any:
                return await self.gates.ask(
                    spec=spec, sink=loop_sink, call=call, reason=reason, stdin=stdin
                )

            loop = build_loop(spec, loop_sink, executor=executor, memory=spec.memory, gate=gate)
        except Exception as exc:
            self.log.exception("could not start run %s", spec.runId)
            error = {
                "code": ErrorCode.INTERNAL_ERROR.value,
                "retryable": False,
                "message": f"the agent kernel could not start the run: {exc}",
                "traceId": spec.traceId,
            }
            sink.event("agent.failed", {"error": error})
            return RunOutcome(status="failed", error=error)
        if spec.task == "compact":
            return await loop.compact()
        return await loop.run(None if spec.resume else code)

    def _reply(self, status: str, **extra: Any) -> dict[str, Any]:
        reply: dict[str, Any] = {"status": status, "execution_count": self.execution_count}
        if status == "ok":
            reply.update(payload=[], user_expressions={})
        elif status == "error":
            reply.update(extra)
        return reply

    async def interrupt_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Cancel the running turn (the loop kills its tool processes on cancellation)."""
        task, loop = self._task, self._loop
        if task is not None and loop is not None:
            loop.call_soon_threadsafe(task.cancel)
        assert self.session is not None  # set once the kernel app has started
        self.session.send(stream, "interrupt_reply", {"status": "ok"}, parent, ident=ident)

    async def _wait_for_gateway(self) -> None:
        """Under an OpenFoal server, hold a notebook turn until the gateway hears iopub.

        A notebook's kernel can run its first cell before the gateway has subscribed to its
        iopub (events published earlier are lost on a PUB socket). A kernel not started by
        such a server for a notebook (no policy file or no session name in its environment,
        e.g. nbclient from a shell) has no gateway to wait for.
        """
        if self._gateway_attached.is_set():
            return
        if not (os.environ.get(POLICY_FILE_ENV) and os.environ.get("JPY_SESSION_NAME")):
            return
        if not await asyncio.to_thread(self._gateway_attached.wait, GATEWAY_WAIT_S):
            self.log.warning(
                "OpenFoal: no gateway listened within %s s; the turn goes on "
                "(the gateway may miss its first events)",
                GATEWAY_WAIT_S,
            )

    async def openfoal_gateway_attach(self, stream: Any, ident: Any, parent: Any) -> None:
        """The gateway's iopub probe, then its word that it receives iopub (control channel)."""
        if (parent.get("content") or {}).get("synced"):
            self._gateway_attached.set()
        assert self.session is not None  # set once the kernel app has started
        self.session.send(
            stream, "openfoal_gateway_attach_reply", {"status": "ok"}, parent, ident=ident
        )

    async def openfoal_gate_reply(self, stream: Any, ident: Any, parent: Any) -> None:
        """A gate decision from the gateway (control channel)."""
        known = self.gates.reply_from_control(parent.get("content") or {})
        assert self.session is not None  # set once the kernel app has started
        self.session.send(
            stream,
            "openfoal_gate_reply_reply",
            {"status": "ok", "known": known},
            parent,
            ident=ident,
        )

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:  # type: ignore[override]
        """Release executors (code kernels, sandbox connections)."""
        await self._executors.aclose()
        await SHARED_HTTP.aclose()
        return {"status": "ok", "restart": restart}

    async def do_is_complete(self, code: str) -> dict[str, Any]:  # type: ignore[override]
        """Every message is complete."""
        return {"status": "complete"}


class _Recorder:
    """Keeps the notebook conversation's transcript in the kernel while forwarding events."""

    def __init__(self, inner: IopubSink, transcript: list[ChatMessage]) -> None:
        self.inner = inner
        self.transcript = transcript

    def event(self, name: str, payload: dict[str, Any]) -> None:
        self.inner.event(name, payload)

    def message(self, message: ChatMessage) -> None:
        self.transcript.append(message)
        self.inner.message(message)
