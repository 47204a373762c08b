"""OpenAIProvider against the scripted server over real HTTP: streaming, tool calls, failures."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import pytest

from openfoal_kernel.protocol.transcript import ChatMessage, ToolCall
from openfoal_kernel.providers import (
    Finish,
    ModelError,
    OpenAIProvider,
    StreamEvent,
    TextDelta,
    ToolCallReady,
    ToolSpec,
    Usage,
)
from openfoal_kernel.scripted import (
    DelayStep,
    DisconnectStep,
    ErrorStep,
    HangStep,
    MalformedStep,
    Reply,
    ScriptedModelServer,
    ScriptUsage,
    TextStep,
    ToolCallStep,
)

HELLO = [ChatMessage(role="user", content="hello")]


def _provider(server: ScriptedModelServer, timeout_s: float = 5.0) -> OpenAIProvider:
    return OpenAIProvider("gpt-test", server.api_key, server.openai_base_url, timeout_s)


async def _collect(
    provider: OpenAIProvider,
    messages: Sequence[ChatMessage] = HELLO,
    tools: Sequence[ToolSpec] = (),
    **kw: int,
) -> list[StreamEvent]:
    try:
        return [event async for event in provider.stream(messages, tools, **kw)]
    finally:
        await provider.aclose()


@pytest.mark.asyncio
async def test_text_streams_as_deltas_with_usage_and_finish(server):
    server.enqueue(
        Reply.of(
            TextStep(text="The answer is 42.", chunk_size=4),
            usage=ScriptUsage(input_tokens=12, output_tokens=5),
        )
    )
    events = await _collect(_provider(server))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["The ", "answ", "er i", "s 42", "."]
    assert events[-2:] == [
        Usage(input_tokens=12, output_tokens=5),
        Finish(reason="stop", model="openai:gpt-test"),
    ]


@pytest.mark.asyncio
async def test_parallel_tool_calls_are_assembled_from_split_arguments(server, tools):
    server.enqueue(
        Reply.of(
            TextStep(text="Running three things."),
            ToolCallStep(
                id="call_1", name="bash.exec", arguments={"x": "ls -la /tmp"}, chunk_size=2
            ),
            ToolCallStep(id="call_2", name="file.list", arguments={"x": "."}, chunk_size=3),
            ToolCallStep(name="python.exec", arguments={"x": "print(1)"}, chunk_size=1),
        )
    )
    events = await _collect(_provider(server), tools=tools)
    calls = [e.call for e in events if isinstance(e, ToolCallReady)]
    assert [(c.id, c.name, c.arguments) for c in calls[:2]] == [
        ("call_1", "bash.exec", {"x": "ls -la /tmp"}),
        ("call_2", "file.list", {"x": "."}),
    ]
    assert calls[2].name == "python.exec" and calls[2].arguments == {"x": "print(1)"}
    assert calls[2].id.startswith("call_")
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"
    # The deltas came before the calls, and the calls only once their arguments were whole.
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolCallReady") > kinds.index("TextDelta")


@pytest.mark.asyncio
async def test_request_carries_messages_tools_and_key_in_the_api_shape(server, tools):
    transcript = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="list files"),
        ChatMessage(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="c1", name="file.list", arguments={"x": "."})],
        ),
        ChatMessage(role="tool", tool_call_id="c1", content="a.txt"),
    ]
    await _collect(_provider(server), transcript, tools, max_output_tokens=99)
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {server.api_key}"
    body = request.body
    assert body["model"] == "gpt-test" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 99
    assert [t["function"]["name"] for t in body["tools"]] == [
        "bash_exec",
        "file_list",
        "python_exec",
    ]
    assert body["tools"][0]["function"]["description"] == "Run a shell command."
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "list files"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "file_list", "arguments": json.dumps({"x": "."})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
    ]


@pytest.mark.asyncio
async def test_a_tool_the_request_did_not_offer_keeps_the_name_the_model_sent(server, tools):
    server.enqueue(Reply.of(ToolCallStep(name="made_up", arguments={})))
    events = await _collect(_provider(server), tools=tools)
    (call,) = [e.call for e in events if isinstance(e, ToolCallReady)]
    assert call.name == "made_up"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (503, True), (400, False), (404, False)]
)
async def test_http_errors_map_to_model_errors(server, status, retryable):
    server.enqueue(Reply.of(ErrorStep(status=status, message=f"scripted {status}")))
    with pytest.raises(ModelError) as caught:
        await _collect(_provider(server))
    error = caught.value
    assert error.status == status and error.retryable is retryable
    assert error.provider == "openai:gpt-test"
    assert f"HTTP {status}: scripted {status}" in error.message


@pytest.mark.asyncio
async def test_retry_after_is_passed_on(server):
    server.enqueue(Reply.of(ErrorStep(status=429, headers={"retry-after": "7"})))
    with pytest.raises(ModelError) as caught:
        await _collect(_provider(server))
    assert caught.value.details["retry_after_s"] == 7.0
    assert caught.value.details["type"] == "requests"


@pytest.mark.asyncio
async def test_wrong_key_is_a_401_that_is_not_retried(server):
    provider = OpenAIProvider("gpt-test", "sk-wrong", server.openai_base_url, 5)
    with pytest.raises(ModelError) as caught:
        await _collect(provider)
    assert caught.value.status == 401 and not caught.value.retryable


@pytest.mark.asyncio
async def test_a_hang_mid_stream_times_out(server):
    server.enqueue(Reply.of(TextStep(text="thinking"), HangStep()))
    started = time.perf_counter()
    with pytest.raises(ModelError) as caught:
        await _collect(_provider(server, timeout_s=0.3))
    assert time.perf_counter() - started < 3
    assert caught.value.retryable
    assert "no answer within 0.3s" in caught.value.message


@pytest.mark.asyncio
async def test_slow_headers_time_out(server):
    server.enqueue(Reply.of(DelayStep(seconds=3), TextStep(text="too late")))
    with pytest.raises(ModelError) as caught:
        await _collect(_provider(server, timeout_s=0.2))
    assert caught.value.retryable and "ReadTimeout" in caught.value.message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply.of(TextStep(text="ok"), MalformedStep(data="{broken")), "malformed event data"),
        (Reply.of(TextStep(text="ok"), DisconnectStep()), "connection failed"),
        (Reply.of(TextStep(text="ok"), finish=False), "ended before finishing"),
        (Reply.of(TextStep(text="ok"), ErrorStep(status=500)), "error in stream"),
        (Reply.of(ToolCallStep(name="bash.exec", raw_arguments='{"x": ')), "not valid JSON"),
    ],
)
async def test_broken_streams_are_retryable_model_errors(server, reply, expected):
    server.enqueue(reply)
    with pytest.raises(ModelError) as caught:
        await _collect(_provider(server))
    assert caught.value.retryable
    assert expected in caught.value.message


@pytest.mark.asyncio
async def test_nothing_listening_is_a_retryable_connection_error():
    with ScriptedModelServer() as gone:
        url = gone.openai_base_url
    with pytest.raises(ModelError) as caught:
        await _collect(OpenAIProvider("m", None, url, 2))
    assert caught.value.retryable and "ConnectError" in caught.value.message


@pytest.mark.asyncio
async def test_a_wrong_base_url_is_a_404_not_retried(server):
    provider = OpenAIProvider("gpt-test", server.api_key, server.base_url + "/v2", 5)
    with pytest.raises(ModelError) as caught:
        await _collect(provider)
    assert caught.value.status == 404 and not caught.value.retryable
    assert "Invalid URL (POST /v2/chat/completions)" in caught.value.message


@pytest.mark.asyncio
async def test_a_caller_that_stops_early_closes_the_stream(server):
    server.enqueue(Reply.of(TextStep(text="x" * 64, chunk_size=1, chunk_delay_s=0.01)))
    provider = _provider(server)
    stream = provider.stream(HELLO)
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert first == TextDelta(text="x")
    server.enqueue(Reply.of(TextStep(text="next")))
    events = await _collect(provider)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["next"]


def test_the_public_api_gets_max_completion_tokens_compatible_servers_max_tokens():
    public = OpenAIProvider("gpt-4.1-mini", "sk", "https://api.openai.com/v1/", 5)
    local = OpenAIProvider("llama3", None, "http://127.0.0.1:11434/v1", 5)
    assert public.request_body(HELLO, max_output_tokens=10)["max_completion_tokens"] == 10
    assert local.request_body(HELLO, max_output_tokens=10)["max_tokens"] == 10
    assert "max_tokens" not in local.request_body(HELLO)
