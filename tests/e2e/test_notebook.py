"""A notebook on the OpenFoal kernel is a conversation: each cell is a turn."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import nbformat
import pytest
import websockets
from nbclient import NotebookClient

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep
from openfoal_server_ext.pytest_plugin import ServerProcess, scripted_env


def test_nbclient_executes_a_notebook(model, monkeypatch, tmp_path) -> None:
    for key, value in scripted_env(model).items():
        monkeypatch.setenv(key, value)
    model.enqueue(
        Reply(steps=[TextStep(text="Hello from the agent.")]),
        Reply(steps=[TextStep(text="You said hello before.")]),
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("hello"), nbformat.v4.new_code_cell("what did I say?")]
    nb.metadata["kernelspec"] = {
        "name": "openfoal",
        "display_name": "OpenFoal",
        "language": "markdown",
    }
    NotebookClient(
        nb, kernel_name="openfoal", timeout=60, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    first = "".join(o.get("text", "") for o in nb.cells[0].outputs if o["output_type"] == "stream")
    second = "".join(o.get("text", "") for o in nb.cells[1].outputs if o["output_type"] == "stream")
    assert "Hello from the agent." in first
    assert "You said hello before." in second
    # the second turn carried the first as context
    contents = [m.get("content") for m in model.requests[-1].body["messages"]]
    assert "hello" in contents and "Hello from the agent." in contents


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
        streamed = ""
        replied = idle = False
        # shell and iopub are separate channels: the output is complete once iopub says idle
        while not (replied and idle):
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                streamed += msg["content"]["text"]
            if msg["msg_type"] == "execute_reply":
                assert msg["content"]["status"] == "ok"
                replied = True
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
    assert "Notebook answer." in streamed
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
