"""The demo model walks a first-time user through a session, labelled in every answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from openfoal_kernel.protocol.transcript import ChatMessage, ToolCall
from openfoal_kernel.providers import (
    AnthropicProvider,
    ModelProvider,
    OpenAIProvider,
    TextDelta,
    ToolCallReady,
    ToolSpec,
)
from openfoal_kernel.scripted import (
    DEMO_BASH_COMMAND,
    DEMO_LABEL,
    ScriptedModelServer,
    demo_responder,
    make_demo_responder,
)


def _tool(name: str, **properties: str) -> ToolSpec:
    schema = {
        "type": "object",
        "properties": {key: {"type": kind} for key, kind in properties.items()},
        "required": list(properties),
    }
    return ToolSpec(name=name, description=f"the {name} tool", parameters=schema)


TOOLS = [
    _tool("file.read", path="string"),
    _tool("file.list", path="string"),
    _tool("python.exec", code="string"),
    _tool("bash.exec", command="string"),
]

#: What the fake tools answer, by tool name.
Results = Callable[[ToolCall], str]


def _fake_results(call: ToolCall) -> str:
    return {
        "file.list": "data.csv\nnotebook.ipynb\nREADME.md",
        "python.exec": "mean 3.875 stdev 2.748",
        "bash.exec": "hello from the OpenFoal demo",
    }[call.name]


@dataclass
class Turn:
    """What one user turn produced: the texts of each model step and the calls in order."""

    texts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)


async def _run_turn(
    provider: ModelProvider,
    transcript: list[ChatMessage],
    tools: Sequence[ToolSpec],
    results: Results = _fake_results,
) -> Turn:
    """A minimal agent loop: stream, run each call with a fake tool, feed results back."""
    turn = Turn()
    for _ in range(8):
        text, calls = "", []
        async for event in provider.stream(transcript, tools):
            if isinstance(event, TextDelta):
                text += event.text
            elif isinstance(event, ToolCallReady):
                calls.append(event.call)
        turn.texts.append(text)
        turn.calls.extend(calls)
        transcript.append(ChatMessage(role="assistant", content=text, tool_calls=calls))
        if not calls:
            return turn
        for call in calls:
            content = results(call)
            transcript.append(ChatMessage(role="tool", tool_call_id=call.id, content=content))
    raise AssertionError("the demo model never stopped calling tools")


@pytest.fixture
def demo_server() -> Iterator[ScriptedModelServer]:
    """A demo model server whose answers stream without pauses (fast tests)."""
    with ScriptedModelServer(make_demo_responder(0.0), api_key="demo-key") as server:
        yield server


@pytest.fixture
def paced_demo_server() -> Iterator[ScriptedModelServer]:
    """The demo model server exactly as ``OPENFOAL_MODEL=demo`` starts it."""
    with ScriptedModelServer(demo_responder, api_key="demo-key") as server:
        yield server


@pytest.fixture(params=["openai", "anthropic"])
def provider(request: pytest.FixtureRequest, demo_server: ScriptedModelServer):
    """A real provider of either API talking to the demo server."""
    if request.param == "openai":
        return OpenAIProvider("demo", "demo-key", demo_server.openai_base_url, 10)
    return AnthropicProvider("demo", "demo-key", demo_server.anthropic_base_url, 10)


@pytest.mark.asyncio
async def test_full_walk_through(provider: ModelProvider):
    transcript = [
        ChatMessage(role="system", content="You are OpenFoal."),
        ChatMessage(role="user", content="What can you do?"),
    ]
    turn = await _run_turn(provider, transcript, TOOLS)
    await provider.aclose()

    assert [call.name for call in turn.calls] == ["file.list", "python.exec", "bash.exec"]
    assert turn.calls[0].arguments == {"path": "."}
    assert "statistics" in turn.calls[1].arguments["code"]
    assert turn.calls[2].arguments == {"command": DEMO_BASH_COMMAND}
    assert len(turn.texts) == 4
    assert all(text.startswith(DEMO_LABEL) for text in turn.texts)
    greeting, after_list, after_python, summary = turn.texts
    assert "What can you do?" in greeting
    for variable in ("OPENFOAL_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        assert variable in greeting
    assert "openai:gpt-4.1-mini" in greeting
    assert "data.csv" in after_list
    assert "mean 3.875" in after_python and "approv" in after_python
    assert "hello from the OpenFoal demo" in summary
    assert "OPENFOAL_MODEL" in summary


@pytest.mark.asyncio
async def test_the_paced_demo_streams_its_text_in_many_small_deltas(paced_demo_server):
    provider = OpenAIProvider("demo", "demo-key", paced_demo_server.openai_base_url, 10)
    deltas = [
        event.text
        async for event in provider.stream([ChatMessage(role="user", content="hi")], TOOLS)
        if isinstance(event, TextDelta)
    ]
    await provider.aclose()
    assert deltas[0] == DEMO_LABEL + "Hello! You said"[: 24 - len(DEMO_LABEL)]
    assert len(deltas) > 10 and all(len(delta) <= 24 for delta in deltas)


@pytest.mark.asyncio
async def test_walk_through_is_deterministic(demo_server: ScriptedModelServer):
    provider = OpenAIProvider("demo", "demo-key", demo_server.openai_base_url, 10)
    runs = []
    for _ in range(2):
        transcript = [ChatMessage(role="user", content="hi")]
        runs.append(await _run_turn(provider, transcript, TOOLS))
    await provider.aclose()
    assert runs[0].texts == runs[1].texts
    first, second = ([(c.name, c.arguments) for c in run.calls] for run in runs)
    assert first == second


@pytest.mark.asyncio
async def test_rejected_gate_is_reported_and_argument_names_follow_the_schema(demo_server):
    tools = [_tool("file.list", dir="string"), _tool("bash.exec", cmd="string")]

    def results(call: ToolCall) -> str:
        if call.name == "bash.exec":
            return "GATE_REJECTED: the call was rejected by alice"
        return "a.txt"

    provider = OpenAIProvider("demo", "demo-key", demo_server.openai_base_url, 10)
    turn = await _run_turn(provider, [ChatMessage(role="user", content="go")], tools, results)
    await provider.aclose()
    assert [(c.name, c.arguments) for c in turn.calls] == [
        ("file.list", {"dir": "."}),
        ("bash.exec", {"cmd": DEMO_BASH_COMMAND}),
    ]
    assert "python.exec" not in turn.texts[-1]
    assert "you rejected it, so it never ran" in turn.texts[-1]


@pytest.mark.asyncio
async def test_without_tools_it_answers_in_labelled_text(provider: ModelProvider):
    transcript = [ChatMessage(role="user", content="Summarise my data please")]
    turn = await _run_turn(provider, transcript, [])
    await provider.aclose()
    (text,) = turn.texts
    assert turn.calls == []
    assert text.startswith(DEMO_LABEL)
    assert "Summarise my data please" in text
    assert "OPENFOAL_MODEL" in text and "ANTHROPIC_BASE_URL" in text


@pytest.mark.asyncio
async def test_later_turns_answer_in_text_until_asked_for_the_tour_again(demo_server):
    provider = OpenAIProvider("demo", "demo-key", demo_server.openai_base_url, 10)
    transcript = [ChatMessage(role="user", content="hello")]
    await _run_turn(provider, transcript, TOOLS)

    transcript.append(ChatMessage(role="user", content="and now?"))
    second = await _run_turn(provider, transcript, TOOLS)
    assert second.calls == [] and second.texts[0].startswith(DEMO_LABEL)
    assert "and now?" in second.texts[0] and "tour" in second.texts[0]

    transcript.append(ChatMessage(role="user", content="show me the tour again"))
    third = await _run_turn(provider, transcript, TOOLS)
    await provider.aclose()
    assert [c.name for c in third.calls] == ["file.list", "python.exec", "bash.exec"]
