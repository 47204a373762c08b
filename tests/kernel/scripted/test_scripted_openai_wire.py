"""The scripted server speaks the chat-completions wire: chunks, tool calls, usage, errors."""

from __future__ import annotations

import json

import httpx

from openfoal_kernel.scripted import (
    ErrorStep,
    MalformedStep,
    Reply,
    ScriptedModelServer,
    ScriptUsage,
    TextStep,
    ToolCallStep,
)

USER = [{"role": "user", "content": "hello"}]


def _url(server: ScriptedModelServer) -> str:
    return server.openai_base_url + "/chat/completions"


def test_text_stream_has_role_chunk_deltas_finish_usage_and_done(server, post_stream):
    server.enqueue(Reply.of(TextStep(text="Hello, scripted world", chunk_size=5)))
    body = {"model": "gpt-x", "messages": USER, "stream": True}
    body["stream_options"] = {"include_usage": True}
    result = post_stream(_url(server), body)

    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    chunks = result.data()
    assert chunks[-1] == "[DONE]"
    first, *deltas, finish, usage_chunk, _ = chunks
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"]["role"] == "assistant"
    texts = [c["choices"][0]["delta"]["content"] for c in deltas]
    assert texts == ["Hello", ", scr", "ipted", " worl", "d"]
    assert all(c["usage"] is None and c["model"] == "gpt-x" for c in deltas)
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert len({c["id"] for c in chunks[:-1]}) == 1


def test_no_usage_chunk_unless_asked(server, post_stream):
    server.enqueue(Reply.of(TextStep(text="hi")))
    chunks = post_stream(_url(server), {"model": "m", "messages": USER, "stream": True}).data()
    assert chunks[-1] == "[DONE]"
    assert all("usage" not in c for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_parallel_tool_calls_stream_index_id_name_then_argument_pieces(server, post_stream):
    server.enqueue(
        Reply.of(
            ToolCallStep(id="call_a", name="bash.exec", arguments={"command": "ls -la"}),
            ToolCallStep(name="file.list", arguments={"path": "."}, chunk_size=3),
            usage=ScriptUsage(input_tokens=11, output_tokens=7),
        )
    )
    body = {"model": "m", "messages": USER, "stream": True}
    body["stream_options"] = {"include_usage": True}
    chunks = post_stream(_url(server), body).data()

    calls: dict[int, dict[str, str]] = {}
    pieces: dict[int, int] = {}
    for chunk in chunks[1:-3]:
        (part,) = chunk["choices"][0]["delta"]["tool_calls"]
        entry = calls.setdefault(part["index"], {"arguments": ""})
        if "id" in part:
            assert "id" not in entry, "the id comes once, on the first chunk of a call"
            entry["id"], entry["name"] = part["id"], part["function"]["name"]
        entry["arguments"] += part["function"]["arguments"]
        pieces[part["index"]] = pieces.get(part["index"], 0) + 1
    assert calls[0]["id"] == "call_a" and calls[0]["name"] == "bash_exec"
    assert calls[1]["id"].startswith("call_") and calls[1]["name"] == "file_list"
    assert json.loads(calls[0]["arguments"]) == {"command": "ls -la"}
    assert json.loads(calls[1]["arguments"]) == {"path": "."}
    assert pieces[1] > 3, "arguments are split over several chunks"
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-2]["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def test_non_streaming_request_gets_a_whole_completion(server):
    server.enqueue(
        Reply.of(TextStep(text="Let me look."), ToolCallStep(name="file.read", arguments={"p": 1}))
    )
    response = httpx.post(_url(server), json={"model": "m", "messages": USER}, trust_env=False)
    assert response.status_code == 200
    completion = response.json()
    assert completion["object"] == "chat.completion"
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me look."
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "file_read"
    assert json.loads(call["function"]["arguments"]) == {"p": 1}
    assert completion["usage"]["completion_tokens"] > 0


def test_error_step_sends_the_status_and_the_api_error_body(server, post_stream):
    server.enqueue(
        Reply.of(ErrorStep(status=429, headers={"retry-after": "3"})),
        Reply.of(ErrorStep(status=503)),
        Reply.of(ErrorStep(status=400, message="bad thing")),
    )
    body = {"model": "m", "messages": USER, "stream": True}
    limited = post_stream(_url(server), body)
    assert limited.status == 429 and limited.headers["retry-after"] == "3"
    assert limited.body["error"]["code"] == "rate_limit_exceeded"
    overloaded = post_stream(_url(server), body)
    assert overloaded.status == 503 and overloaded.body["error"]["type"] == "server_error"
    bad = post_stream(_url(server), body)
    assert bad.status == 400
    assert bad.body["error"] == {
        "message": "bad thing",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_error_after_output_is_an_error_frame_without_done(server, post_stream):
    server.enqueue(Reply.of(TextStep(text="partial"), ErrorStep(status=500)))
    result = post_stream(_url(server), {"model": "m", "messages": USER, "stream": True})
    assert result.status == 200
    chunks = result.data()
    assert chunks[-1]["error"]["type"] == "server_error"
    assert "[DONE]" not in chunks


def test_malformed_step_sends_a_broken_data_line(server):
    server.enqueue(Reply.of(TextStep(text="ok"), MalformedStep(data="{not json")))
    body = {"model": "m", "messages": USER, "stream": True}
    with httpx.stream("POST", _url(server), json=body, trust_env=False) as response:
        lines = [line for line in response.iter_lines() if line]
    assert "data: {not json" in lines
    assert lines[-1] == "data: [DONE]"


def test_requests_that_the_real_api_rejects_get_400(server):
    bad_bodies = [
        {"messages": USER},
        {"model": "m", "messages": []},
        {
            "model": "m",
            "messages": USER,
            "tools": [{"type": "function", "function": {"name": "bash.exec", "parameters": {}}}],
        },
        {"model": "m", "messages": [*USER, {"role": "tool", "tool_call_id": "x", "content": ""}]},
        {
            "model": "m",
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "a", "arguments": ""}}
                    ],
                },
                {"role": "user", "content": "no tool result in between"},
            ],
        },
    ]
    for body in bad_bodies:
        response = httpx.post(_url(server), json=body, trust_env=False)
        assert response.status_code == 400, body
        assert response.json()["error"]["type"] == "invalid_request_error"
    broken = httpx.post(_url(server), content=b"{nope", trust_env=False)
    assert broken.status_code == 400
    assert "parse the JSON body" in broken.json()["error"]["message"]
    assert server.pending == 0 and len(server.requests) == len(bad_bodies) + 1


def test_api_key_is_enforced_with_a_401(post_stream):
    with ScriptedModelServer(api_key="sk-right") as keyed:
        body = {"model": "m", "messages": USER, "stream": True}
        for headers in ({}, {"Authorization": "Bearer sk-wrong"}):
            denied = post_stream(_url(keyed), body, headers)
            assert denied.status == 401
            assert denied.body["error"]["code"] == "invalid_api_key"
        allowed = post_stream(_url(keyed), body, {"Authorization": "Bearer sk-right"})
        assert allowed.status == 200
        assert allowed.data()[-1] == "[DONE]"


def test_unknown_path_is_a_json_404(server):
    response = httpx.post(server.base_url + "/v1/completions", json={}, trust_env=False)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/completions)"
