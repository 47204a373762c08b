"""FallbackChain: retries with backoff, falls over to the next model, never repeats output."""

from __future__ import annotations

import time

import pytest

from openfoal_kernel.protocol.transcript import ChatMessage
from openfoal_kernel.providers import (
    AnthropicProvider,
    FallbackChain,
    Finish,
    ModelError,
    ModelProvider,
    OpenAIProvider,
    StreamEvent,
    TextDelta,
)
from openfoal_kernel.scripted import (
    DisconnectStep,
    ErrorStep,
    HangStep,
    Reply,
    ScriptedModelServer,
    TextStep,
)

HELLO = [ChatMessage(role="user", content="hello")]
OK = Reply.of(TextStep(text="fine, thanks"))


def _openai(server: ScriptedModelServer, model: str, timeout_s: float = 5.0) -> OpenAIProvider:
    return OpenAIProvider(model, server.api_key, server.openai_base_url, timeout_s)


def _anthropic(server: ScriptedModelServer, model: str) -> AnthropicProvider:
    return AnthropicProvider(model, server.api_key, server.anthropic_base_url, 5.0)


def _chain(*providers: ModelProvider, retries: int = 2, cap: float = 0.02) -> FallbackChain:
    return FallbackChain(
        list(providers), max_retries=retries, backoff_cap_s=cap, backoff_base_s=0.01
    )


async def _collect(chain: FallbackChain) -> list[StreamEvent]:
    try:
        return [event async for event in chain.stream(HELLO)]
    finally:
        await chain.aclose()


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def _models(server: ScriptedModelServer) -> list[str]:
    return [request.body["model"] for request in server.requests]


@pytest.mark.asyncio
async def test_429_500_503_are_retried_then_the_answer_streams_once(server):
    server.enqueue(
        Reply.of(ErrorStep(status=429)),
        Reply.of(ErrorStep(status=500)),
        Reply.of(ErrorStep(status=503)),
        OK,
    )
    chain = _chain(_openai(server, "a"), retries=3)
    events = await _collect(chain)
    assert _text(events) == "fine, thanks"
    assert isinstance(events[-1], Finish)
    assert _models(server) == ["a", "a", "a", "a"]
    assert chain.last_model_id == "openai:a"


@pytest.mark.asyncio
async def test_retry_after_stretches_the_backoff_within_the_cap(server):
    server.enqueue(Reply.of(ErrorStep(status=429, headers={"retry-after": "0.3"})), OK)
    started = time.perf_counter()
    events = await _collect(_chain(_openai(server, "a"), cap=1.0))
    elapsed = time.perf_counter() - started
    assert _text(events) == "fine, thanks"
    assert 0.3 <= elapsed < 1.0

    server.enqueue(Reply.of(ErrorStep(status=429, headers={"retry-after": "30"})), OK)
    started = time.perf_counter()
    await _collect(_chain(_openai(server, "a"), cap=0.1))
    assert time.perf_counter() - started < 1.0, "the cap bounds a long Retry-After"


@pytest.mark.asyncio
async def test_a_400_is_not_retried_and_the_next_model_answers(server):
    server.enqueue(Reply.of(ErrorStep(status=400, message="bad schema")), OK)
    chain = _chain(_openai(server, "a"), _anthropic(server, "b"))
    events = await _collect(chain)
    assert _text(events) == "fine, thanks"
    assert _models(server) == ["a", "b"]
    assert [r.api for r in server.requests] == ["openai", "anthropic"]
    assert chain.last_model_id == "anthropic:b"


@pytest.mark.asyncio
async def test_when_retries_run_out_the_next_model_answers(server):
    server.enqueue(*[Reply.of(ErrorStep(status=503))] * 3, OK)
    events = await _collect(_chain(_openai(server, "a"), _openai(server, "b"), retries=2))
    assert _text(events) == "fine, thanks"
    assert _models(server) == ["a", "a", "a", "b"]


@pytest.mark.asyncio
async def test_a_timeout_is_retried(server):
    server.enqueue(Reply.of(HangStep()), OK)
    events = await _collect(_chain(_openai(server, "a", timeout_s=0.2)))
    assert _text(events) == "fine, thanks"
    assert _models(server) == ["a", "a"]


@pytest.mark.asyncio
async def test_every_model_failing_raises_one_error_listing_each(server):
    server.enqueue(
        Reply.of(ErrorStep(status=503)),
        Reply.of(ErrorStep(status=503)),
        Reply.of(ErrorStep(status=401)),
    )
    chain = _chain(_openai(server, "a"), _anthropic(server, "b"), retries=1)
    with pytest.raises(ModelError) as caught:
        await _collect(chain)
    error = caught.value
    assert error.message.startswith("all models failed: ")
    assert "openai:a: HTTP 503" in error.message and "(2 attempts)" in error.message
    assert "anthropic:b: HTTP 401" in error.message and "(1 attempt)" in error.message
    assert [(f["model"], f["status"], f["attempts"]) for f in error.details["failures"]] == [
        ("openai:a", 503, 2),
        ("anthropic:b", 401, 1),
    ]
    assert error.retryable, "one of the models may come back"
    assert server.pending == 0


@pytest.mark.asyncio
async def test_all_permanent_failures_are_not_retryable(server):
    server.enqueue(Reply.of(ErrorStep(status=400)), Reply.of(ErrorStep(status=404)))
    with pytest.raises(ModelError) as caught:
        await _collect(_chain(_openai(server, "a"), _openai(server, "b")))
    assert not caught.value.retryable
    assert len(server.requests) == 2


@pytest.mark.asyncio
async def test_a_failure_after_output_started_is_raised_as_it_is(server):
    server.enqueue(Reply.of(TextStep(text="half an ans", chunk_size=4), DisconnectStep()), OK)
    chain = _chain(_openai(server, "a"), _openai(server, "b"))
    seen: list[str] = []
    with pytest.raises(ModelError) as caught:
        async for event in chain.stream(HELLO):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    await chain.aclose()
    assert "".join(seen) == "half an ans"
    assert caught.value.message.startswith("openai:a: connection failed")
    assert _models(server) == ["a"], "no retry and no fallback once text was shown"
    assert server.pending == 1


def test_a_chain_needs_providers():
    with pytest.raises(ValueError, match="at least one provider"):
        FallbackChain([])
