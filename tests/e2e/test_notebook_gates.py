"""A gate raised by a notebook turn: answered inline in the notebook, or from the console."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


async def _notebook_kernel(server: ServerProcess, name: str) -> str:
    headers = {"Authorization": f"token {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        r = await http.post(
            "api/sessions",
            json={"path": name, "type": "notebook", "name": name, "kernel": {"name": "openfoal"}},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["kernel"]["id"])


def _msg(
    msg_type: str, content: dict, channel: str, session: str, parent: dict | None = None
) -> str:
    return json.dumps(
        {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "msg_type": msg_type,
                "session": session,
                "username": "test",
                "version": "5.3",
                "date": "",
            },
            "parent_header": parent or {},
            "metadata": {},
            "channel": channel,
            "buffers": [],
            "content": content,
        }
    )


async def _run_cell(server: ServerProcess, kernel_id: str, code: str, answer):
    """Execute a cell with stdin allowed; ``answer(prompt)`` returns the reply or None to wait."""
    url = server.ws_url.replace("/openfoal/ws", f"/api/kernels/{kernel_id}/channels")
    headers = {"Authorization": f"token {server.token}"}
    jsession = uuid.uuid4().hex
    prompts: list[str] = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        req = json.loads(
            _msg(
                "execute_request",
                {
                    "code": code,
                    "silent": False,
                    "store_history": True,
                    "user_expressions": {},
                    "allow_stdin": True,
                },
                "shell",
                jsession,
            )
        )
        await ws.send(json.dumps(req))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if msg["msg_type"] == "input_request":
                prompts.append(msg["content"]["prompt"])
                value = await answer(msg["content"]["prompt"])
                if value is not None:
                    await ws.send(
                        _msg("input_reply", {"value": value}, "stdin", jsession, msg["header"])
                    )
            if (
                msg["msg_type"] == "execute_reply"
                and msg["parent_header"].get("msg_id") == req["header"]["msg_id"]
            ):
                return msg["content"], prompts


async def test_notebook_user_answers_inline(shared_server: ServerProcess, model) -> None:
    kernel_id = await _notebook_kernel(shared_server, "inline.ipynb")
    model.enqueue(
        Reply(
            steps=[
                ToolCallStep(name="bash.exec", arguments={"command": "echo inline >> inline.txt"})
            ]
        ),
        Reply(steps=[TextStep(text="done")]),
    )

    async def yes(prompt: str) -> str:
        return "y"

    reply, prompts = await _run_cell(shared_server, kernel_id, "write a line", yes)
    assert reply["status"] == "ok"
    assert prompts and "bash.exec" in prompts[0] and "Approve?" in prompts[0]
    assert (shared_server.root / "inline.txt").read_text() == "inline\n"
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        for _ in range(50):
            gates = (await c.request("policy-gate.list", {}))["items"]
            mine = [
                g
                for g in gates
                if g["toolName"] == "bash.exec" and "inline.txt" in g["args"]["command"]
            ]
            if mine and mine[0]["status"] != "pending":
                break
            await asyncio.sleep(0.1)
    assert mine[0]["status"] == "approved" and mine[0]["resolvedBy"]


async def test_console_answers_a_notebook_gate(shared_server: ServerProcess, model) -> None:
    kernel_id = await _notebook_kernel(shared_server, "console.ipynb")
    model.enqueue(
        Reply(
            steps=[
                ToolCallStep(name="bash.exec", arguments={"command": "echo console >> console.txt"})
            ]
        ),
        Reply(steps=[TextStep(text="done")]),
    )
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:

        async def from_console(prompt: str) -> None:
            for _ in range(100):
                pending = (await c.request("policy-gate.list", {"status": "pending"}))["items"]
                mine = [g for g in pending if "console.txt" in g["args"].get("command", "")]
                if mine:
                    await c.request(
                        "policy-gate.resolve", {"gateId": mine[0]["gateId"], "decision": "approve"}
                    )
                    return None
                await asyncio.sleep(0.1)
            raise AssertionError("the notebook's gate never reached the console")

        reply, _ = await _run_cell(shared_server, kernel_id, "write another line", from_console)
    assert reply["status"] == "ok"
    assert (shared_server.root / "console.txt").read_text() == "console\n"


async def test_notebook_turns_follow_the_policy_in_force(
    shared_server: ServerProcess, model
) -> None:
    """A policy change reaches notebook turns too: a denied tool never runs from a cell."""
    policy = shared_server.api("policy.get").json()["payload"]["policy"]
    r = shared_server.api(
        "policy.update",
        {
            "patch": {"tools": {"bash.exec": "deny"}},
            "expectedVersion": policy["version"],
            "idempotencyKey": uuid.uuid4().hex,
        },
    )
    assert r.status_code == 200, r.text
    try:
        kernel_id = await _notebook_kernel(shared_server, "denied.ipynb")
        model.enqueue(
            Reply(
                steps=[
                    ToolCallStep(name="bash.exec", arguments={"command": "echo no >> denied.txt"})
                ]
            ),
            Reply(steps=[TextStep(text="could not")]),
        )

        async def never(prompt: str) -> str:
            raise AssertionError(f"a denied call asked for approval: {prompt}")

        reply, prompts = await _run_cell(shared_server, kernel_id, "try to write", never)
        assert reply["status"] == "ok" and prompts == []
        assert not (shared_server.root / "denied.txt").exists()
        # the model was told why: the tool result it got back names POLICY_DENIED
        tool_results = [m for m in model.requests[-1].body["messages"] if m.get("role") == "tool"]
        assert tool_results and "POLICY_DENIED" in str(tool_results[-1]["content"])
    finally:
        policy = shared_server.api("policy.get").json()["payload"]["policy"]
        shared_server.api(
            "policy.update",
            {
                "patch": {"tools": {}},
                "expectedVersion": policy["version"],
                "idempotencyKey": uuid.uuid4().hex,
            },
        )
