"""A chain of providers: retry each with capped, jittered backoff, then fall over to the next."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from ..protocol.transcript import ChatMessage
from .base import ModelError, ModelProvider, StreamEvent, ToolSpec

log = logging.getLogger(__name__)

_Opened = tuple[AsyncIterator[StreamEvent], StreamEvent | None]


@dataclass(frozen=True, kw_only=True)
class Failure:
    """How one model of the chain failed."""

    model: str
    error: ModelError
    attempts: int

    def describe(self) -> str:
        """One line for the chain's error message."""
        plural = "s" if self.attempts != 1 else ""
        return f"{self.error.message} ({self.attempts} attempt{plural})"


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.retryable


async def _close(iterator: AsyncIterator[StreamEvent]) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


class FallbackChain(ModelProvider):
    """A ModelProvider over several: each retried while nothing was streamed, then the next.

    A retryable failure before the first event of an attempt is retried up to ``max_retries``
    times, waiting a random time in a window that doubles from ``backoff_base_s`` up to
    ``backoff_cap_s`` (longer if the server sent ``Retry-After``, never past the cap). Any other
    failure moves on to the next provider. A failure after output started is raised as it is:
    replaying would repeat text the user already saw.
    """

    def __init__(
        self,
        providers: Sequence[ModelProvider],
        max_retries: int = 2,
        backoff_cap_s: float = 8.0,
        *,
        backoff_base_s: float = 0.5,
    ) -> None:
        if not providers:
            raise ValueError("FallbackChain needs at least one provider")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.providers = list(providers)
        self.max_retries = max_retries
        self.backoff_cap_s = backoff_cap_s
        self.backoff_base_s = backoff_base_s
        self.model_id = self.providers[0].model_id
        #: The provider that served the latest stream (``None`` before any succeeded).
        self.last_model_id: str | None = None
        self._jitter = wait_random_exponential(multiplier=backoff_base_s, max=backoff_cap_s)

    def _wait(self, state: RetryCallState) -> float:
        """Full-jitter backoff, stretched to the server's Retry-After within the cap."""
        wait = self._jitter(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ModelError):
            retry_after = exc.details.get("retry_after_s")
            if isinstance(retry_after, (int, float)):
                wait = max(wait, float(retry_after))
        return min(wait, self.backoff_cap_s)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "model attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, wait
        )

    async def _open(
        self,
        provider: ModelProvider,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        max_output_tokens: int | None,
        failures: list[Failure],
    ) -> _Opened | None:
        """Start ``provider`` up to its first event, retrying; ``None`` once it gives up."""
        attempts = 0

        async def attempt() -> _Opened:
            """One try: open the stream and wait for its first event."""
            nonlocal attempts
            attempts += 1
            iterator = aiter(provider.stream(messages, tools, max_output_tokens=max_output_tokens))
            try:
                first = await anext(iterator)
            except StopAsyncIteration:
                return iterator, None
            except BaseException:
                await _close(iterator)
                raise
            return iterator, first

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            opened: _Opened = await retrying(attempt)
        except ModelError as exc:
            log.warning("model %s failed: %s", provider.model_id, exc)
            failures.append(Failure(model=provider.model_id, error=exc, attempts=attempts))
            return None
        return opened

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        max_output_tokens: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream from the first provider that starts answering."""
        failures: list[Failure] = []
        for provider in self.providers:
            opened = await self._open(provider, messages, tools, max_output_tokens, failures)
            if opened is None:
                continue
            iterator, first = opened
            self.last_model_id = provider.model_id
            try:
                if first is not None:
                    yield first
                async for event in iterator:
                    yield event
            finally:
                await _close(iterator)
            return
        raise self._all_failed(failures)

    def _all_failed(self, failures: list[Failure]) -> ModelError:
        """One error naming every model's failure (the agent loop reports MODEL_UNAVAILABLE)."""
        details: dict[str, Any] = {
            "failures": [
                {
                    "model": f.model,
                    "message": f.error.message,
                    "retryable": f.error.retryable,
                    "status": f.error.status,
                    "attempts": f.attempts,
                }
                for f in failures
            ]
        }
        return ModelError(
            message="all models failed: " + "; ".join(f.describe() for f in failures),
            retryable=any(f.error.retryable for f in failures),
            status=failures[-1].error.status if failures else None,
            provider="fallback",
            details=details,
        )

    async def aclose(self) -> None:
        """Close every provider of the chain."""
        for provider in self.providers:
            await provider.aclose()
