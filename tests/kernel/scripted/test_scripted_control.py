"""Scripting the server: the queue, the responder, the HTTP control API, a server in a process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import httpx
import pytest

from openfoal_kernel.scripted import (
    Reply,
    ScriptedModelServer,
    ScriptedRequest,
    TextStep,
    ToolCallStep,
)

USER = [{"role": "user", "content": "what is up"}]


def _complete(base_url: str, content: str = "what is up", **headers: str) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    return httpx.post(
        base_url + "/v1/chat/completions", json=body, headers=headers, trust_env=False
    )


def _text(response: httpx.Response) -> str:
    return response.json()["choices"][0]["message"]["content"]


def test_queue_is_fifo_then_responder_then_echo():
    seen: list[ScriptedRequest] = []

    def responder(request: ScriptedRequest) -> Reply:
        seen.append(request)
        return Reply.of(TextStep(text=f"responder saw {request.transcript()[-1].content}"))

    with ScriptedModelServer(responder) as server:
        server.enqueue(Reply.of(TextStep(text="first")), {"steps": [{"type": "text", "text": "2"}]})
        assert server.pending == 2
        assert _text(_complete(server.base_url)) == "first"
        assert _text(_complete(server.base_url)) == "2"
        assert _text(_complete(server.base_url, "ping")) == "responder saw ping"
        assert [r.body["messages"][0]["content"] for r in seen] == ["ping"]
    with ScriptedModelServer() as echo:
        assert _text(_complete(echo.base_url, "say it back")) == "echo: say it back"


def test_requests_are_recorded_with_api_path_headers_and_body(server):
    _complete(server.base_url, **{"X-Trace": "t-1"})
    (request,) = server.requests
    assert request.api == "openai"
    assert request.path == "/v1/chat/completions"
    assert request.headers["x-trace"] == "t-1"
    assert request.body["messages"] == USER
    server.reset()
    assert server.requests == [] and server.pending == 0


def test_a_failing_responder_is_a_500_naming_the_error():
    def broken(request: ScriptedRequest) -> Reply:
        raise KeyError("no script for this")

    with ScriptedModelServer(broken) as server:
        response = _complete(server.base_url)
    assert response.status_code == 500
    assert "scripted responder failed" in response.json()["error"]["message"]
    assert "no script for this" in response.json()["error"]["message"]


def test_http_control_endpoints(server):
    client = httpx.Client(base_url=server.base_url, trust_env=False)
    replies = [
        Reply.of(TextStep(text="over http")).model_dump(mode="json"),
        {"steps": [{"type": "tool_call", "name": "bash.exec", "arguments": {"command": "ls"}}]},
    ]
    queued = client.post("/_scripted/enqueue", json={"replies": replies})
    assert queued.status_code == 200 and queued.json() == {"queued": 2, "pending": 2}
    assert _text(_complete(server.base_url)) == "over http"
    second = _complete(server.base_url).json()["choices"][0]["message"]
    assert second["tool_calls"][0]["function"]["name"] == "bash_exec"

    recorded = client.get("/_scripted/requests").json()["requests"]
    assert [r["api"] for r in recorded] == ["openai", "openai"]
    assert recorded[0]["body"]["messages"] == USER
    assert client.post("/_scripted/reset").json() == {"reset": True}
    assert client.get("/_scripted/requests").json() == {"requests": []}
    client.close()


def test_bad_enqueue_bodies_get_a_400_with_details(server):
    client = httpx.Client(base_url=server.base_url, trust_env=False)
    cases = [
        b"not json",
        b'{"reply": []}',
        b'{"replies": [{"steps": [{"type": "teleport"}]}]}',
        b'{"replies": [{"steps": [{"type": "text", "text": "x", "chunk_size": 0}]}]}',
    ]
    for raw in cases:
        response = client.post("/_scripted/enqueue", content=raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["message"].startswith('body must be {"replies"')
    detailed = client.post("/_scripted/enqueue", content=cases[3]).json()["error"]
    assert detailed["details"][0]["loc"][-1] == "chunk_size"
    assert server.pending == 0
    client.close()


def test_control_endpoints_need_the_key_when_the_server_has_one():
    with ScriptedModelServer(api_key="k1") as server:
        client = httpx.Client(base_url=server.base_url, trust_env=False)
        assert client.get("/_scripted/requests").status_code == 401
        assert client.post("/_scripted/enqueue", json={"replies": []}).status_code == 401
        assert client.post("/_scripted/reset").status_code == 401
        authed = client.get("/_scripted/requests", headers={"Authorization": "Bearer k1"})
        assert authed.status_code == 200
        client.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """One stdout line of ``process``, failing the test if none comes in time."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not lines:
        process.kill()
        pytest.fail("the standalone server printed nothing")
    return lines[0].strip()


@pytest.mark.timeout(30)
def test_standalone_server_in_another_process_is_scripted_over_http():
    command = [sys.executable, "-m", "openfoal_kernel.scripted", "--port", "0", "--demo"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        label, openai_url = _read_line(process, 15).split()
        assert label == "openai_base_url" and openai_url.endswith("/v1")
        base_url = openai_url.removesuffix("/v1")
        client = httpx.Client(base_url=base_url, trust_env=False)
        demo = _text(_complete(base_url, "hello demo"))
        assert demo.startswith("[demo model] ")
        assert "hello demo" in demo
        client.post(
            "/_scripted/enqueue",
            json={"replies": [{"steps": [{"type": "text", "text": "scripted"}]}]},
        )
        assert _text(_complete(base_url)) == "scripted"
        recorded = client.get("/_scripted/requests").json()["requests"]
        assert len(recorded) == 2 and recorded[0]["body"]["messages"][0]["content"] == "hello demo"
        client.close()
    finally:
        process.terminate()
        assert process.wait(10) == 0
        assert process.stdout is not None
        process.stdout.close()


def test_parallel_clients_each_get_their_own_reply(server):
    server.enqueue(
        *[Reply.of(ToolCallStep(name="file.read", arguments={"n": i})) for i in range(8)]
    )
    results: list[int] = []

    def call() -> None:
        message = _complete(server.base_url).json()["choices"][0]["message"]
        results.append(json.loads(message["tool_calls"][0]["function"]["arguments"])["n"])

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == list(range(8))


def test_a_server_can_be_stopped_and_started_again():
    server = ScriptedModelServer(port=0)
    server.start()
    port = server.port
    with pytest.raises(RuntimeError, match="already started"):
        server.start()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        _complete(server.base_url)
    server.start()
    try:
        assert server.port == port
        assert _text(_complete(server.base_url, "again")) == "echo: again"
    finally:
        server.stop()
    server.stop()  # stopping twice is harmless
