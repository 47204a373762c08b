"""The agent loop in-process: plain asyncio, the scripted model over real HTTP, no Jupyter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from openfoal_kernel.agent.loop import AgentLoop
from openfoal_kernel.protocol import ChatMessage, ModelSettings, Policy, RunSpec
from openfoal_kernel.providers.config import build_provider
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_kernel.tools.base import Tool, ToolContext, ToolResult

pytestmark = pytest.mark.asyncio


class Sink:
    """Collects what the loop reports."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.messages: list[ChatMessage] = []

    def event(self, name: str, payload: dict[str, Any]) -> None:
        self.events.append((name, payload))

    def message(self, message: ChatMessage) -> None:
        self.messages.append(message)

    def names(self) -> list[str]:
        return [n for n, _ in self.events]


class EchoArgs(BaseModel):
    text: str


class EchoTool(Tool[EchoArgs]):
    name: ClassVar[str] = "echo.say"
    description: ClassVar[str] = "Repeat the text."
    Args = EchoArgs
    calls: ClassVar[list[str]] = []

    def risk(self, args: EchoArgs, ctx: ToolContext) -> str | None:
        return "shouting" if args.text.isupper() else None

    async def run(self, args: EchoArgs, ctx: ToolContext) -> ToolResult:
        EchoTool.calls.append(args.text)
        return ToolResult(status="success", output=f"said {args.text}")


def make_loop(
    model, sink: Sink, *, policy: Policy | None = None, gate=None, transcript=()
) -> AgentLoop:
    settings = ModelSettings(
        model="openai:scripted", openaiBaseUrl=model.openai_base_url, openaiApiKey="k", maxRetries=0
    )
    spec = RunSpec(
        runId="run_1",
        sessionId="ses_1",
        traceId="t" * 32,
        policy=policy or Policy(),
        model=settings,
        transcript=list(transcript),
    )
    ctx = ToolContext(
        session_id="ses_1",
        run_id="run_1",
        trace_id="t" * 32,
        workspace=Path("."),
        executor=None,
        policy=spec.policy,
    )  # type: ignore[arg-type]
    return AgentLoop(
        spec=spec,
        provider_factory=lambda: build_provider(settings),
        tools={"echo.say": EchoTool()},
        tool_ctx=ctx,
        sink=sink,
        gate=gate,
    )


async def test_text_turn(model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="hello world", chunk_size=3)]))
    sink = Sink()
    outcome = await make_loop(model, sink).run("hi")
    assert outcome.status == "completed"
    assert sink.names()[-1] == "agent.completed" and sink.names().count("agent.completed") == 1
    assert "".join(p["delta"] for n, p in sink.events if n == "agent.delta") == "hello world"
    assert [m.role for m in sink.messages] == ["assistant"]


async def test_tool_round_trip(model) -> None:
    EchoTool.calls.clear()
    model.enqueue(
        Reply(steps=[ToolCallStep(name="echo.say", arguments={"text": "hi"})]),
        Reply(steps=[TextStep(text="done")]),
    )
    sink = Sink()
    outcome = await make_loop(model, sink).run("say hi")
    assert outcome.status == "completed" and EchoTool.calls == ["hi"]
    result = next(p for n, p in sink.events if n == "agent.tool_result")
    assert result["status"] == "success" and result["output"] == "said hi"
    assert [m.role for m in sink.messages] == ["assistant", "tool", "assistant"]
    sent = model.requests[-1].body["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "said hi"


async def test_bad_tool_arguments_go_back_to_the_model(model) -> None:
    model.enqueue(
        Reply(steps=[ToolCallStep(name="echo.say", arguments={"wrong": 1})]),
        Reply(steps=[TextStep(text="sorry")]),
    )
    sink = Sink()
    outcome = await make_loop(model, sink).run("go")
    result = next(p for n, p in sink.events if n == "agent.tool_result")
    assert outcome.status == "completed"
    assert result["status"] == "failed" and result["error"]["code"] == "INVALID_REQUEST"


async def test_unknown_tool_is_a_failed_result(model) -> None:
    model.enqueue(
        Reply(steps=[ToolCallStep(name="nope.tool", arguments={})]),
        Reply(steps=[TextStep(text="ok")]),
    )
    sink = Sink()
    await make_loop(model, sink).run("go")
    result = next(p for n, p in sink.events if n == "agent.tool_result")
    assert result["status"] == "failed" and result["error"]["code"] == "TOOL_EXEC_FAILED"


async def test_denied_call_never_reaches_the_tool(model) -> None:
    EchoTool.calls.clear()
    model.enqueue(
        Reply(steps=[ToolCallStep(name="echo.say", arguments={"text": "x"})]),
        Reply(steps=[TextStep(text="ok")]),
    )
    sink = Sink()
    await make_loop(model, sink, policy=Policy(tools={"echo.say": "deny"})).run("go")
    result = next(p for n, p in sink.events if n == "agent.tool_result")
    assert result["status"] == "denied" and result["error"]["code"] == "POLICY_DENIED"
    assert EchoTool.calls == []
    assert "POLICY_DENIED" in model.requests[-1].body["messages"][-1]["content"]


@pytest.mark.parametrize(
    "outcome,status,code",
    [
        ("approved", "success", None),
        ("rejected", "rejected", "GATE_REJECTED"),
        ("expired", "rejected", "GATE_EXPIRED"),
    ],
)
async def test_gated_call(model, outcome, status, code) -> None:
    EchoTool.calls.clear()
    asked: list[str] = []

    async def gate(call, reason):
        asked.append(reason)
        return outcome

    model.enqueue(
        Reply(steps=[ToolCallStep(name="echo.say", arguments={"text": "LOUD"})]),
        Reply(steps=[TextStep(text="ok")]),
    )
    sink = Sink()
    await make_loop(model, sink, gate=gate).run("go")
    result = next(p for n, p in sink.events if n == "agent.tool_result")
    assert asked == ["high risk: shouting"]
    assert result["status"] == status
    assert (result.get("error") or {}).get("code") == code
    assert EchoTool.calls == (["LOUD"] if outcome == "approved" else [])


async def test_model_failure_ends_with_model_unavailable(model) -> None:
    from openfoal_kernel.scripted import ErrorStep

    model.enqueue(Reply(steps=[ErrorStep(status=500)]))
    sink = Sink()
    outcome = await make_loop(model, sink).run("go")
    assert outcome.status == "failed"
    name, payload = sink.events[-1]
    assert name == "agent.failed" and payload["error"]["code"] == "MODEL_UNAVAILABLE"


async def test_cancel_emits_one_terminal_event(model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="y" * 200, chunk_size=1, chunk_delay_s=0.02)]))
    sink = Sink()
    task = asyncio.ensure_future(make_loop(model, sink).run("go"))
    while "agent.delta" not in sink.names():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.names()[-1] == "agent.failed" and sink.events[-1][1]["aborted"] is True
    assert sum(1 for n in sink.names() if n in ("agent.failed", "agent.completed")) == 1


async def test_transcript_is_context(model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="Ada")]))
    prior = [
        ChatMessage(role="user", content="I am Ada"),
        ChatMessage(role="assistant", content="Hi Ada"),
    ]
    await make_loop(model, Sink(), transcript=prior).run("who am I?")
    sent = [(m["role"], m.get("content")) for m in model.requests[-1].body["messages"]]
    assert sent[1:] == [("user", "I am Ada"), ("assistant", "Hi Ada"), ("user", "who am I?")]
    assert sent[0][0] == "system"


async def test_token_budget_stops_before_the_tools_of_a_step_past_it(model) -> None:
    from openfoal_kernel.scripted import ScriptUsage

    EchoTool.calls.clear()
    model.enqueue(
        Reply(
            steps=[ToolCallStep(name="echo.say", arguments={"text": "hi"})],
            usage=ScriptUsage(input_tokens=40, output_tokens=20),
        )
    )
    sink = Sink()
    loop = make_loop(model, sink)
    loop.spec.model.tokenBudget = 50
    outcome = await loop.run("go")
    assert outcome.status == "failed" and EchoTool.calls == []
    name, payload = sink.events[-1]
    assert name == "agent.failed" and payload["error"]["code"] == "BUDGET_EXCEEDED"
    assert payload["usage"] == {"inputTokens": 40, "outputTokens": 20}
    assert "agent.tool_call" not in sink.names()


async def test_token_budget_used_up_makes_no_model_call(model) -> None:
    before = len(model.requests)
    sink = Sink()
    loop = make_loop(model, sink)
    loop.spec.model.tokenBudget = 0
    outcome = await loop.run("go")
    assert outcome.status == "failed" and len(model.requests) == before
    assert sink.events[-1][1]["error"]["code"] == "BUDGET_EXCEEDED"
