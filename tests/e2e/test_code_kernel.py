"""python.exec runs in a code kernel of the session's own, started by the gateway."""

from __future__ import annotations

import httpx
import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def python_allowed(shared_server: ServerProcess):
    """Local python.exec is high risk (gated by default); these tests open it explicitly."""
    policy = shared_server.api("policy.get").json()["payload"]["policy"]
    r = shared_server.api(
        "policy.update",
        {
            "patch": {"tools": {"python.exec": "allow"}},
            "expectedVersion": policy["version"],
            "idempotencyKey": f"open-{policy['version']}",
        },
    )
    assert r.status_code == 200, r.text
    yield
    policy = shared_server.api("policy.get").json()["payload"]["policy"]
    shared_server.api(
        "policy.update",
        {
            "patch": {"tools": {}},
            "expectedVersion": policy["version"],
            "idempotencyKey": f"close-{policy['version']}",
        },
    )


def _py(code: str) -> Reply:
    return Reply(steps=[ToolCallStep(name="python.exec", arguments={"code": code})])


async def _result(c: GatewayClient, text: str, **params) -> dict:
    _, events = await c.run(text, **params)
    return next(e for e in events if e["event"] == "agent.tool_result")["payload"]


async def test_variables_persist_across_turns_and_agent_kernel_restarts(
    shared_server: ServerProcess, model
) -> None:
    headers = {"Authorization": f"token {shared_server.token}"}
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        model.enqueue(
            _py("import os\nx = 41\npid = os.getpid()"), Reply(steps=[TextStep(text="set")])
        )
        accepted, _ = await c.run("set x")
        sid = accepted["sessionId"]
        model.enqueue(_py("x + 1"), Reply(steps=[TextStep(text="ok")]))
        assert "42" in (await _result(c, "x+1", sessionId=sid))["output"]
        # the code ran in a plain ipykernel, not in the agent kernel
        kernels = httpx.get(shared_server.url + "api/kernels", headers=headers).json()
        names = {k["name"] for k in kernels}
        assert {"openfoal", "python3"} <= names
        # restart the session's agent kernel: the code kernel keeps its variables
        orchestrated = [k for k in kernels if k["name"] == "openfoal"]
        for k in orchestrated:
            r = httpx.post(
                shared_server.url + f"api/kernels/{k['id']}/restart", headers=headers, timeout=60
            )
            assert r.status_code == 200
        model.enqueue(_py("x * 2"), Reply(steps=[TextStep(text="ok")]))
        result = await _result(c, "x*2", sessionId=sid)
    assert result["status"] == "success" and "82" in result["output"]


async def test_rich_output_reaches_the_client(shared_server: ServerProcess, model) -> None:
    code = "from IPython.display import HTML\nHTML('<table><tr><td>1</td></tr></table>')"
    model.enqueue(_py(code), Reply(steps=[TextStep(text="a table")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        result = await _result(c, "show a table")
    assert result["status"] == "success"
    assert any("text/html" in d["data"] for d in result["displays"])
