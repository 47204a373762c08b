"""The agent loop: stream the model, run its tool calls under the policy, repeat, finish once.

Plain asyncio, no Jupyter: the kernel wraps it, tests drive it directly. Everything the loop
says goes through an :class:`EventSink`; it keeps no durable state of its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..policy import decide
from ..protocol import events as ev
from ..protocol.errors import ErrorCode
from ..protocol.kernel_wire import RunSpec
from ..protocol.transcript import ChatMessage, ToolCall
from ..providers.base import (
    Finish,
    ModelError,
    ModelProvider,
    TextDelta,
    ToolCallReady,
    ToolSpec,
    Usage,
)
from ..tools.base import Tool, ToolContext, ToolResult
from ..tools.notebook_vars import mention_context
from .context import COMPACT_PROMPT, COMPACTION_KIND, build_context

#: Bound on the tool output carried by events (the model sees the tool's own capped output).
EVENT_OUTPUT_CAP = 16_384
#: Model round trips per run before the loop stops.
MAX_STEPS = 24

GateOutcome = Literal["approved", "rejected", "expired"]
GateHandler = Callable[[ToolCall, str], Awaitable[GateOutcome]]


class EventSink(Protocol):
    """Where the loop reports: protocol events and transcript entries."""

    def event(self, name: str, payload: dict[str, Any]) -> None:
        """Emit a protocol event of this run."""

    def message(self, message: ChatMessage) -> None:
        """Record a transcript entry of this run."""


@dataclass(kw_only=True)
class RunOutcome:
    """How the run ended (also reported as the terminal event)."""

    status: Literal["completed", "failed", "aborted"]
    usage: dict[str, int] = field(default_factory=lambda: {"inputTokens": 0, "outputTokens": 0})
    error: dict[str, Any] | None = None


def _bounded(text: str, cap: int = EVENT_OUTPUT_CAP) -> str:
    if len(text) <= cap:
        return text
    return text[:cap] + f"\n[... {len(text) - cap} more characters not shown]"


class AgentLoop:
    """Runs one turn of a session."""

    def __init__(
        self,
        *,
        spec: RunSpec,
        provider_factory: Callable[[], ModelProvider],
        tools: dict[str, Tool[Any]],
        tool_ctx: ToolContext | None,
        sink: EventSink,
        gate: GateHandler | None = None,
        memory: str = "",
        max_steps: int = MAX_STEPS,
    ) -> None:
        self.spec = spec
        self.provider_factory = provider_factory
        self.tools = tools
        self.tool_ctx = tool_ctx
        self.sink = sink
        self.gate = gate
        self.memory = memory
        self.max_steps = max_steps
        self.usage = {"inputTokens": 0, "outputTokens": 0}

    def _error(self, code: ErrorCode, message: str, retryable: bool = False) -> dict[str, Any]:
        return {
            "code": code.value,
            "message": message,
            "retryable": retryable,
            "traceId": self.spec.traceId,
        }

    def _fail(self, code: ErrorCode, message: str, retryable: bool = False) -> RunOutcome:
        """End the run as failed (``agent.failed``)."""
        error = self._error(code, message, retryable)
        return self._finish(RunOutcome(status="failed", usage=self.usage, error=error))

    def _aborted(self) -> RunOutcome:
        """End the run as aborted (``agent.failed`` with ``aborted: true``)."""
        error = self._error(ErrorCode.RUNTIME_LOST, "the run was aborted")
        return self._finish(RunOutcome(status="aborted", usage=self.usage, error=error))

    def _over_budget(self, *, strict: bool) -> bool:
        """Whether the run used its token budget (``strict``: went past it)."""
        budget = self.spec.model.tokenBudget
        if budget is None:
            return False
        used = self.usage["inputTokens"] + self.usage["outputTokens"]
        return used > budget if strict else used >= budget

    def _budget_exceeded(self) -> RunOutcome:
        """End the run with ``BUDGET_EXCEEDED``: its next model step would pass the budget."""
        used = self.usage["inputTokens"] + self.usage["outputTokens"]
        return self._fail(
            ErrorCode.BUDGET_EXCEEDED,
            f"this run used {used} tokens of the {self.spec.model.tokenBudget} the session "
            "had left; start a new session or raise the budget",
        )

    def _finish(self, outcome: RunOutcome) -> RunOutcome:
        if outcome.status == "completed":
            self.sink.event(ev.AGENT_COMPLETED, {"status": "completed", "usage": outcome.usage})
        else:
            payload: dict[str, Any] = {"error": outcome.error, "usage": outcome.usage}
            if outcome.status == "aborted":
                payload["aborted"] = True
            self.sink.event(ev.AGENT_FAILED, payload)
        return outcome

    async def run(self, user_input: str | None) -> RunOutcome:
        """Run the turn; always emits exactly one terminal event, even when cancelled."""
        transcript = list(self.spec.transcript)
        if user_input is not None:
            transcript.append(ChatMessage(role="user", content=user_input))
        messages = build_context(transcript, memory=self.memory)
        if user_input and self.tool_ctx is not None and messages[-1].role == "user":
            # @name mentions of a bound chat: variable summaries go into this prompt only
            rule = decide(self.spec.policy, "notebook.variables", None).rule
            note = await mention_context(
                self.tool_ctx.executor, user_input, allowed=rule == "allow"
            )
            if note:
                messages[-1] = messages[-1].model_copy(
                    update={"content": f"{note}\n\n{user_input}"}
                )
        try:
            provider = self.provider_factory()
        except ModelError as exc:
            return self._fail(ErrorCode.MODEL_UNAVAILABLE, str(exc))
        specs = [
            ToolSpec(name=t.name, description=t.description, parameters=t.parameters())
            for t in self.tools.values()
        ]
        try:
            if self.spec.resume:
                await self._resume_pending_calls(transcript, messages)
            for _ in range(self.max_steps):
                if self._over_budget(strict=False):
                    return self._budget_exceeded()
                assistant = await self._model_step(provider, messages, specs)
                messages.append(assistant)
                self.sink.message(assistant)
                if assistant.tool_calls and self._over_budget(strict=True):
                    return self._budget_exceeded()
                if not assistant.tool_calls:
                    return self._finish(RunOutcome(status="completed", usage=self.usage))
                for call in assistant.tool_calls:
                    result = await self._tool_step(call)
                    tool_msg = ChatMessage(
                        role="tool", tool_call_id=call.id, name=call.name, content=result.output
                    )
                    messages.append(tool_msg)
                    self.sink.message(tool_msg)
            return self._fail(
                ErrorCode.INTERNAL_ERROR, f"stopped after {self.max_steps} model steps"
            )
        except ModelError as exc:
            return self._fail(ErrorCode.MODEL_UNAVAILABLE, str(exc), True)
        except asyncio.CancelledError:
            self._aborted()
            raise
        finally:
            await provider.aclose()

    async def compact(self) -> RunOutcome:
        """Summarise the active context into a compaction entry (the ``/compact`` command)."""
        messages = build_context(self.spec.transcript)
        if len(messages) <= 1:
            self.sink.event(
                ev.AGENT_COMPLETED,
                {"status": "completed", "usage": self.usage, "summary": "nothing to compact"},
            )
            return RunOutcome(status="completed", usage=self.usage)
        messages.append(ChatMessage(role="user", content=COMPACT_PROMPT))
        try:
            provider = self.provider_factory()
        except ModelError as exc:
            return self._fail(ErrorCode.MODEL_UNAVAILABLE, str(exc))
        try:
            summary = (await self._model_step(provider, messages, ())).content.strip()
        except ModelError as exc:
            return self._fail(ErrorCode.MODEL_UNAVAILABLE, str(exc), True)
        except asyncio.CancelledError:
            self._aborted()
            raise
        finally:
            await provider.aclose()
        if not summary:
            return self._fail(
                ErrorCode.MODEL_UNAVAILABLE, "the model returned an empty summary", True
            )
        self.sink.message(ChatMessage(role="system", kind=COMPACTION_KIND, content=summary))
        self.sink.event(
            ev.AGENT_COMPLETED,
            {"status": "completed", "usage": self.usage, "summary": "older context compacted"},
        )
        return RunOutcome(status="completed", usage=self.usage)

    async def _resume_pending_calls(
        self, transcript: list[ChatMessage], messages: list[ChatMessage]
    ) -> None:
        """Run the calls of the last assistant message that have no result yet (continue)."""
        last = next((m for m in reversed(transcript) if m.role == "assistant"), None)
        if last is None:
            return
        done = {m.tool_call_id for m in transcript if m.role == "tool"}
        decided = self.spec.gateDecision or {}
        # drop the placeholders build_context added for these calls: real results follow
        pending = [c for c in last.tool_calls if c.id not in done]
        ids = {c.id for c in pending}
        messages[:] = [m for m in messages if not (m.role == "tool" and m.tool_call_id in ids)]
        for call in pending:
            preset = decided.get("outcome") if decided.get("toolCallId") == call.id else None
            result = await self._tool_step(call, preset=preset)
            tool_msg = ChatMessage(
                role="tool", tool_call_id=call.id, name=call.name, content=result.output
            )
            messages.append(tool_msg)
            self.sink.message(tool_msg)

    async def _model_step(
        self, provider: ModelProvider, messages: Sequence[ChatMessage], specs: Sequence[ToolSpec]
    ) -> ChatMessage:
        text: list[str] = []
        calls: list[ToolCall] = []
        async for item in provider.stream(messages, specs):
            if isinstance(item, TextDelta):
                if item.text:
                    text.append(item.text)
                    self.sink.event(ev.AGENT_DELTA, {"delta": item.text})
            elif isinstance(item, ToolCallReady):
                calls.append(item.call)
            elif isinstance(item, Usage):
                self.usage["inputTokens"] += item.input_tokens
                self.usage["outputTokens"] += item.output_tokens
            elif isinstance(item, Finish):
                pass
        return ChatMessage(role="assistant", content="".join(text), tool_calls=calls)

    async def _tool_step(self, call: ToolCall, *, preset: str | None = None) -> ToolResult:
        mode = self.spec.runtimeMode
        if preset is None:  # a continued call was announced by the run that was lost
            self.sink.event(
                ev.AGENT_TOOL_CALL,
                {
                    "toolCallId": call.id,
                    "toolName": call.name,
                    "args": call.arguments,
                    "runtimeMode": mode,
                },
            )
        started = time.perf_counter()
        result = await self._execute(call, preset=preset)
        if not result.duration_ms:
            result.duration_ms = (time.perf_counter() - started) * 1000
        payload: dict[str, Any] = {
            "toolCallId": call.id,
            "toolName": call.name,
            "status": result.status,
            "output": _bounded(result.output),
            "durationMs": round(result.duration_ms, 3),
        }
        if result.error:
            payload["error"] = result.error
        if result.displays:
            payload["displays"] = result.displays
        self.sink.event(ev.AGENT_TOOL_RESULT, payload)
        return result

    async def _execute(self, call: ToolCall, *, preset: str | None = None) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None or self.tool_ctx is None:
            return ToolResult.failed(
                ErrorCode.TOOL_EXEC_FAILED.value, f"unknown tool {call.name!r}"
            )
        try:
            args = tool.Args.model_validate(call.arguments)
            risk = tool.risk(args, self.tool_ctx)
        except Exception:  # invalid arguments: let invoke() report them
            risk = None
        decision = decide(self.spec.policy, call.name, risk)
        if decision.rule == "deny":
            msg = f"{ErrorCode.POLICY_DENIED.value}: {decision.reason}"
            return ToolResult(
                status="denied",
                output=msg,
                error={"code": ErrorCode.POLICY_DENIED.value, "message": decision.reason},
            )
        if preset is not None:  # decided while no kernel was waiting (continue path)
            outcome: GateOutcome = preset  # type: ignore[assignment]
        elif decision.rule == "gate":
            outcome = await self.gate(call, decision.reason) if self.gate else "rejected"
        else:
            outcome = "approved"
        if outcome != "approved":
            if outcome == "rejected":
                msg = f"{ErrorCode.GATE_REJECTED.value}: a person rejected this call"
                return ToolResult(
                    status="rejected",
                    output=msg,
                    error={"code": ErrorCode.GATE_REJECTED.value, "message": msg},
                )
            if outcome == "expired":
                msg = f"{ErrorCode.GATE_EXPIRED.value}: nobody approved this call in time"
                return ToolResult(
                    status="rejected",
                    output=msg,
                    error={"code": ErrorCode.GATE_EXPIRED.value, "message": msg},
                )
        try:
            return await tool.invoke(call.arguments, self.tool_ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tool bug must not kill the run: report it to the model
            msg = f"{type(exc).__name__}: {exc}"
            return ToolResult.failed(ErrorCode.TOOL_EXEC_FAILED.value, msg)


def args_preview(arguments: dict[str, Any], cap: int = 200) -> str:
    """A short one-line rendering of tool arguments (for notebook output)."""
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= cap else text[: cap - 1] + "…"
