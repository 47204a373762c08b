"""The scripted demo model (``OPENFOAL_MODEL=demo``): a labelled, deterministic tour of a session.

It reads the conversation it is sent and plays the next step of a fixed walk-through: greet and
explain how to configure a real model, list the workspace (``file.list``), compute something
(``python.exec``), run a shell command the default policy gates (``bash.exec``), then summarise.
Tools the request does not offer are skipped; with none it answers in text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..protocol.transcript import ChatMessage
from .script import Reply, ScriptedRequest, Step, TextStep, ToolCallStep, api_tool_name
from .state import Responder

#: Every text the demo model writes starts with this, so nobody mistakes it for a real model.
DEMO_LABEL = "[demo model] "

#: Read-only and harmless; the default policy still gates it, as any shell on the host.
DEMO_BASH_COMMAND = "echo 'hello from the OpenFoal demo' && uname -sr && pwd"

DEMO_PYTHON_CODE = (
    "import statistics\n"
    "samples = [3, 1, 4, 1, 5, 9, 2, 6]\n"
    "print('mean', statistics.mean(samples), 'stdev', round(statistics.stdev(samples), 3))\n"
)

CONFIGURE_TEXT = (
    "To chat with a real model, set OPENFOAL_MODEL in the environment that starts JupyterLab, "
    "then restart it: "
    "`OPENFOAL_MODEL=openai:gpt-4.1-mini` with `OPENAI_API_KEY` (add `OPENAI_BASE_URL` for any "
    "OpenAI-compatible server such as Ollama, vLLM or llama.cpp), or "
    "`OPENFOAL_MODEL=anthropic:claude-sonnet-4-5` with `ANTHROPIC_API_KEY` (and optionally "
    "`ANTHROPIC_BASE_URL`). `OPENFOAL_FALLBACK_MODELS` takes a comma-separated list of models "
    "to fall back on."
)

#: Pause after each streamed chunk, so the answer visibly streams in the chat.
CHUNK_DELAY_S = 0.01
CHUNK_SIZE = 24


@dataclass(frozen=True)
class _Stop:
    """One tool call of the tour: the tool, its argument names by preference, the value."""

    tool: str
    arg_names: tuple[str, ...]
    value: str
    intro: str


_TOUR: tuple[_Stop, ...] = (
    _Stop(
        "file.list",
        ("path", "dir", "directory"),
        ".",
        "First I list the files of your workspace with the `file.list` tool.",
    ),
    _Stop(
        "python.exec",
        ("code", "source"),
        DEMO_PYTHON_CODE,
        "Next, `python.exec` runs a small computation in a Python kernel kept apart from the "
        "agent, so variables persist across turns.",
    ),
    _Stop(
        "bash.exec",
        ("command", "cmd", "script"),
        DEMO_BASH_COMMAND,
        "Now a shell command with `bash.exec`. It only prints a greeting, the system name and "
        "the current folder, but the default policy treats any shell command on your machine "
        "as high risk, so it waits in the approval queue until you approve or reject it.",
    ),
)


def _say(text: str) -> TextStep:
    return TextStep(text=DEMO_LABEL + text, chunk_size=CHUNK_SIZE)


def _arguments(stop: _Stop, schema: dict[str, Any]) -> dict[str, Any]:
    """Fill the tool's own argument name, read from its JSON Schema."""
    properties = schema.get("properties") or {}
    for name in stop.arg_names:
        if name in properties:
            return {name: stop.value}
    required = schema.get("required") or []
    return {required[0] if required else stop.arg_names[0]: stop.value}


def _outcome(content: str) -> str:
    """How a tool call ended, read from its result text."""
    # The agent loop reports a call that never ran with its protocol error code.
    if "GATE_REJECTED" in content:
        return "you rejected it, so it never ran"
    if "GATE_EXPIRED" in content:
        return "nobody answered the approval in time, so it never ran"
    if "POLICY_DENIED" in content:
        return "the policy denied it, so it never ran"
    lines = content.strip().splitlines()
    if not lines:
        return "it ran, with no output"
    more = (
        f" and {len(lines) - 1} more line{'s' if len(lines) > 2 else ''}" if len(lines) > 1 else ""
    )
    return f"it ran and answered `{lines[0][:160]}`{more}"


def _current_turn(messages: list[ChatMessage]) -> tuple[str, list[ChatMessage], list[ChatMessage]]:
    """The last user text, the messages after it, and the messages before it."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index].content, messages[index + 1 :], messages[:index]
    return "", messages, []


def _text_only(question: str, hint: str = "") -> Reply:
    asked = f"You asked: “{question.strip()}”. " if question.strip() else ""
    return Reply.of(
        _say(
            f"{asked}I am OpenFoal's scripted demo model, not a real AI, so I cannot answer "
            f"that for real.{hint} {CONFIGURE_TEXT}"
        )
    )


def _summary(tour: list[_Stop], results: dict[str, str]) -> Reply:
    lines = [f"- `{stop.tool}`: {_outcome(results.get(stop.tool, ''))}" for stop in tour]
    text = (
        "That was the whole tour. What happened:\n"
        + "\n".join(lines)
        + "\nEvery call went through the policy and into the audit trail; high-risk calls such "
        "as the shell command wait for a human decision unless the policy says otherwise. "
        + CONFIGURE_TEXT
    )
    return Reply.of(_say(text), finish_reason="stop")


def _respond(request: ScriptedRequest) -> Reply:
    """The next answer, its text not yet paced."""
    messages = request.transcript()
    offered = request.tool_schemas()
    question, turn, earlier = _current_turn(messages)
    tour = [stop for stop in _TOUR if api_tool_name(stop.tool) in offered]
    if not tour:
        return _text_only(question)
    names = {api_tool_name(stop.tool): stop.tool for stop in tour}
    call_tools = {
        call.id: names.get(call.name, call.name)
        for message in turn
        if message.role == "assistant"
        for call in message.tool_calls
    }
    results = {
        call_tools[m.tool_call_id]: m.content
        for m in turn
        if m.role == "tool" and m.tool_call_id in call_tools
    }
    toured = any(m.tool_calls for m in earlier if m.role == "assistant")
    if toured and not call_tools and "tour" not in question.lower():
        return _text_only(question, " Say “tour” to see the walk-through again.")
    pending = [stop for stop in tour if stop.tool not in results]
    if not pending:
        return _summary(tour, results)
    stop = pending[0]
    steps: list[Step] = []
    if not results:
        asked = f"You said: “{question.strip()}”. " if question.strip() else ""
        steps.append(
            _say(
                f"Hello! {asked}I am OpenFoal's scripted demo model, not a real AI: every "
                f"answer I give starts with [demo model]. {CONFIGURE_TEXT}\n\nMeanwhile, let "
                f"me show you a real session with real tools. {stop.intro}"
            )
        )
    else:
        last = next(m for m in reversed(turn) if m.role == "tool" and m.tool_call_id in call_tools)
        done = call_tools[last.tool_call_id or ""]
        steps.append(_say(f"`{done}`: {_outcome(last.content)}.\n\n{stop.intro}"))
    steps.append(
        ToolCallStep(name=stop.tool, arguments=_arguments(stop, offered[api_tool_name(stop.tool)]))
    )
    return Reply(steps=steps)


def make_demo_responder(chunk_delay_s: float = CHUNK_DELAY_S) -> Responder:
    """A demo responder whose text streams with ``chunk_delay_s`` between chunks."""

    def respond(request: ScriptedRequest) -> Reply:
        """The demo's answer, paced."""
        reply = _respond(request)
        for step in reply.steps:
            if isinstance(step, TextStep):
                step.chunk_delay_s = chunk_delay_s
        return reply

    return respond


_paced = make_demo_responder()


def demo_responder(request: ScriptedRequest) -> Reply:
    """The demo model's next answer to ``request`` (deterministic in the conversation)."""
    return _paced(request)
