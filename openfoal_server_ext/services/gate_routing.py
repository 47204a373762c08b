"""Approval routing through the cloud instance: a team's gates, decided on anyone's server.

A user's server with a cloud (``c.OpenFoalApp.cloud_url`` and the user's ``cloud_token``)
pushes its gates with the rest of its outbox (the pending gate reaches the cloud like any row,
retried until the cloud takes it). This module is the rest of the route:

- ``policy-gate.list`` on the server adds the cloud's gates: an approver's server lists the
  workspace's pending gates of others (the cloud decides who is an approver, from the token);
  a member's only their own. A remote item names its owner in ``requestedBy``.
- ``policy-gate.resolve`` of a gate this server does not hold goes to the cloud with the
  user's token: the cloud takes the identity from the token and records one winner.
- the owner's server polls the cloud for decisions on its pending gates and applies each once
  (``resolvedBy`` the approver, the reason kept, both identities audited); its own decisions on
  a pushed gate are first taken by the cloud, so the first decision anywhere wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from openfoal_kernel.protocol import ErrorCode, GateItem, OpenFoalError
from openfoal_kernel.protocol.results import GateResolveResult

from .context import RequestContext
from .gates import GateService
from .roles import APPROVER, MEMBER

log = logging.getLogger(__name__)


class CloudUnreachable(OpenFoalError):
    """The cloud instance did not answer (down, restarting, or the network): retry later."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INTERNAL_ERROR, message, retryable=True)


class CloudGates:
    """The cloud's side of this server's gates: list, forward decisions, pick decisions up."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        user: str,
        gates: GateService,
        poll_s: float = 0.2,
        on_new_gate: Callable[[], None] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.base = url.rstrip("/") + "/openfoal/api/"
        self.token = token
        self.user = user
        self.gates = gates
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        #: Called once per new pending gate (the sync pusher's wake: push it now).
        self.on_new_gate = on_new_gate
        self._seen: set[str] = set()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    # -- HTTP -----------------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One gateway method on the cloud with this server's token; its payload, the cloud's
        error as an :class:`OpenFoalError` of the same code, or :class:`CloudUnreachable`."""
        client = self._client or httpx.AsyncClient(timeout=self.timeout_s)
        self._client = client
        try:
            r = await client.post(
                self.base + method,
                json=params,
                headers={"Authorization": f"token {self.token}"},
            )
        except httpx.HTTPError as exc:
            raise CloudUnreachable(
                f"the cloud instance is not reachable ({type(exc).__name__}); try again"
            ) from exc
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "ok" not in body:
            raise CloudUnreachable(f"the cloud instance answered {r.status_code}; try again")
        if not body["ok"]:
            error = body.get("error") or {}
            try:
                code = ErrorCode(error.get("code"))
            except ValueError:
                code = ErrorCode.INTERNAL_ERROR
            raise OpenFoalError(
                code,
                f"cloud: {error.get('message', '')}",
                retryable=bool(error.get("retryable")),
                details=error.get("details") or None,
            )
        return dict(body.get("payload") or {})

    # -- list and resolve -----------------------------------------------------------------

    async def list(
        self,
        *,
        status: str | None,
        session_id: str | None,
        limit: int,
        tool_name: str | None,
        gate_id: str | None = None,
    ) -> list[GateItem]:
        """The cloud's gates the token's user may see (empty when the cloud is away)."""
        params: dict[str, Any] = {"limit": limit}
        filters = (
            ("status", status),
            ("sessionId", session_id),
            ("toolName", tool_name),
            ("gateId", gate_id),
        )
        for key, value in filters:
            if value is not None:
                params[key] = value
        try:
            payload = await self.call("policy-gate.list", params)
        except OpenFoalError as exc:
            log.warning("OpenFoal: the cloud's gates are not listed: %s", exc.message)
            return []
        return [GateItem.model_validate(item) for item in payload.get("items", [])]

    async def resolve(
        self, gate_id: str, decision: str, reason: str | None, key: str | None
    ) -> GateResolveResult:
        """Decide a gate on the cloud, as the token's user."""
        params: dict[str, Any] = {
            "gateId": gate_id,
            "decision": decision,
            "idempotencyKey": key or uuid.uuid4().hex,
        }
        if reason is not None:
            params["reason"] = reason
        return GateResolveResult.model_validate(await self.call("policy-gate.resolve", params))

    async def resolve_here_or_there(
        self, ctx: RequestContext, gate_id: str, decision: str, reason: str | None, key: str | None
    ) -> GateResolveResult:
        """``policy-gate.resolve`` on a server with a cloud."""
        found = await self.gates.find(gate_id)
        if found is None:  # another user's gate: the cloud holds it
            return await self.resolve(gate_id, decision, reason, key)
        gate, _ = found
        if gate.status == "pending":
            try:  # the cloud arbitrates between this decision and an approver's
                await self.resolve(gate_id, decision, reason, key)
            except CloudUnreachable:
                log.warning("OpenFoal: cloud away; gate %s decided on this server only", gate_id)
            except OpenFoalError as exc:
                if exc.code == ErrorCode.VERSION_CONFLICT:
                    won = (exc.details or {}).get("gate")
                    if isinstance(won, dict):
                        await self.apply(GateItem.model_validate(won))
                    raise
                if exc.code != ErrorCode.NOT_FOUND:  # NOT_FOUND: not pushed yet, decide here
                    raise
        try:
            return await self.gates.resolve(ctx, gate_id, decision, reason)
        except OpenFoalError as exc:  # the poll applied this very decision first
            current = await self.gates.find(gate_id)
            if (
                exc.code == ErrorCode.VERSION_CONFLICT
                and current
                and current[0].resolvedBy == (ctx.user)
            ):
                return GateResolveResult(gate=current[0])
            raise

    # -- picking decisions up -------------------------------------------------------------

    async def apply(self, decided: GateItem) -> bool:
        """Apply a decision taken on the cloud to the local pending gate (once: a gate already
        decided here stays as it is). True when it was applied now."""
        if decided.status not in ("approved", "rejected") or decided.decision is None:
            return False
        ctx = RequestContext(
            user=decided.resolvedBy or self.user,
            trace_id=uuid.uuid4().hex,
            roles=frozenset({APPROVER, MEMBER}),
            team=True,
        )
        try:
            await self.gates.resolve(
                ctx, decided.gateId, decided.decision, decided.reason, approver_copy=False
            )
        except OpenFoalError as exc:
            if exc.code in (ErrorCode.VERSION_CONFLICT, ErrorCode.NOT_FOUND):
                return False
            raise  # SESSION_BUSY and the like: the next poll tries again
        return True

    async def poll_once(self) -> int:
        """Look for decisions on this server's pending gates; apply them. How many applied."""
        pending = {g.gateId for g in self.gates.pending()}
        new = pending - self._seen
        self._seen = pending
        if new and self.on_new_gate is not None:
            await self.gates.worker.commit()
            self.on_new_gate()
        if not pending:
            return 0
        applied = 0
        for status in ("approved", "rejected"):
            payload = await self.call(
                "policy-gate.list", {"status": status, "limit": max(100, 2 * len(pending))}
            )
            for item in payload.get("items", []):
                if item.get("gateId") in pending and await self.apply(
                    GateItem.model_validate(item)
                ):
                    applied += 1
        return applied

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll_once()
                delay = self.poll_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the cloud being away never stops local work
                log.warning("OpenFoal: gate decisions not pulled from the cloud: %s", exc)
                delay = max(self.poll_s, 1.0)
            await asyncio.sleep(delay)

    def start(self) -> None:
        """Start picking decisions up in the background."""
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Stop polling and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
