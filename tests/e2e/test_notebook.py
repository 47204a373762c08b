"""A notebook on the OpenFoal kernel is a conversation: each cell is a turn."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import nbformat
import papermill
import pytest
import websockets
from nbclient import NotebookClient

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.protocol.kernel_wire import RUN_MIME
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep, api_tool_name
from openfoal_testing.plugin import ServerProcess, scripted_env


def _turns_notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nb.metadata["kernelspec"] = {
        "name": "openfoal",
        "display_name": "OpenFoal",
        "language": "markdown",
    }
    return nb


def _answer(cell: nbformat.NotebookNode) -> str:
    """The cell's result (the agent's answer), as a plain front end shows it."""
    results = [o for o in cell.outputs if o["output_type"] == "execute_result"]
    assert len(results) == 1, cell.outputs
    return str(results[0]["data"]["text/plain"])


def _run_view(cell: nbformat.NotebookNode) -> dict:
    """The cell's view of its turn (its display, updated in place while the turn ran)."""
    views = [
        o for o in cell.outputs if o["output_type"] == "display_data" and RUN_MIME in o["data"]
    ]
    assert len(views) == 1, cell.outputs
    assert views[0]["data"]["text/markdown"].startswith("**OpenFoal**")
    return dict(views[0]["data"][RUN_MIME])


def test_nbclient_executes_a_notebook(model, monkeypatch, tmp_path) -> None:
    for key, value in scripted_env(model).items():
        monkeypatch.setenv(key, value)
    model.enqueue(
        Reply(steps=[TextStep(text="Hello from the agent.")]),
        Reply(steps=[TextStep(text="You said hello before.")]),
    )
    nb = _turns_notebook("hello", "what did I say?")
    NotebookClient(
        nb, kernel_name="openfoal", timeout=60, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert _answer(nb.cells[0]) == "Hello from the agent."
    assert _answer(nb.cells[1]) == "You said hello before."
    assert _run_view(nb.cells[0])["status"] == "completed"
    # the second turn carried the first as context
    contents = [m.get("content") for m in model.requests[-1].body["messages"]]
    assert "hello" in contents and "Hello from the agent." in contents
    path = tmp_path / "turns.ipynb"
    nbformat.write(nb, path)
    nbformat.validate(nbformat.read(path, as_version=4))


def test_papermill_runs_a_notebook_of_turns(model, monkeypatch, tmp_path) -> None:
    for key, value in scripted_env(model).items():
        monkeypatch.setenv(key, value)
    (tmp_path / "notes.txt").write_text("the notes\n")
    model.enqueue(
        Reply(
            steps=[ToolCallStep(name=api_tool_name("file.read"), arguments={"path": "notes.txt"})]
        ),
        Reply(steps=[TextStep(text="The notes say: the notes.")]),
        Reply(steps=[TextStep(text="Nothing else.")]),
    )
    source, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(_turns_notebook("read notes.txt", "anything else?"), source)
    papermill.execute_notebook(str(source), str(out), kernel_name="openfoal", cwd=str(tmp_path))
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    assert _answer(nb.cells[0]) == "The notes say: the notes."
    assert _answer(nb.cells[1]) == "Nothing else."
    view = _run_view(nb.cells[0])
    assert [t["toolName"] for t in view["tools"]] == ["file.read"]
    assert view["tools"][0]["status"] == "success"
    stdout = [o["text"] for o in nb.cells[0].outputs if o["output_type"] == "stream"]
    assert stdout == ["the notes\n"]  # the tool's output


def test_notebook_failure_is_a_cell_error(model, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPENFOAL_MODEL", "")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("hello")]
    client = NotebookClient(
        nb,
        kernel_name="openfoal",
        timeout=60,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [o for o in nb.cells[0].outputs if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "MODEL_UNAVAILABLE"


@pytest.mark.asyncio
async def test_notebook_turns_are_stored_as_a_session(shared_server: ServerProcess, model) -> None:
    headers = {"Authorization": f"token {shared_server.token}"}
    async with httpx.AsyncClient(base_url=shared_server.url, headers=headers) as http:
        r = await http.post(
            "api/sessions",
            json={
                "path": "analysis.ipynb",
                "type": "notebook",
                "name": "analysis.ipynb",
                "kernel": {"name": "openfoal"},
            },
        )
        assert r.status_code == 201, r.text
        kernel_id = r.json()["kernel"]["id"]
    model.enqueue(Reply(steps=[TextStep(text="Notebook answer.")]))
    url = shared_server.ws_url.replace("/openfoal/ws", f"/api/kernels/{kernel_id}/channels")
    jsession = uuid.uuid4().hex
    async with websockets.connect(url, additional_headers=headers) as ws:
        msg_id = uuid.uuid4().hex
        await ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": jsession,
                        "username": "test",
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": "summarise my data",
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                }
            )
        )
        answer = ""
        replied = idle = False
        # shell and iopub are separate channels: the output is complete once iopub says idle
        while not (replied and idle):
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_result":
                answer = msg["content"]["data"]["text/plain"]
            if msg["msg_type"] == "execute_reply":
                assert msg["content"]["status"] == "ok"
                replied = True
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
    assert answer == "Notebook answer."
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        for _ in range(100):  # the gateway ingests the kernel's iopub on its own schedule
            listed = await c.request("sessions.list", {"query": "analysis.ipynb"})
            if listed["items"] and listed["items"][0]["status"] == "idle":
                break
            await asyncio.sleep(0.1)
        assert len(listed["items"]) == 1
        session = listed["items"][0]
        assert "notebook" in session["sessionKey"]
        got = await c.request(
            "sessions.get", {"sessionId": session["id"], "includeMessages": True, "afterSeq": 0}
        )
    assert [m["content"] for m in got["messages"]] == ["summarise my data", "Notebook answer."]
    names = [e["event"] for e in got["events"]]
    assert "agent.accepted" in names and names.count("agent.completed") == 1
