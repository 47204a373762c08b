"""An unattended notebook run (nbclient, no stdin) parks its gated call instead of hanging.

The kernel is a notebook kernel of the real server (so the gateway listens on it); nbclient
attaches to it by its connection file and runs the notebook as papermill or a scheduler
would. The parked cell ends with ``GATE_PARKED``; a decision over the protocol continues the
run on the gateway from the stored transcript.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import nbformat
import papermill
import pytest
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from jupyter_core.utils import ensure_event_loop
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from papermill.exceptions import PapermillExecutionError

from openfoal_kernel.cli import PARKED_EXIT, chat
from openfoal_kernel.client import GatewayClient
from openfoal_kernel.policy.published import POLICY_FILE_ENV
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess, free_port, scripted_env

pytestmark = pytest.mark.asyncio
_GATE_ID = re.compile(r"gate_[0-9a-f]{20}")


class _ServerKernel(AsyncKernelManager):
    """A kernel the server started: nbclient connects to it, never starts or stops it."""

    @property
    def has_kernel(self) -> bool:
        return True

    async def _async_is_alive(self) -> bool:
        return True

    async def _async_interrupt_kernel(self) -> None:
        return None

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        return None

    def client(self, **kwargs: Any) -> Any:
        kc = super().client(**kwargs)
        self._clients = [*getattr(self, "_clients", []), kc]
        return kc

    def close(self) -> None:
        """Stop the clients the runner made (it does not, the kernel not being its own)."""
        for kc in getattr(self, "_clients", []):
            kc.stop_channels()
        self.context.destroy(linger=0)


async def _notebook_kernel(server: ServerProcess, name: str) -> str:
    headers = {"Authorization": f"token {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        r = await http.post(
            "api/sessions",
            json={"path": name, "type": "notebook", "name": name, "kernel": {"name": "openfoal"}},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["kernel"]["id"])


def _connection_file(kernel_id: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # as the server runs
    path = Path(jupyter_runtime_dir()) / f"kernel-{kernel_id}.json"
    assert path.exists(), f"no connection file {path}"
    return path


async def _run_unattended(
    server: ServerProcess, name: str, cells: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, str]:
    """Run a notebook of these cells under nbclient; return it and the parked error text."""
    nb, error = await _execute(server, name, cells, monkeypatch)
    assert isinstance(error, CellExecutionError), "the notebook ran through: nothing parked"
    return nb, str(error)


async def _execute(
    server: ServerProcess, name: str, cells: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Exception | None]:
    """Run a notebook of these cells under nbclient; return it and the error it ended with."""
    kernel_id = await _notebook_kernel(server, name)
    km = _ServerKernel(connection_file=str(_connection_file(kernel_id, monkeypatch)))
    km.load_connection_file()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "openfoal", "display_name": "OpenFoal"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    client = NotebookClient(nb, km=km, kernel_name="openfoal", timeout=90)
    try:
        await asyncio.wait_for(client.async_execute(), 120)
    except CellExecutionError as exc:
        return nb, exc
    finally:
        km.close()
    return nb, None


async def _pending_gate(c: GatewayClient, gate_id: str) -> dict:
    """The parked gate once the gateway has queued it (its events arrive on the comm)."""
    for _ in range(300):
        pending = (await c.request("policy-gate.list", {"status": "pending"}))["items"]
        mine = [g for g in pending if g["gateId"] == gate_id]
        if mine:
            return dict(mine[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"gate {gate_id} never reached the Approvals queue")


async def _session_messages(c: GatewayClient, session_id: str, until: Any) -> list[dict]:
    for _ in range(900):  # a fresh gateway kernel may have to start
        stored = await c.request("sessions.get", {"sessionId": session_id, "includeMessages": True})
        if until(stored["messages"]):
            return list(stored["messages"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"the session never showed the result: {stored['messages']}")


async def test_unattended_cell_parks_and_an_approval_continues(
    shared_server: ServerProcess, model, monkeypatch
) -> None:
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo p >> park.txt"})]),
        Reply(steps=[TextStep(text="wrote it after approval")]),
    )
    nb, error = await _run_unattended(
        shared_server, "park.ipynb", ["write a line", "never reached"], monkeypatch
    )
    assert "GATE_PARKED" in error and "Waiting for approval" in error
    gate_id = _GATE_ID.search(error).group(0)  # type: ignore[union-attr]
    outputs = nb.cells[0].outputs
    shown = " ".join(o.get("text", "") + o.get("evalue", "") for o in outputs)
    assert gate_id in shown and f"?openfoal-gate={gate_id}" in shown
    assert not nb.cells[1].outputs  # the run stopped at the parked cell
    assert not (shared_server.root / "park.txt").exists()
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        gate = await _pending_gate(c, gate_id)
        res = await c.request("policy-gate.resolve", {"gateId": gate_id, "decision": "approve"})
        assert res["continuedRunId"]
        messages = await _session_messages(
            c,
            gate["sessionId"],
            lambda ms: any("wrote it after approval" in (m.get("content") or "") for m in ms),
        )
        tool = [m for m in messages if m["role"] == "tool"]
        assert tool and tool[-1]["tool_call_id"] == gate["toolCallId"]
        audit = await c.request("audit.query", {"sessionId": gate["sessionId"]})
        actions = [e["action"] for e in audit["items"]]
        assert "gate.requested" in actions and "gate.approved" in actions
    assert (shared_server.root / "park.txt").read_text() == "p\n"


async def test_parked_gate_rejected_records_gate_rejected(
    shared_server: ServerProcess, model, monkeypatch
) -> None:
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo r >> rej.txt"})]),
        Reply(steps=[TextStep(text="understood, not written")]),
    )
    _, error = await _run_unattended(shared_server, "reject.ipynb", ["write"], monkeypatch)
    gate_id = _GATE_ID.search(error).group(0)  # type: ignore[union-attr]
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        await _pending_gate(c, gate_id)
        res = await c.request("policy-gate.resolve", {"gateId": gate_id, "decision": "reject"})
        gate = res["gate"]
        assert gate["status"] == "rejected"
        messages = await _session_messages(
            c,
            gate["sessionId"],
            lambda ms: any("not written" in (m.get("content") or "") for m in ms),
        )
        tool = [m for m in messages if m["role"] == "tool"]
        assert tool and "GATE_REJECTED" in tool[-1]["content"]
        assert tool[-1]["tool_call_id"] == gate["toolCallId"]
        audit = await c.request("audit.query", {"sessionId": gate["sessionId"]})
        assert "gate.rejected" in [e["action"] for e in audit["items"]]
    assert not (shared_server.root / "rej.txt").exists()


def _papermill_run(connection_file: Path, src: Path, out: Path) -> Exception:
    """papermill's own run against the server's kernel; return the error it raised.

    It runs in a thread (papermill is synchronous) on an event loop of its own, closed here."""
    loop = ensure_event_loop()  # the loop papermill's synchronous calls will run on
    try:
        return _papermill_in_loop(connection_file, src, out)
    finally:
        loop.close()


def _papermill_in_loop(connection_file: Path, src: Path, out: Path) -> Exception:
    km = _ServerKernel(connection_file=str(connection_file))
    km.load_connection_file()
    try:
        papermill.execute_notebook(
            str(src), str(out), kernel_name="openfoal", km=km, progress_bar=False
        )
    except Exception as exc:
        return exc
    finally:
        km.close()
    raise AssertionError("papermill finished cleanly although a gate was parked")


async def test_papermill_fails_on_a_parked_gate(
    shared_server: ServerProcess, model, monkeypatch, tmp_path
) -> None:
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo m >> pm.txt"})]),
        Reply(steps=[TextStep(text="papermill run continued")]),
    )
    kernel_id = await _notebook_kernel(shared_server, "pm.ipynb")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "openfoal", "display_name": "OpenFoal", "language": ""}
    nb.cells = [nbformat.v4.new_code_cell("write with papermill")]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    conn = _connection_file(kernel_id, monkeypatch)
    error = await asyncio.to_thread(_papermill_run, conn, src, out)
    assert isinstance(error, PapermillExecutionError), repr(error)
    assert error.ename == "GATE_PARKED"
    gate_id = _GATE_ID.search(error.evalue).group(0)  # type: ignore[union-attr]
    assert gate_id in out.read_text()  # the written notebook shows the parked gate
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        gate = await _pending_gate(c, gate_id)
        await c.request("policy-gate.resolve", {"gateId": gate_id, "decision": "approve"})
        await _session_messages(
            c,
            gate["sessionId"],
            lambda ms: any("papermill run continued" in (m.get("content") or "") for m in ms),
        )
    assert (shared_server.root / "pm.txt").read_text() == "m\n"


async def test_the_papermill_command_with_its_own_kernel_parks(
    shared_server: ServerProcess, model, scripted_model, tmp_path
) -> None:
    """``papermill in.ipynb out.ipynb -k openfoal`` starts a kernel of its own; with
    OPENFOAL_URL set, that kernel asks the server to attach to it (kernels.attach), so its
    gated call parks in the server's queue and papermill exits non-zero."""
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo o >> own.txt"})]),
        Reply(steps=[TextStep(text="own kernel run continued")]),
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "openfoal", "display_name": "OpenFoal", "language": ""}
    nb.cells = [nbformat.v4.new_code_cell("write from papermill's own kernel")]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    env = {
        **os.environ,
        **scripted_env(scripted_model),
        "OPENFOAL_URL": shared_server.url,
        "JUPYTER_TOKEN": shared_server.token,
    }
    env.pop(POLICY_FILE_ENV, None)
    papermill_cli = Path(sys.executable).parent / "papermill"
    done = await asyncio.to_thread(
        subprocess.run,
        [str(papermill_cli), str(src), str(out), "-k", "openfoal", "--cwd", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "GATE_PARKED" in done.stderr, done.stderr[-3000:]
    gate_id = _GATE_ID.search(done.stderr).group(0)  # type: ignore[union-attr]
    assert gate_id in out.read_text()  # the written notebook shows the parked gate
    assert not (tmp_path / "own.txt").exists() and not (shared_server.root / "own.txt").exists()
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        gate = await _pending_gate(c, gate_id)
        await c.request("policy-gate.resolve", {"gateId": gate_id, "decision": "approve"})
        await _session_messages(
            c,
            gate["sessionId"],
            lambda ms: any("own kernel run continued" in (m.get("content") or "") for m in ms),
        )
    # the continued run ran the call once, in the server's workspace
    assert (shared_server.root / "own.txt").read_text() == "o\n"


async def test_kernels_attach_refuses_a_kernel_elsewhere_and_bad_connection_info(
    shared_server: ServerProcess,
) -> None:
    connection = {
        "transport": "tcp",
        "ip": "10.1.2.3",
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "key": "k",
    }
    params = {"idempotencyKey": "attach-far", "connection": connection}
    far = shared_server.api("kernels.attach", params)
    assert far.status_code == 400, far.text
    assert far.json()["error"]["code"] == "INVALID_REQUEST" and "loopback" in far.text
    bad = shared_server.api("kernels.attach", {"idempotencyKey": "attach-bad", "connection": {}})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_REQUEST"
    # nothing listens there: a clear error once the probe times out, nothing kept
    silent = {
        **connection,
        "ip": "127.0.0.1",
        "shell_port": free_port(),
        "control_port": free_port(),
    }
    gone = shared_server.api(
        "kernels.attach", {"idempotencyKey": "attach-silent", "connection": silent}, timeout=60
    )
    assert gone.status_code != 200 and gone.json()["error"]["code"] == "RUNTIME_LOST", gone.text


async def test_park_after_waits_for_a_decision_from_elsewhere(
    server_factory, model, monkeypatch
) -> None:
    """With OPENFOAL_PARK_AFTER_S=N an unattended gate waits N s: an approval in time runs it."""
    server = server_factory(env={"OPENFOAL_PARK_AFTER_S": "120"})
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo w >> wait.txt"})]),
        Reply(steps=[TextStep(text="approved in time")]),
    )
    async with GatewayClient(server.ws_url, token=server.token) as c:

        async def approve_when_queued() -> None:
            for _ in range(600):
                pending = (await c.request("policy-gate.list", {"status": "pending"}))["items"]
                mine = [g for g in pending if "wait.txt" in g["args"].get("command", "")]
                if mine:
                    await c.request(
                        "policy-gate.resolve", {"gateId": mine[0]["gateId"], "decision": "approve"}
                    )
                    return
                await asyncio.sleep(0.1)
            raise AssertionError("the waiting gate never reached the queue")

        approver = asyncio.ensure_future(approve_when_queued())
        nb, error = await _execute(server, "wait.ipynb", ["write while waiting"], monkeypatch)
        await approver
    assert error is None, str(error)
    shown = " ".join(str(o) for o in nb.cells[0].outputs)
    assert "approved in time" in shown and "GATE_PARKED" not in shown
    assert (server.root / "wait.txt").read_text() == "w\n"


async def test_chat_no_wait_leaves_the_gate_pending(shared_server: ServerProcess, model, capsys):
    """``openfoal chat --no-wait`` prints the gate and exits 3; an approval runs the call."""
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo c >> cli.txt"})]),
        Reply(steps=[TextStep(text="cli call approved")]),
    )
    code = await chat(shared_server.url, shared_server.token, "write", None, no_wait=True)
    assert code == PARKED_EXIT
    err = capsys.readouterr().err
    assert "waiting for approval: bash.exec" in err
    gate_id = _GATE_ID.search(err).group(0)  # type: ignore[union-attr]
    assert f"/lab?openfoal-gate={gate_id}" in err
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        gate = await _pending_gate(c, gate_id)
        await c.request("policy-gate.resolve", {"gateId": gate_id, "decision": "approve"})
        await _session_messages(
            c,
            gate["sessionId"],
            lambda ms: any("cli call approved" in (m.get("content") or "") for m in ms),
        )
    assert (shared_server.root / "cli.txt").read_text() == "c\n"


async def _iopub_until(kc: Any, match: Any, timeout: float = 180.0) -> dict:
    """Read the kernel's iopub until a message ``match`` accepts; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            msg = await kc.get_iopub_msg(timeout=1)
        except Exception:  # queue.Empty: nothing yet
            continue
        if match(msg):
            return dict(msg)
    raise AssertionError("the awaited iopub message never came")


async def test_approval_updates_the_parked_cell_display(
    shared_server: ServerProcess, model, monkeypatch
) -> None:
    """The parked output is a display with an id; when the continued run ends, the kernel that
    ran the cell sends ``update_display_data`` for that id with the result."""
    model.enqueue(
        Reply(
            steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo d; echo d >> d.txt"})]
        ),
        Reply(steps=[TextStep(text="the display shows this reply")]),
    )
    kernel_id = await _notebook_kernel(shared_server, "display.ipynb")
    km = _ServerKernel(connection_file=str(_connection_file(kernel_id, monkeypatch)))
    km.load_connection_file()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        msg_id = kc.execute("write it", allow_stdin=False)
        parent = msg_id

        def parked(msg: dict) -> bool:
            return (
                msg["msg_type"] == "display_data"
                and msg["parent_header"].get("msg_id") == parent
                and str(msg["content"].get("transient", {}).get("display_id")).startswith(
                    "openfoal-gate-"
                )
            )

        shown = await _iopub_until(kc, parked)
        display_id = shown["content"]["transient"]["display_id"]
        text = shown["content"]["data"]["text/plain"]
        gate_id = _GATE_ID.search(text).group(0)  # type: ignore[union-attr]
        assert display_id == f"openfoal-gate-{gate_id}"
        assert shown["content"]["metadata"]["openfoal"]["parkedGate"] == gate_id
        assert f"?openfoal-gate={gate_id}" in text
        reply = await kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:  # a late kernel_info_reply of
            reply = await kc.get_shell_msg(timeout=60)  # wait_for_ready's retries, on a busy box
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "GATE_PARKED"
        async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
            await _pending_gate(c, gate_id)
            await c.request("policy-gate.resolve", {"gateId": gate_id, "decision": "approve"})

            def updated(msg: dict) -> bool:
                return (
                    msg["msg_type"] == "update_display_data"
                    and msg["content"].get("transient", {}).get("display_id") == display_id
                )

            update = await _iopub_until(kc, updated)
        result = update["content"]["data"]["text/plain"]
        assert f"Gate {gate_id} was approved" in result and "completed" in result
        assert "the display shows this reply" in result
        assert "d" in result.split("Tool output:")[1]
        meta = update["content"]["metadata"]["openfoal"]
        assert meta["gateId"] == gate_id and meta["status"] == "completed"
        assert meta["decision"] == "approved"
    finally:
        kc.stop_channels()
        km.close()
    assert (shared_server.root / "d.txt").read_text() == "d\n"
