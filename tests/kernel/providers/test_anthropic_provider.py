"""AnthropicProvider against the scripted server over real HTTP: events, tool use, failures."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from openfoal_kernel.protocol.transcript import ChatMessage, ToolCall
from openfoal_kernel.providers import (
    AnthropicProvider,
    Finish,
    ModelError,
    StreamEvent,
    TextDelta,
    ToolCallReady,
    ToolSpec,
    Usage,
)
from openfoal_kernel.scripted import (
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


def _provider(server: ScriptedModelServer, timeout_s: float = 5.0) -> AnthropicProvider:
    return AnthropicProvider("claude-test", server.api_key, server.anthropic_base_url, timeout_s)


async def _collect(
    provider: AnthropicProvider,
    messages: Sequence[ChatMessage] = HELLO,
    tools: Sequence[ToolSpec] = (),
    **kw: int,
) -> list[StreamEvent]:
    try:
        return [event async for event in provider.stream(messages, tools, **kw)]
    finally:
        await provider.aclose()


@pytest.mark.asyncio
async def test_text_streams_with_usage_and_end_turn(server):
    server.enqueue(
        Reply.of(
            TextStep(text="Bonjour tout le monde", chunk_size=7),
            usage=ScriptUsage(input_tokens=30, output_tokens=6),
        )
    )
    events = await _collect(_provider(server))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Bonjour", " tout l", "e monde"]
    assert events[-2:] == [
        Usage(input_tokens=30, output_tokens=6),
        Finish(reason="stop", model="anthropic:claude-test"),
    ]


@pytest.mark.asyncio
async def test_parallel_tool_use_blocks_are_assembled(server, tools):
    server.enqueue(
        Reply.of(
            TextStep(text="Two calls."),
            ToolCallStep(id="toolu_a", name="bash.exec", arguments={"x": "du -sh ."}, chunk_size=2),
            ToolCallStep(id="toolu_b", name="python.exec", arguments={"x": "1+1"}, chunk_size=1),
        )
    )
    events = await _collect(_provider(server), tools=tools)
    calls = [e.call for e in events if isinstance(e, ToolCallReady)]
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("toolu_a", "bash.exec", {"x": "du -sh ."}),
        ("toolu_b", "python.exec", {"x": "1+1"}),
    ]
    assert events[-1] == Finish(reason="tool_calls", model="anthropic:claude-test")


@pytest.mark.asyncio
async def test_length_stop_reason(server):
    server.enqueue(Reply.of(TextStep(text="cut"), finish_reason="length"))
    events = await _collect(_provider(server))
    assert events[-1] == Finish(reason="length", model="anthropic:claude-test")


@pytest.mark.asyncio
async def test_request_uses_system_tool_results_and_merged_turns(server, tools):
    transcript = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="system", kind="compaction", content="Earlier: the user likes tables."),
        ChatMessage(role="user", content="look around"),
        ChatMessage(
            role="assistant",
            content="Checking.",
            tool_calls=[
                ToolCall(id="t1", name="file.list", arguments={"x": "."}),
                ToolCall(id="t2", name="bash.exec", arguments={"x": "pwd"}),
            ],
        ),
        ChatMessage(role="tool", tool_call_id="t1", content="a.csv"),
        ChatMessage(role="tool", tool_call_id="t2", content=""),
        ChatMessage(role="user", content="and now?"),
    ]
    events = await _collect(_provider(server), transcript, tools)
    assert isinstance(events[-1], Finish), "the scripted server accepted the request"
    (request,) = server.requests
    assert request.headers["x-api-key"] == server.api_key
    assert request.headers["anthropic-version"] == "2023-06-01"
    body = request.body
    assert body["system"] == "Be brief.\n\nEarlier: the user likes tables."
    assert body["max_tokens"] == 4096 and body["stream"] is True
    assert [t["name"] for t in body["tools"]] == ["bash_exec", "file_list", "python_exec"]
    assert body["tools"][1]["input_schema"] == tools[1].parameters
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "look around"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "file_list", "input": {"x": "."}},
                {"type": "tool_use", "id": "t2", "name": "bash_exec", "input": {"x": "pwd"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "a.csv"},
                {"type": "tool_result", "tool_use_id": "t2"},
                {"type": "text", "text": "and now?"},
            ],
        },
    ]


@pytest.mark.asyncio
async def test_consecutive_user_messages_are_merged_and_max_tokens_passed(server):
    transcript = [ChatMessage(role="user", content="one"), ChatMessage(role="user", content="two")]
    events = await _collect(_provider(server), transcript, max_output_tokens=50)
    assert isinstance(events[-1], Finish), "the scripted server accepted the request"
    body = server.requests[0].body
    assert body["max_tokens"] == 50
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        }
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "retryable", "kind"),
    [
        (529, True, "overloaded_error"),
        (429, True, "rate_limit_error"),
        (500, True, "api_error"),
        (400, False, "invalid_request_error"),
        (403, False, "permission_error"),
    ],
)
async def test_http_errors_map_to_model_errors(server, status, retryable, kind):
    server.enqueue(Reply.of(ErrorStep(status=status)))
    with pytest.raises(ModelError) as caught:
        await _collect(_provider(server))
    assert caught.value.status == status and caught.value.retryable is retryable
    assert caught.value.details["type"] == kind


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("reply", "expected", "retryable"),
    [
        (Reply.of(TextStep(text="a"), ErrorStep(status=529)), "overloaded_error", True),
        (Reply.of(TextStep(text="a"), ErrorStep(status=400)), "invalid_request_error", False),
        (Reply.of(TextStep(text="a"), MalformedStep(data="{nope")), "malformed event data", True),
        (Reply.of(TextStep(text="a"), DisconnectStep()), "connection failed", True),
        (Reply.of(TextStep(text="a"), finish=False), "before message_stop", True),
        (Reply.of(ToolCallStep(name="bash.exec", raw_arguments="[1")), "not valid JSON", True),
    ],
)
async def test_broken_streams_are_model_errors(server, reply, expected, retryable):
    server.enqueue(reply)
    with pytest.raises(ModelError) as caught:
        await _collect(_provider(server))
    assert expected in caught.value.message
    assert caught.value.retryable is retryable


@pytest.mark.asyncio
async def test_a_hang_times_out(server):
    server.enqueue(Reply.of(TextStep(text="a"), HangStep()))
    with pytest.raises(ModelError) as caught:
        await _collect(_provider(server, timeout_s=0.3))
    assert caught.value.retryable and "no answer within 0.3s" in caught.value.message
