"""python.exec runs in a code kernel of the session's own, started by the gateway.

The gateway starts it at the session's first python.exec (the agent kernel asks on its
comm), so a session that only chats never pays for a second kernel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess, module_server, scripted_env

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def poolless_server(
    tmp_path_factory: pytest.TempPathFactory, scripted_model: ScriptedModelServer
) -> Iterator[ServerProcess]:
    """No pre-started kernels: every code kernel on it was started for a session."""
    with module_server(
        tmp_path_factory, scripted_model, "poolless", ["--KernelOrchestrator.pool_size=0"]
    ) as server:
        _allow_python(server)
        yield server


def _allow_python(server: ServerProcess) -> None:
    policy = server.api("policy.get").json()["payload"]["policy"]
    r = server.api(
        "policy.update",
        {
            "patch": {"tools": {"python.exec": "allow"}},
            "expectedVersion": policy["version"],
            "idempotencyKey": f"open-{policy['version']}",
        },
    )
    assert r.status_code == 200, r.text


@pytest.fixture(autouse=True)
def python_allowed(shared_server: ServerProcess):
    """Local python.exec is high risk (gated by default); these tests open it explicitly."""
    _allow_python(shared_server)
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


def _code_kernels(server: ServerProcess) -> list[str]:
    headers = {"Authorization": f"token {server.token}"}
    kernels = httpx.get(server.url + "api/kernels", headers=headers, timeout=30).json()
    return sorted(k["id"] for k in kernels if k["name"] == "python3")


async def test_the_code_kernel_starts_at_the_first_python_call(
    poolless_server: ServerProcess, model
) -> None:
    async with GatewayClient(poolless_server.ws_url, token=poolless_server.token) as c:
        model.enqueue(Reply(steps=[TextStep(text="hello")]))
        accepted, events = await c.run("only chat")
        assert events[-1]["event"] == "agent.completed"
        sid = accepted["sessionId"]
        assert _code_kernels(poolless_server) == []  # chatting started no code kernel
        model.enqueue(_py("y = 20"), Reply(steps=[TextStep(text="set")]))
        assert (await _result(c, "set y", sessionId=sid))["status"] == "success"
        started = _code_kernels(poolless_server)
        assert len(started) == 1
        model.enqueue(_py("y + 1"), Reply(steps=[TextStep(text="ok")]))
        result = await _result(c, "y+1", sessionId=sid)
        assert result["status"] == "success" and "21" in result["output"]
        assert _code_kernels(poolless_server) == started  # the same kernel, its variables kept
        # another session that runs Python gets a code kernel of its own
        model.enqueue(_py("'y' in dir()"), Reply(steps=[TextStep(text="ok")]))
        other = await _result(c, "is y there?")
        assert other["status"] == "success" and "False" in other["output"]
        assert len(_code_kernels(poolless_server)) == 2


async def test_a_code_kernel_that_cannot_start_is_a_tool_error(
    tmp_path: Path, scripted_model: ScriptedModelServer, model
) -> None:
    server = ServerProcess(
        tmp_path / "root",
        env=scripted_env(scripted_model),
        args=["--KernelOrchestrator.pool_size=0", "--KernelOrchestrator.code_kernel_name=nosuch"],
    ).start()
    try:
        _allow_python(server)
        model.enqueue(_py("1 + 1"), Reply(steps=[TextStep(text="it failed")]))
        async with GatewayClient(server.ws_url, token=server.token) as c:
            _, events = await c.run("add")
        result = next(e for e in events if e["event"] == "agent.tool_result")["payload"]
        assert result["status"] == "failed", result
        assert "could not start the session's code kernel" in str(result), result
        assert events[-1]["event"] == "agent.completed"  # the run itself went on
    finally:
        server.stop()
