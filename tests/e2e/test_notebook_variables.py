"""``notebook.variables`` and ``@mentions``: a bound chat sees summaries of notebook data.

A real python3 notebook kernel (started through the Jupyter REST API) holds a DataFrame, a
secret-named string, an object whose repr raises and one whose repr hangs; the agent runs
through the real gateway with ``notebookKernelId`` and the scripted model records its prompts.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep, api_tool_name
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio

SECRET = "sk-live-0123456789abcdefSECRETVALUE"
SETUP = f"""
import pandas, time
df = pandas.DataFrame({{"city": [f"city-row-{{i}}" for i in range(1000)],
                       "temp": [float(i) for i in range(1000)]}})
api_token = {SECRET!r}
class Boom:
    def __repr__(self):
        raise ValueError("no repr for you")
class Slow:
    def __repr__(self):
        time.sleep(600)
        return "never"
boom, slow = Boom(), Slow()
names = ["a", "b", "c"]
"""


async def _python_kernel(server: ServerProcess) -> str:
    headers = {"Authorization": f"token {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
        r = await http.post("api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def _execute(server: ServerProcess, kernel_id: str, code: str) -> None:
    """Run a cell in the notebook kernel as a notebook front end would; wait for its reply."""
    url = server.ws_url.replace("/openfoal/ws", f"/api/kernels/{kernel_id}/channels")
    headers = {"Authorization": f"token {server.token}"}
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "session": uuid.uuid4().hex,
            "username": "test",
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "buffers": [],
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
        },
    }
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps(request))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_reply":
                assert msg["content"]["status"] == "ok", msg["content"]
                return


def _tool_output(events: list[dict]) -> dict:
    done = [e["payload"] for e in events if e["event"] == "agent.tool_result"]
    assert len(done) == 1, [e["event"] for e in events]
    return done[0]


async def test_variables_tool_and_mentions(shared_server: ServerProcess, model) -> None:
    kernel_id = await _python_kernel(shared_server)
    await _execute(shared_server, kernel_id, SETUP)
    model.enqueue(
        Reply(steps=[ToolCallStep(name=api_tool_name("notebook.variables"), arguments={})]),
        Reply(steps=[TextStep(text="Listed.")]),
        Reply(steps=[TextStep(text="df has two columns.")]),
    )
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        _, events = await c.run("what is in my notebook?", notebookKernelId=kernel_id)
        names = [e["event"] for e in events]
        assert names[-1] == "agent.completed", events[-1]
        listing = model.requests[-1].body
        n_before = len(model.requests)
        _, events = await c.run(
            "describe @df and @api_token and @nosuch please", notebookKernelId=kernel_id
        )
        assert events[-1]["event"] == "agent.completed", events[-1]
    # the tool's listing, as the model got it
    text = "\n".join(str(m.get("content")) for m in listing["messages"] if m["role"] == "tool")
    assert "- df: pandas" in text and "DataFrame, shape 1000 x 2" in text
    assert "city: object" in text or "city: str" in text
    assert "temp: float64" in text
    assert "city-row-4" in text and "city-row-5" not in text  # 5 preview rows only
    assert SECRET not in text and "api_token: builtins.str (secret-like name" in text
    assert "repr raised ValueError: no repr for you" in text
    assert "repr timed out" in text  # the hanging repr was bounded
    assert "names: builtins.list, length 3" in text
    # the mention put the summary (not the data) into this turn's prompt
    assert len(model.requests) == n_before + 1
    prompt = model.requests[-1].body["messages"][-1]["content"]
    assert isinstance(prompt, str), prompt
    assert prompt.startswith("<notebook-variables>") and "</notebook-variables>" in prompt
    assert prompt.endswith("describe @df and @api_token and @nosuch please")
    assert "shape 1000 x 2" in prompt and "temp: float64" in prompt
    assert "city-row-4" in prompt and "city-row-5" not in prompt and "city-row-999" not in prompt
    assert SECRET not in prompt and "api_token: builtins.str (secret-like name" in prompt
    assert "not defined in the notebook: nosuch" in prompt
    assert "boom" not in prompt  # only what was mentioned
    # the stored message is what the user typed
    assert SECRET not in json.dumps(model.requests[-1].body)


async def test_unbound_chat_has_no_variables_tool(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="ok")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        _, events = await c.run("look at @df")
        assert events[-1]["event"] == "agent.completed"
    body = model.requests[-1].body
    offered = [t["function"]["name"] for t in body["tools"]]
    assert "python_exec" in offered and api_tool_name("notebook.variables") not in offered
    assert body["messages"][-1]["content"] == "look at @df"


async def test_a_denied_tool_leaves_mentions_unexpanded(
    shared_server: ServerProcess, model
) -> None:
    kernel_id = await _python_kernel(shared_server)
    await _execute(shared_server, kernel_id, "df_hidden = list(range(7))")
    model.enqueue(Reply(steps=[TextStep(text="first")]), Reply(steps=[TextStep(text="second")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted, events = await c.run("hello @df_hidden", notebookKernelId=kernel_id)
        assert events[-1]["event"] == "agent.completed"
        assert "length 7" in model.requests[-1].body["messages"][-1]["content"]
        sid = accepted["sessionId"]
        await c.request(
            "policy.update",
            {
                "idempotencyKey": uuid.uuid4().hex,
                "scopeKey": f"session:{sid}",
                "patch": {"tools": {"notebook.variables": "deny"}},
            },
        )
        _, events = await c.run("again @df_hidden", sessionId=sid, notebookKernelId=kernel_id)
        assert events[-1]["event"] == "agent.completed"
    prompt = model.requests[-1].body["messages"][-1]["content"]
    assert "does not allow notebook.variables" in prompt and "length 7" not in prompt
