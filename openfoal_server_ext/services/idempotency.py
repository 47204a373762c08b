"""Idempotency of side-effect methods (PROTOCOL.md, "Idempotency").

The record is keyed by method + idempotencyKey + actor + sessionId. The same key with the
same params returns the first response (an error too) without running again; other params
get IDEMPOTENCY_CONFLICT; concurrent duplicates share one execution.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from openfoal_kernel.protocol import ErrorCode, OpenFoalError, utcnow

from ..store import IdempotencyRow, StoreWorker

Outcome = dict[str, Any]  # {"ok": bool, "payload": ...} or {"ok": False, "error": {...}}


def params_fingerprint(params: dict[str, Any]) -> str:
    """Hash of the params without the key itself (canonical JSON)."""
    body = {k: v for k, v in params.items() if k != "idempotencyKey"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotencyService:
    """Runs a side effect at most once per idempotency record."""

    def __init__(self, worker: StoreWorker, *, ttl: timedelta) -> None:
        self.worker = worker
        self.ttl = ttl
        self._inflight: dict[tuple[str, str, str, str], tuple[str, asyncio.Future[Outcome]]] = {}

    async def run(
        self,
        *,
        method: str,
        key: str,
        actor: str,
        session_id: str | None,
        params: dict[str, Any],
        action: Callable[[], Awaitable[dict[str, Any]]],
    ) -> Outcome:
        """Return the outcome of ``action``, running it only for a new record."""
        rec_key = (method, key, actor, session_id or "")
        fingerprint = params_fingerprint(params)
        inflight = self._inflight.get(rec_key)
        if inflight is not None:
            if inflight[0] != fingerprint:
                raise _conflict(method)
            return await asyncio.shield(inflight[1])
        # register before the first await, so concurrent duplicates find this execution
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._inflight[rec_key] = (fingerprint, future)
        try:
            stored = await self.worker.call(self.worker.store.get_idempotency, *rec_key)
            if stored is not None:
                if stored.params_hash != fingerprint:
                    raise _conflict(method)
                future.set_result(stored.response)
                return stored.response
            try:
                outcome: Outcome = {"ok": True, "payload": await action()}
            except OpenFoalError as exc:
                error: dict[str, Any] = {
                    "code": exc.code.value,
                    "message": exc.message,
                    "retryable": exc.retryable,
                }
                if exc.details:
                    # e.g. the gate as the first decision left it (VERSION_CONFLICT)
                    error["details"] = exc.details
                outcome = {"ok": False, "error": error}
            now = utcnow()
            # errors are remembered too (PROTOCOL.md): a retry needs a fresh key
            row = IdempotencyRow(
                method=method,
                key=key,
                actor=actor,
                session_id=session_id or "",
                params_hash=fingerprint,
                response=outcome,
                created_at=now,
                expires_at=now + self.ttl,
            )
            await self.worker.call(self.worker.store.put_idempotency, row)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(rec_key, None)


def _conflict(method: str) -> OpenFoalError:
    return OpenFoalError(
        ErrorCode.IDEMPOTENCY_CONFLICT,
        f"this idempotencyKey was already used for a different {method} request",
    )
