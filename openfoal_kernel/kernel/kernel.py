"""The OpenFoal agent kernel: a Jupyter kernel whose cells are chat turns.

A gateway turn arrives as a ``run`` request on the gateway's comm (see
:mod:`openfoal_kernel.protocol.kernel_wire`); a notebook cell arrives as an ``execute_request``
(a turn of the notebook's own session, or a ``/command``). Every event goes out on the comm;
a notebook cell also shows its run (:mod:`.view`). An ``interrupt_request`` (interrupt mode
``message``) cancels the turn and whatever tool process it started.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from typing import Any

from ipykernel.kernelbase import Kernel
from traitlets import Float, default

from .. import __version__
from ..agent.loop import RunOutcome
from ..policy.published import POLICY_FILE_ENV, published_policy
from ..protocol import ChatMessage, ErrorCode
from ..protocol.kernel_wire import (
    CodeKernelAnswer,
    GateAnswer,
    ParkedResult,
    RunRequest,
    RunSpec,
    parked_display_id,
)
from ..providers.config import settings_from_env
from . import attach, notebook
from .channel import GatewayChannel
from .code_requests import CodeKernelRequests
from .executors import ExecutorCache
from .gates import GateKeeper
from .park import (
    PARKED_ENAME,
    GateParked,
    park_after_from_env,
    parked_result_text,
    parked_text,
)
from .shared_http import SHARED_HTTP
from .sink import CommSink
from .turn import build_loop, make_tools
from .view import NotebookView
from .warm import warm_up

#: How long a notebook turn waits for the gateway to listen (a fresh kernel only).
GATEWAY_WAIT_S = 10.0
_ENDED = {"completed": "ok", "failed": "error", "aborted": "abort"}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class OpenFoalKernel(Kernel):
    """Jupyter kernel hosting the agent loop."""

    implementation = "openfoal"
    implementation_version = __version__
    banner = "OpenFoal agent kernel: each cell is a chat turn with the agent (/help for more)."
    language_info = {
        "name": "markdown",
        "mimetype": "text/markdown",
        "file_extension": ".md",
        "pygments_lexer": "markdown",
        "codemirror_mode": "markdown",
    }
    help_links = [{"text": "OpenFoal", "url": "https://github.com/openfoal/openfoal"}]
    _execute_sleep = 0.0  # type: ignore[assignment]
    park_after_s = Float(
        help="Seconds an unattended cell's gate waits before it parks (0: at once; "
        "negative: never park, wait the gate timeout). Default from OPENFOAL_PARK_AFTER_S."
    ).tag(config=True)

    @default("park_after_s")
    def _park_after_default(self) -> float:
        try:
            return park_after_from_env()
        except ValueError as exc:
            self.log.warning("OpenFoal: %s; unattended gates park at once", exc)
            return 0.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executors = ExecutorCache()
        self.gates = GateKeeper(self)
        self.channel = GatewayChannel(
            self,
            on_run=self._gateway_run,
            on_gate=self._gate_answer,
            on_result=self._parked_result,
            on_code_kernel=self._code_kernel_answer,
        )
        self.code_requests = CodeKernelRequests(self.channel)
        #: the current turn's run id and the message that started it (a code kernel request
        #: is sent on its behalf)
        self._turn_context: tuple[str, dict[str, Any]] = ("", {})
        #: True once this kernel asked a server to attach to it (``kernels.attach``)
        self._attach_requested = False
        self.comm_manager = self.channel.manager  # comm_info_request lists its comms
        self.tools = make_tools()
        # the notebook conversation of this kernel (cells that are turns)
        self.notebook_session_id = _new_id("nb")
        self.notebook_transcript: list[ChatMessage] = []
        self.history = notebook.CellHistory()
        #: the gate the last notebook turn parked on (None when it did not park)
        self.parked_gate: dict[str, Any] | None = None
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

    # -- gateway turns (the comm) -------------------------------------------------------

    def _gateway_run(self, request: RunRequest, parent: dict[str, Any]) -> None:
        """Start a gateway turn without holding the shell (gate answers arrive on it)."""
        spec = request.spec
        if self._task is not None:
            self.channel.refuse(spec.runId, "the agent kernel is running another turn", parent)
            return
        sink = CommSink(self.channel, spec, parent)
        self._start(self._gateway_turn(spec, sink, request.code, parent))

    async def _gateway_turn(
        self, spec: RunSpec, sink: CommSink, code: str, parent: dict[str, Any]
    ) -> None:
        try:
            outcome = await self._turn(spec, sink, code, stdin=None, parent=parent)
            sink.ended(_ENDED[outcome.status])
        except asyncio.CancelledError:
            sink.ended("abort")
        finally:
            self._task = None

    def _parked_result(self, result: ParkedResult, parent: dict[str, Any]) -> None:
        """The run a cell parked on has ended: show it in that cell (``update_display_data``)."""
        text = parked_result_text(result)
        content = {
            "data": {"text/plain": text},
            "metadata": {
                "openfoal": {
                    "parkedGate": result.gateId,
                    **result.model_dump(exclude={"type", "text", "toolOutput"}),
                }
            },
            "transient": {"display_id": parked_display_id(result.gateId)},
        }
        self._publish("update_display_data", content, parent)

    def _gate_answer(self, answer: GateAnswer) -> bool:
        return self.gates.answer(answer)

    def _code_kernel_answer(self, answer: CodeKernelAnswer) -> bool:
        return self.code_requests.answer(answer)

    async def _ask_code_kernel(self, session_id: str) -> dict[str, Any]:
        """Have the gateway start the session's code kernel (during the current turn)."""
        run_id, parent = self._turn_context
        return await self.code_requests.ask(session_id=session_id, run_id=run_id, parent=parent)

    def _start(self, coro: Any) -> asyncio.Task[Any]:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.ensure_future(coro)
        return self._task

    # -- notebook cells (execute_request) ----------------------------------------------

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
        """Run one cell: a kernel command, or a turn (the reply is sent when it has ended)."""
        if not code.strip():
            return self._reply("ok")
        command = notebook.command_of(code)
        if command is not None:
            return self._command(command)
        if self._task is not None:
            return self._error("SESSION_BUSY", "the agent kernel is running another turn")
        await self._wait_for_gateway()
        parent = self.get_parent("shell")
        spec = self._notebook_spec()
        view = NotebookView(
            spec, lambda msg_type, content: self._publish(msg_type, content, parent)
        )
        sink = CommSink(self.channel, spec, parent, view=view)
        stdin = (self._parent_ident["shell"], parent) if allow_stdin else None
        try:
            outcome = await self._start(self._notebook_turn(spec, sink, code, stdin))
        except asyncio.CancelledError:
            return self._reply("abort")
        finally:
            self._task = None
        if store_history:
            self.history.add(self.execution_count, code, view.answer)
        if self.parked_gate is not None:
            text = parked_text(self.parked_gate)
            gate_id = str(self.parked_gate.get("gateId", ""))
            # a display with an id: the run's result replaces it once the gate is decided
            content = {
                "data": {"text/plain": text},
                # saved with the output: the lab finds the parked output of a written notebook
                "metadata": {"openfoal": {"parkedGate": gate_id}},
                "transient": {"display_id": parked_display_id(gate_id)},
            }
            self._publish("display_data", content, parent)
            return self._error(PARKED_ENAME, text)
        if outcome.status != "completed":
            err = outcome.error or {}
            return self._error(str(err.get("code")), str(err.get("message")))
        if view.answer:
            data = {"text/plain": view.answer, "text/markdown": view.answer}
            self._publish(
                "execute_result",
                {"data": data, "metadata": {}, "execution_count": self.execution_count},
                parent,
            )
        return self._reply("ok")

    async def _notebook_turn(
        self, spec: RunSpec, sink: CommSink, code: str, stdin: tuple[Any, dict[str, Any]] | None
    ) -> RunOutcome:
        sink.event(
            "agent.accepted",
            {
                "runtimeMode": spec.runtimeMode,
                "model": spec.model.model or "",
                "notebookPath": os.environ.get("JPY_SESSION_NAME"),
            },
        )
        assert sink.view is not None
        sink.view.draw()
        user = ChatMessage(role="user", content=code)
        self.notebook_transcript.append(user)
        sink.message(user)
        recorder = _Recorder(sink, self.notebook_transcript)
        # park only where someone can decide later: the gateway listens on this kernel
        attended = stdin is not None or not self.channel.attached.is_set()
        park_after = None if attended else self.park_after_s
        return await self._turn(spec, recorder, code, stdin=stdin, park_after=park_after)

    def _command(self, command: str) -> dict[str, Any]:
        if command == "/help":
            page = {
                "source": "page",
                "data": {"text/plain": notebook.help_text(self.tools)},
                "start": 0,
            }
            return self._reply("ok", payload=[page])
        if command == "/clear":
            self.notebook_transcript.clear()
            self.notebook_session_id = _new_id("nb")
            self.send_response(self.iopub_socket, "clear_output", {"wait": False})
            self.send_response(
                self.iopub_socket, "stream", {"name": "stdout", "text": "A new conversation.\n"}
            )
            return self._reply("ok")
        if command == "/tools":
            text = notebook.tools_text(self.tools)
            content = {"data": {"text/markdown": text, "text/plain": text}, "metadata": {}}
            self.send_response(self.iopub_socket, "display_data", {**content, "transient": {}})
            return self._reply("ok")
        known = ", ".join(notebook.COMMANDS)
        return self._error("UNKNOWN_COMMAND", f"{command} is not a command (try {known})")

    # -- one turn, from either side -----------------------------------------------------

    async def _turn(
        self,
        spec: RunSpec,
        sink: Any,
        code: str,
        stdin: tuple[Any, dict[str, Any]] | None,
        park_after: float | None = None,
        parent: dict[str, Any] | None = None,
    ) -> RunOutcome:
        """Run the loop; any failure before it starts still ends the run with agent.failed.

        A parked gate (``park_after``, see :mod:`.park`) ends the run with ``agent.completed``
        carrying ``parked``; the gate stays pending on the gateway."""
        self.parked_gate = None
        try:
            self._turn_context = (spec.runId, parent or {})
            executor = await self._executors.get(
                spec, functools.partial(self._ask_code_kernel, spec.sessionId)
            )

            async def gate(call: Any, reason: str) -> Any:
                return await self.gates.ask(
                    spec=spec,
                    sink=sink,
                    call=call,
                    reason=reason,
                    stdin=stdin,
                    park_after=park_after,
                )

            loop = build_loop(spec, sink, executor=executor, memory=spec.memory, gate=gate)
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
        try:
            return await loop.run(None if spec.resume else code)
        except GateParked as parked:
            self.parked_gate = parked.gate
            park = {"gateId": parked.gate.get("gateId"), "toolName": parked.gate.get("toolName")}
            sink.event(
                "agent.completed", {"status": "completed", "usage": loop.usage, "parked": park}
            )
            return RunOutcome(status="completed", usage=loop.usage)

    def _publish(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any]) -> None:
        assert self.session is not None  # set once the kernel app has started
        self.session.send(
            self.iopub_socket, msg_type, content, parent=parent, ident=self._topic(msg_type)
        )

    def _reply(self, status: str, **extra: Any) -> dict[str, Any]:
        reply: dict[str, Any] = {"status": status, "execution_count": self.execution_count}
        if status == "ok":
            reply.update(payload=extra.get("payload", []), user_expressions={})
        elif status == "error":
            reply.update(extra)
        return reply

    def _error(self, ename: str, evalue: str) -> dict[str, Any]:
        content = {"ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}
        self.send_response(self.iopub_socket, "error", content)
        return self._reply("error", **content)

    async def interrupt_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Cancel the running turn (the loop kills its tool processes on cancellation)."""
        task, loop = self._task, self._loop
        if task is not None and loop is not None:
            loop.call_soon_threadsafe(task.cancel)
        assert self.session is not None  # set once the kernel app has started
        self.session.send(stream, "interrupt_reply", {"status": "ok"}, parent, ident=ident)

    async def _wait_for_gateway(self) -> None:
        """Under an OpenFoal server, hold a notebook turn until the gateway's comm is open.

        A notebook's kernel can run its first cell before the gateway has subscribed to its
        iopub (events published earlier are lost on a PUB socket); the gateway opens its comm
        once it hears iopub, and comm messages are served while a cell runs. A kernel not
        started by such a server for a notebook (no policy file or no session name in its
        environment, e.g. nbclient from a shell) has no gateway to wait for, unless
        ``OPENFOAL_URL`` names a server: it asks that server to attach to it (:mod:`.attach`)
        and waits for its comm.
        """
        if self.channel.attached.is_set():
            return
        if os.environ.get(POLICY_FILE_ENV):  # started by an OpenFoal server
            if not os.environ.get("JPY_SESSION_NAME"):
                return
        else:  # papermill's or nbclient's own kernel: with OPENFOAL_URL, ask that server
            if self._attach_requested:
                return
            self._attach_requested = True
            if not await attach.request_attach(self.parent, self.log):
                return
        try:
            await asyncio.wait_for(self.channel.attached.wait(), GATEWAY_WAIT_S)
        except asyncio.TimeoutError:
            self.log.warning(
                "OpenFoal: no gateway listened within %s s; the turn goes on "
                "(the gateway may miss its first events)",
                GATEWAY_WAIT_S,
            )

    # -- the rest of the kernel protocol ------------------------------------------------

    async def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:  # type: ignore[override]
        """Complete ``/`` commands and workspace file names."""
        return notebook.complete(code, cursor_pos, os.getcwd())

    async def do_inspect(  # type: ignore[override]
        self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Any = ()
    ) -> dict[str, Any]:
        """Describe the tool named under the cursor."""
        return notebook.inspect(code, cursor_pos, self.tools)

    async def do_history(  # type: ignore[override]
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        """This kernel's cells and their answers."""
        history = self.history.query(
            hist_access_type,
            output=output,
            start=start,
            stop=stop,
            n=n,
            pattern=pattern,
            unique=unique,
        )
        return {"status": "ok", "history": history}

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

    def __init__(self, inner: CommSink, transcript: list[ChatMessage]) -> None:
        self.inner = inner
        self.transcript = transcript

    def event(self, name: str, payload: dict[str, Any]) -> None:
        self.inner.event(name, payload)

    def message(self, message: ChatMessage) -> None:
        self.transcript.append(message)
        self.inner.message(message)
