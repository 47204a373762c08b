"""Tornado handlers of a cloud instance's sync intake: thin, as the others.

``POST {base_url}openfoal/api/sync/batches`` takes a :class:`SyncBatch`, ``POST
{base_url}openfoal/api/sync/resolutions`` a :class:`SyncResolveRequest`, and ``POST
{base_url}openfoal/api/sync/conflicts`` answers the caller's open conflicts (and the history
digests of the sessions it names). The
caller is the user of a sync token (``c.OpenFoalApp.sync_tokens``) or, failing that, whoever
Jupyter's own authentication says (a JupyterHub user's API token); a body's ``user`` must be
that user.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel, ValidationError

from openfoal_kernel.protocol import ErrorCode, OpenFoalError
from openfoal_kernel.protocol.sync import SyncBatch, SyncConflictsRequest, SyncResolveRequest

from .handlers import HTTP_STATUS, _OpenFoalMixin
from .methods import _validation_message
from .tracing import trace_id_from


class _SyncHandler(_OpenFoalMixin, APIHandler):
    """Authentication by sync token or Jupyter identity; structured errors."""

    def check_xsrf_cookie(self) -> None:
        """The credential is a header, never a cookie: no cross-site forgery to guard."""

    def sync_user(self) -> str:
        """The user this request authenticates as (UNAUTHORIZED when nobody)."""
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        tokens: dict[str, str] = self.settings.get("openfoal_sync_tokens", {})
        if scheme.lower() in ("token", "bearer") and token.strip() in tokens:
            return tokens[token.strip()]
        if self.current_user:
            return self.principal()
        raise OpenFoalError(ErrorCode.UNAUTHORIZED, "a sync token or a user token is required")

    def body_as(self, model: type[BaseModel]) -> Any:
        """The JSON body (gzip allowed) validated as ``model``."""
        raw = self.request.body
        if self.request.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as exc:
                raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"body is not gzip: {exc}") from exc
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"body is not JSON: {exc}") from exc
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, _validation_message(exc)) from exc

    async def answer(self, work: Any) -> None:
        """Run the coroutine maker ``work(user)`` and write its payload or the error."""
        trace_id = trace_id_from(self.request.headers.get("traceparent"))
        self.set_header("X-OpenFoal-Trace-Id", trace_id)
        try:
            receiver = self.services.receiver
            if receiver is None:
                raise OpenFoalError(ErrorCode.NOT_FOUND, "this server takes no sync")
            if not self.services.ready.is_set():
                await self.services.ready.wait()
            payload = await work(self.sync_user())
        except OpenFoalError as exc:
            self.set_status(HTTP_STATUS.get(exc.code, 500))
            self.finish({"ok": False, "error": exc.to_body(trace_id)})
            return
        self.finish({"ok": True, "payload": payload.model_dump(mode="json")})


class SyncBatchesHandler(_SyncHandler):
    """``POST openfoal/api/sync/batches``."""

    async def post(self) -> None:
        """Take one pushed batch."""

        async def work(user: str) -> Any:
            batch: SyncBatch = self.body_as(SyncBatch)
            if batch.user != user:
                raise OpenFoalError(
                    ErrorCode.FORBIDDEN, f"this token is {user!r}'s, the batch is {batch.user!r}'s"
                )
            assert self.services.receiver is not None
            return await self.services.receiver.receive(user, batch)

        await self.answer(work)


class SyncConflictsHandler(_SyncHandler):
    """``POST openfoal/api/sync/conflicts``."""

    async def post(self) -> None:
        """The caller's open conflicts (a server learns of one another server raised)."""

        async def work(user: str) -> Any:
            request: SyncConflictsRequest = self.body_as(SyncConflictsRequest)
            assert self.services.receiver is not None
            return await self.services.receiver.conflicts(user, request)

        await self.answer(work)


class SyncResolutionsHandler(_SyncHandler):
    """``POST openfoal/api/sync/resolutions``."""

    async def post(self) -> None:
        """End a conflict on the cloud's side."""

        async def work(user: str) -> Any:
            request: SyncResolveRequest = self.body_as(SyncResolveRequest)
            assert self.services.receiver is not None
            return await self.services.receiver.resolve(user, request)

        await self.answer(work)
