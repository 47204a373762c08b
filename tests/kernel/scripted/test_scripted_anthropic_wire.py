"""The scripted server speaks the Anthropic messages wire: typed events, tool_use, errors."""

from __future__ import annotations

import json

import httpx

from openfoal_kernel.scripted import ErrorStep, Reply, ScriptedModelServer, TextStep, ToolCallStep

VERSION = {"anthropic-version": "2023-06-01"}
USER = [{"role": "user", "content": "hello"}]


def _url(server: ScriptedModelServer) -> str:
    return server.anthropic_base_url + "/v1/messages"


def _body(**extra: object) -> dict[str, object]:
    return {"model": "claude-x", "max_tokens": 64, "messages": USER, "stream": True, **extra}


def test_text_then_tool_use_streams_the_event_sequence(server, post_stream):
    server.enqueue(
        Reply.of(
            TextStep(text="Listing files", chunk_size=4),
            ToolCallStep(id="toolu_1", name="file.list", arguments={"path": "."}, chunk_size=4),
            ToolCallStep(name="bash.exec", arguments={"command": "pwd"}),
        )
    )
    result = post_stream(_url(server), _body(), VERSION)
    assert result.status == 200
    names = [name for name, _ in result.events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in result.events)

    start = result.events[0][1]["message"]
    assert start["model"] == "claude-x" and start["usage"]["input_tokens"] > 0
    blocks: dict[int, dict[str, object]] = {}
    for name, data in result.events:
        if name == "content_block_start":
            blocks[data["index"]] = {**data["content_block"], "text": "", "json": ""}
        elif name == "content_block_delta":
            delta, block = data["delta"], blocks[data["index"]]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                assert delta["type"] == "input_json_delta"
                block["json"] += delta["partial_json"]
    assert [b["type"] for b in blocks.values()] == ["text", "tool_use", "tool_use"]
    assert blocks[0]["text"] == "Listing files"
    assert blocks[1]["id"] == "toolu_1" and blocks[1]["name"] == "file_list"
    assert json.loads(str(blocks[1]["json"])) == {"path": "."}
    assert blocks[2]["name"] == "bash_exec" and str(blocks[2]["id"]).startswith("toolu_")
    stops = [data["index"] for name, data in result.events if name == "content_block_stop"]
    assert stops == [0, 1, 2]
    delta = result.events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] > 0


def test_end_turn_and_max_tokens_stop_reasons(server, post_stream):
    server.enqueue(
        Reply.of(TextStep(text="done")), Reply.of(TextStep(text="cut"), finish_reason="length")
    )
    first = post_stream(_url(server), _body(), VERSION)
    assert first.events[-2][1]["delta"]["stop_reason"] == "end_turn"
    second = post_stream(_url(server), _body(), VERSION)
    assert second.events[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_errors_use_the_api_shapes(server, post_stream):
    server.enqueue(Reply.of(ErrorStep(status=529)), Reply.of(ErrorStep(status=429)))
    overloaded = post_stream(_url(server), _body(), VERSION)
    assert overloaded.status == 529
    assert overloaded.body["type"] == "error"
    assert overloaded.body["error"]["type"] == "overloaded_error"
    assert overloaded.body["request_id"].startswith("req_")
    limited = post_stream(_url(server), _body(), VERSION)
    assert limited.status == 429 and limited.body["error"]["type"] == "rate_limit_error"


def test_error_mid_stream_is_an_error_event(server, post_stream):
    server.enqueue(Reply.of(TextStep(text="partial"), ErrorStep(status=529)))
    result = post_stream(_url(server), _body(), VERSION)
    name, data = result.events[-1]
    assert name == "error"
    assert data["type"] == "error"
    assert data["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert "message_stop" not in [n for n, _ in result.events]


def test_non_streaming_message(server):
    server.enqueue(Reply.of(TextStep(text="Hi"), ToolCallStep(name="python.exec", arguments={})))
    body = _body()
    body.pop("stream")
    message = httpx.post(_url(server), json=body, headers=VERSION, trust_env=False).json()
    assert message["type"] == "message" and message["stop_reason"] == "tool_use"
    assert message["content"][0] == {"type": "text", "text": "Hi"}
    assert message["content"][1]["name"] == "python_exec"
    assert message["content"][1]["input"] == {}


def test_requests_that_the_real_api_rejects_get_400(server):
    tool_use = {"type": "tool_use", "id": "t1", "name": "bash_exec", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": "ok"}
    cases = [
        ({}, _body(), "anthropic-version"),
        (VERSION, _body(max_tokens=None), "max_tokens"),
        (VERSION, _body(messages=[{"role": "system", "content": "s"}, *USER]), "system"),
        (VERSION, _body(messages=[*USER, *USER]), "alternate"),
        (VERSION, _body(messages=[{"role": "user", "content": ""}]), "non-empty"),
        (
            VERSION,
            _body(tools=[{"name": "bash.exec", "input_schema": {"type": "object"}}]),
            "tools.0.name",
        ),
        (
            VERSION,
            _body(messages=[*USER, {"role": "assistant", "content": [tool_use]}, *USER]),
            "without `tool_result`",
        ),
        (
            VERSION,
            _body(
                messages=[
                    *USER,
                    {"role": "assistant", "content": "x"},
                    {"role": "user", "content": [result]},
                ]
            ),
            "unexpected `tool_use_id`",
        ),
    ]
    for headers, body, expected in cases:
        response = httpx.post(_url(server), json=body, headers=headers, trust_env=False)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert expected in error["message"], error["message"]
    good = _body(
        messages=[
            *USER,
            {"role": "assistant", "content": [tool_use]},
            {"role": "user", "content": [result]},
        ]
    )
    accepted = httpx.post(_url(server), json=good, headers=VERSION, trust_env=False)
    assert accepted.status_code == 200, accepted.text


def test_api_key_is_enforced_with_a_401(post_stream):
    with ScriptedModelServer(api_key="secret") as keyed:
        denied = post_stream(_url(keyed), _body(), {**VERSION, "x-api-key": "wrong"})
        assert denied.status == 401
        assert denied.body["error"]["type"] == "authentication_error"
        allowed = post_stream(_url(keyed), _body(), {**VERSION, "x-api-key": "secret"})
        assert allowed.status == 200 and allowed.events[-1][0] == "message_stop"
