"""The agent kernel against the standard kernel conformance suite (jupyter_kernel_test).

Every test of the suite runs, with samples: a cell is a chat turn against the scripted model
(a tool's output is the cell's stdout, a failed tool's its stderr, the answer its
``execute_result``, the run's view a ``display_data``), or a ``/command``. Each message the
suite sees is checked against the spec; one more test drives every channel the gateway and a
notebook use (the comm, a gate answered on stdin and on the comm, an interrupt) and fails on
any message type the spec does not name.
"""

from __future__ import annotations

import os
import queue
import tempfile
import time
import unittest
import uuid
from pathlib import Path
from typing import Any, ClassVar

import jupyter_kernel_test
from spec_messages import check_spec_message

from openfoal_kernel.protocol.kernel_wire import COMM_TARGET, RUN_MIME, RunSpec
from openfoal_kernel.providers.config import settings_from_env
from openfoal_kernel.scripted import (
    Reply,
    ScriptedModelServer,
    ScriptedRequest,
    TextStep,
    ToolCallStep,
    api_tool_name,
)
from openfoal_testing.plugin import scripted_env

_READS = {"say hello": "hello.txt", "read the missing file": "missing.txt"}
_ANSWERS = {"what is six times seven?": "42", "/tools?": "tools"}
TIMEOUT = 60.0


def respond(request: ScriptedRequest) -> Reply:
    """The scripted model of these tests: a reply chosen by the last user message."""
    transcript = request.transcript()
    users = [m.content for m in transcript if m.role == "user"]
    last = str(users[-1] if users else "")
    if last in _READS and transcript[-1].role != "tool":
        args = {"path": _READS[last]}
        return Reply.of(ToolCallStep(name=api_tool_name("file.read"), arguments=args))
    if last.startswith("run the shell") and transcript[-1].role != "tool":
        return Reply.of(
            ToolCallStep(name=api_tool_name("bash.exec"), arguments={"command": "true"})
        )
    return Reply.of(TextStep(text=_ANSWERS.get(last, f"echo: {last}")))


class _ScriptedKernel(jupyter_kernel_test.KernelTests):
    """Starts the kernel in a workspace of its own, pointed at the scripted model."""

    __test__ = False  # a base: the suite runs in its subclass
    kernel_name = "openfoal"
    model: ClassVar[ScriptedModelServer]
    workspace: ClassVar[tempfile.TemporaryDirectory[str]]
    saved_env: ClassVar[dict[str, str | None]]

    @classmethod
    def setUpClass(cls) -> None:
        cls.model = ScriptedModelServer(responder=respond).__enter__()
        cls.workspace = tempfile.TemporaryDirectory()
        Path(cls.workspace.name, "hello.txt").write_text("hello, world\n")
        Path(cls.workspace.name, "data.csv").write_text("a,b\n1,2\n")
        # a cell without stdin waits for the gateway's decision on the comm (the suite answers
        # it there) instead of parking at once, as an unattended run does
        env = {**scripted_env(cls.model), "OPENFOAL_PARK_AFTER_S": "-1"}
        cls.saved_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        cwd = os.getcwd()
        os.chdir(cls.workspace.name)  # the kernel's workspace is its working directory
        try:
            super().setUpClass()
        finally:
            os.chdir(cwd)

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        for key, value in cls.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        cls.model.__exit__(None, None, None)
        cls.workspace.cleanup()


class OpenFoalKernelTests(_ScriptedKernel):
    """Conformance of the ``openfoal`` kernel spec, every suite test with a sample."""

    __test__ = True

    language_name = "markdown"
    file_extension = ".md"

    code_hello_world = "say hello"  # file.read of hello.txt: the tool's output is stdout
    code_stderr = "read the missing file"  # the failed tool's output is stderr
    code_execute_result = [
        {"code": "what is six times seven?", "result": "42"},
        {"code": "what is six times seven?", "mime": "text/markdown", "result": "42"},
        {"code": "hi there", "result": "echo: hi there"},
    ]
    code_display_data = [
        {"code": "hi there", "mime": RUN_MIME},
        {"code": "hi there", "mime": "text/markdown"},
        {"code": "/tools", "mime": "text/markdown"},
    ]
    code_generate_error = "/no-such-command"
    code_page_something = "/help"
    code_clear_output = "/clear"
    completion_samples = [
        {"text": "/he", "matches": {"/help"}},
        {"text": "/", "matches": {"/help", "/clear", "/tools"}},
        {"text": "what is in da", "matches": {"data.csv"}},
    ]
    code_inspect_sample = "file.read"
    complete_code_samples = ["what is in data.csv?", "summarise\nthis"]
    incomplete_code_samples: list[str] = []
    invalid_code_samples: list[str] = []
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "what is *"

    def _collect(self, until: Any, timeout: float = TIMEOUT) -> list[tuple[str, dict[str, Any]]]:
        """Read every channel until ``until(seen)``; each message is checked against the spec."""
        seen: list[tuple[str, dict[str, Any]]] = []
        channels = {
            "iopub": self.kc.iopub_channel,
            "shell": self.kc.shell_channel,
            "control": self.kc.control_channel,
            "stdin": self.kc.stdin_channel,
        }
        deadline = time.monotonic() + timeout
        while not until(seen):
            self.assertLess(
                time.monotonic(),
                deadline,
                f"gave up waiting; saw {[m['msg_type'] for _, m in seen]}",
            )
            for name, channel in channels.items():
                try:
                    msg = channel.get_msg(timeout=0.02)
                except queue.Empty:
                    continue
                check_spec_message(msg)  # fails on a message type the spec does not name
                seen.append((name, msg))
                if name == "stdin":
                    self.kc.input("y")
        return seen

    def test_every_channel_speaks_the_spec(self) -> None:
        """A gateway turn on the comm, notebook gates (stdin and comm), an interrupt."""
        self.flush_channels()
        comm_id = uuid.uuid4().hex
        session = self.kc.session
        shell = self.kc.shell_channel
        shell.send(
            session.msg("comm_open", {"comm_id": comm_id, "target_name": COMM_TARGET, "data": {}})
        )
        spec = RunSpec(
            runId="run_gw", sessionId="sess_gw", traceId="t" * 32, model=settings_from_env()
        )
        run = {"type": "run", "spec": spec.model_dump(mode="json"), "code": "hi there"}
        shell.send(session.msg("comm_msg", {"comm_id": comm_id, "data": run}))

        def comm_data(seen: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
            return [
                m["content"]["data"]
                for ch, m in seen
                if ch == "iopub" and m["msg_type"] == "comm_msg"
            ]

        seen = self._collect(lambda s: any(d.get("kind") == "ended" for d in comm_data(s)))
        data = comm_data(seen)
        events = [d["event"] for d in data if d["kind"] == "event"]
        self.assertEqual(events[-1], "agent.completed")
        self.assertEqual(
            data[-1],
            {
                "kind": "ended",
                "runId": "run_gw",
                "sessionId": "sess_gw",
                "traceId": "t" * 32,
                "status": "ok",
            },
        )

        # bad input on the comm: a structured error, and the kernel goes on
        shell.send(
            session.msg("comm_msg", {"comm_id": comm_id, "data": {"type": "run", "spec": {}}})
        )
        seen = self._collect(lambda s: any(d.get("kind") == "ended" for d in comm_data(s)))
        refused = next(d for d in comm_data(seen) if d.get("kind") == "ended")
        self.assertEqual(
            (refused["status"], refused["error"]["code"]), ("error", "INVALID_REQUEST")
        )

        # a notebook cell whose tool call is gated: answered inline on stdin
        msg_id = self.kc.execute("run the shell", allow_stdin=True)
        seen = self._collect(lambda s: _replied(s, msg_id))
        self.assertIn("stdin", [ch for ch, _ in seen])
        gates = [d for d in comm_data(seen) if d.get("event") == "policy-gate.resolved"]
        self.assertEqual(gates[0]["payload"]["gate"]["resolvedBy"], "notebook")

        # the same, answered by the gateway on the comm while the cell waits
        msg_id = self.kc.execute("run the shell", allow_stdin=False)
        seen = self._collect(
            lambda s: any(d.get("event") == "policy-gate.requested" for d in comm_data(s))
        )
        gate = next(d for d in comm_data(seen) if d.get("event") == "policy-gate.requested")
        answer = {
            "type": "gate_reply",
            "gateId": gate["payload"]["gate"]["gateId"],
            "decision": "reject",
            "resolvedBy": "console",
        }
        shell.send(session.msg("comm_msg", {"comm_id": comm_id, "data": answer}))
        seen = self._collect(lambda s: _replied(s, msg_id))
        resolved = [d for d in comm_data(seen) if d.get("event") == "policy-gate.resolved"]
        self.assertEqual(resolved[0]["payload"]["gate"]["status"], "rejected")

        # an interrupt while a gateway turn waits at a gate
        spec = RunSpec(
            runId="run_int", sessionId="sess_gw", traceId="u" * 32, model=settings_from_env()
        )
        run = {"type": "run", "spec": spec.model_dump(mode="json"), "code": "run the shell please"}
        shell.send(session.msg("comm_msg", {"comm_id": comm_id, "data": run}))
        self._collect(
            lambda s: any(d.get("event") == "policy-gate.requested" for d in comm_data(s))
        )
        self.kc.control_channel.send(session.msg("interrupt_request", {}))
        seen = self._collect(lambda s: any(d.get("kind") == "ended" for d in comm_data(s)))
        self.assertEqual(
            next(d for d in comm_data(seen) if d.get("kind") == "ended")["status"], "abort"
        )
        self.assertEqual(self._comms(), {comm_id: {"target_name": COMM_TARGET}})
        # closed, the comm is gone (and the suite's own tests see no comm traffic)
        shell.send(session.msg("comm_close", {"comm_id": comm_id, "data": {}}))
        self.assertEqual(self._comms(), {})

    def _comms(self) -> dict[str, Any]:
        msg_id = self.kc.comm_info()
        seen = self._collect(
            lambda s: any(
                m["parent_header"].get("msg_id") == msg_id
                for _, m in s
                if m["msg_type"] == "comm_info_reply"
            )
        )
        reply = [m for _, m in seen if m["msg_type"] == "comm_info_reply"][-1]
        return dict(reply["content"]["comms"])


def _replied(seen: list[tuple[str, dict[str, Any]]], msg_id: str) -> bool:
    """The cell's execute_reply has come and iopub went idle after it."""
    replied = any(
        m["msg_type"] == "execute_reply" and m["parent_header"].get("msg_id") == msg_id
        for _, m in seen
    )
    idle = any(
        ch == "iopub"
        and m["msg_type"] == "status"
        and m["content"]["execution_state"] == "idle"
        and m["parent_header"].get("msg_id") == msg_id
        for ch, m in seen
    )
    return replied and idle


class OpenFoalIopubWelcomeTests(jupyter_kernel_test.IopubWelcomeTests):
    """The kernel greets a new iopub subscriber (ipykernel's XPUB welcome)."""

    kernel_name = "openfoal"
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
