"""Replies are typed, validated and JSON-serialisable, so they can be sent over HTTP."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from openfoal_kernel.scripted import (
    BurstStep,
    DelayStep,
    DisconnectStep,
    ErrorStep,
    HangStep,
    MalformedStep,
    Reply,
    ScriptedRequest,
    ScriptUsage,
    TextStep,
    ToolCallStep,
    api_tool_name,
)


def test_every_step_kind_round_trips_through_json():
    reply = Reply.of(
        TextStep(text="hi", chunk_size=1, chunk_delay_s=0.01),
        ToolCallStep(name="bash.exec", arguments={"command": "ls", "n": [1, 2]}),
        ErrorStep(status=503, headers={"retry-after": "1"}),
        DelayStep(seconds=0.1),
        MalformedStep(),
        HangStep(seconds=2),
        DisconnectStep(),
        BurstStep(count=10, text="ab"),
        usage=ScriptUsage(input_tokens=3, output_tokens=4),
        finish_reason="length",
    )
    wire = json.dumps(reply.model_dump(mode="json"))
    again = Reply.model_validate(json.loads(wire))
    assert again == reply
    assert [step.type for step in again.steps] == [
        "text",
        "tool_call",
        "error",
        "delay",
        "malformed",
        "hang",
        "disconnect",
        "burst",
    ]


def test_finish_reason_defaults_from_the_steps():
    assert Reply.of(TextStep(text="x")).resolved_finish_reason() == "stop"
    assert Reply.of(ToolCallStep(name="file.list")).resolved_finish_reason() == "tool_calls"
    assert Reply.of(TextStep(text="x"), finish_reason="length").resolved_finish_reason() == "length"


@pytest.mark.parametrize(
    "bad",
    [
        {"steps": [{"type": "nope"}]},
        {"steps": [{"type": "text"}]},
        {"steps": [{"type": "text", "text": "x", "chunk_size": 0}]},
        {"steps": [{"type": "error", "status": 200}]},
        {"steps": [{"type": "burst", "count": 0}]},
        {"steps": [{"type": "delay", "seconds": -1}]},
        {"steps": [], "surprise": True},
    ],
)
def test_invalid_replies_are_refused(bad):
    with pytest.raises(ValidationError):
        Reply.model_validate(bad)


def test_api_tool_names_have_no_dots():
    assert api_tool_name("bash.exec") == "bash_exec"
    assert api_tool_name("memory.append") == "memory_append"


def test_requests_read_back_as_a_neutral_transcript():
    openai = ScriptedRequest(
        api="openai",
        path="/v1/chat/completions",
        body={
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "bash_exec", "arguments": '{"command": "ls"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "out"},
            ],
            "tools": [{"type": "function", "function": {"name": "bash_exec", "parameters": {}}}],
        },
    )
    anthropic = ScriptedRequest(
        api="anthropic",
        path="/v1/messages",
        body={
            "system": "sys",
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "c1",
                            "name": "bash_exec",
                            "input": {"command": "ls"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "out"}],
                },
            ],
            "tools": [{"name": "bash_exec", "input_schema": {}}],
        },
    )
    for request in (openai, anthropic):
        transcript = request.transcript()
        assert [m.role for m in transcript] == ["system", "user", "assistant", "tool"]
        assert transcript[1].content == "hi"
        assert transcript[2].tool_calls[0].arguments == {"command": "ls"}
        assert transcript[3].tool_call_id == "c1" and transcript[3].content == "out"
        assert request.tool_names() == ["bash_exec"]
