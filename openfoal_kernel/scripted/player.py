"""Play a :class:`Reply` step by step through an API encoder onto a connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from .script import (
    BurstStep,
    DelayStep,
    DisconnectStep,
    ErrorStep,
    HangStep,
    MalformedStep,
    Reply,
    TextStep,
    ToolCallStep,
    api_tool_name,
)
from .wire import Collected, TokenCounts, WireEncoder, estimate_tokens, random_id

#: Burst deltas are written this many frames at a time: large writes, bounded buffers.
BURST_BATCH = 512


class Sink(Protocol):
    """The connection a reply is played onto (implemented over a tornado request handler)."""

    @property
    def started(self) -> bool:
        """Whether stream bytes (and so the status line) have gone out."""
        ...

    async def send(self, data: str) -> None:
        """Write stream frames and flush them; the first call commits a 200 event stream."""
        ...

    def respond(self, status: int, body: dict[str, Any] | str, headers: dict[str, str]) -> None:
        """Send a whole JSON response (an error, or a non-streaming completion)."""
        ...

    def abort(self) -> None:
        """Drop the TCP connection without finishing the response."""
        ...

    async def wait_closed(self, timeout: float | None) -> bool:
        """Wait until the client goes away (True) or ``timeout`` passes (False)."""
        ...


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class ReplyPlayer:
    """Plays one reply, streaming (SSE) or not (one JSON body at the end)."""

    def __init__(self, reply: Reply, encoder: WireEncoder, sink: Sink, *, stream: bool) -> None:
        self.reply = reply
        self.encoder = encoder
        self.sink = sink
        self.stream = stream
        self._begun = False
        self._output_chars = 0
        self._collected = Collected()

    def _opening(self) -> str:
        """The stream's opening frames, the first time anything is sent."""
        if self._begun:
            return ""
        self._begun = True
        return self.encoder.begin()

    async def _pause(self, seconds: float) -> None:
        if seconds:
            await asyncio.sleep(seconds)

    async def _text(self, step: TextStep) -> None:
        self._output_chars += len(step.text)
        if not self.stream:
            self._collected.text += step.text
            return
        for piece in _chunks(step.text, step.chunk_size):
            await self.sink.send(self._opening() + self.encoder.text(piece))
            await self._pause(step.chunk_delay_s)

    async def _tool_call(self, step: ToolCallStep) -> None:
        call_id = step.id or random_id(self.encoder.tool_id_prefix)
        name = api_tool_name(step.name)
        arguments = json.dumps(step.arguments) if step.raw_arguments is None else step.raw_arguments
        self._output_chars += len(name) + len(arguments)
        if not self.stream:
            self._collected.tool_calls.append((call_id, name, arguments))
            return
        await self.sink.send(self._opening() + self.encoder.tool_start(call_id, name))
        for piece in _chunks(arguments, step.chunk_size):
            await self.sink.send(self.encoder.tool_args(piece))
            await self._pause(step.chunk_delay_s)

    async def _burst(self, step: BurstStep) -> None:
        self._output_chars += len(step.text) * step.count
        if not self.stream:
            self._collected.text += step.text * step.count
            return
        prefix, frame = self.encoder.burst(step.text)
        head = self._opening() + prefix
        full, rest = divmod(step.count, BURST_BATCH)
        batch = frame * BURST_BATCH
        for _ in range(full):
            await self.sink.send(head + batch)
            head = ""
        if rest:
            await self.sink.send(head + frame * rest)

    def _error(self, step: ErrorStep) -> dict[str, Any]:
        return step.body or self.encoder.error_body(step.status, step.message)

    async def play(self) -> None:
        """Run every step; an error, malformed body, disconnect or open hang ends it early."""
        for step in self.reply.steps:
            if isinstance(step, TextStep):
                await self._text(step)
            elif isinstance(step, ToolCallStep):
                await self._tool_call(step)
            elif isinstance(step, BurstStep):
                await self._burst(step)
            elif isinstance(step, DelayStep):
                await self._pause(step.seconds)
            elif isinstance(step, ErrorStep):
                if self.sink.started:
                    await self.sink.send(self.encoder.error_event(self._error(step)))
                else:
                    self.sink.respond(step.status, self._error(step), step.headers)
                return
            elif isinstance(step, MalformedStep):
                if not self.stream:
                    self.sink.respond(200, step.data, {})
                    return
                await self.sink.send(self._opening() + self.encoder.malformed(step.data))
            elif isinstance(step, HangStep):
                if await self.sink.wait_closed(step.seconds) or step.seconds is None:
                    return
            elif isinstance(step, DisconnectStep):
                self.sink.abort()
                return
        await self._finish()

    async def _finish(self) -> None:
        reason = self.reply.resolved_finish_reason()
        scripted = self.reply.usage
        usage = TokenCounts(
            input_tokens=self.encoder.input_tokens,
            output_tokens=(
                scripted.output_tokens if scripted else estimate_tokens(self._output_chars)
            ),
        )
        if self.stream:
            frames = self._opening()
            if self.reply.finish:
                frames += self.encoder.finish(reason, usage)
            if frames:
                await self.sink.send(frames)
        else:
            self.sink.respond(200, self.encoder.complete(self._collected, reason, usage), {})
