"""The method table: params validation, idempotency, and the call into services.

Shared by the WebSocket and REST transports, so both speak exactly the same operations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from openfoal_kernel.protocol import PROTOCOL_VERSION, ErrorCode, OpenFoalError, utcnow
from openfoal_kernel.protocol import methods as m
from openfoal_kernel.protocol import results as r
from openfoal_kernel.protocol.frames import EventFrame

from ..services.container import Services
from ..services.context import RequestContext
from ..services.sync import SyncService

Handler = Callable[[RequestContext, Any], Awaitable[r.Result]]


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(x) for x in err["loc"]) or "params"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid params: " + "; ".join(parts)


def parse_params(method: str, params: Any) -> BaseModel:
    """Validate ``params`` for ``method``; INVALID_REQUEST with field details otherwise."""
    model = m.METHOD_PARAMS[method]
    if not isinstance(params, dict):
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, "params must be a JSON object")
    if issubclass(model, m.SideEffectParams) and not params.get("idempotencyKey"):
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST,
            f"{method} has a side effect: params.idempotencyKey is required",
        )
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST,
            _validation_message(exc),
            details={"errors": exc.errors(include_url=False, include_input=False)},
        ) from exc


class Gateway:
    """Dispatches protocol methods to services; every answer is a result model."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.handlers: dict[str, Handler] = {
            "agent.run": self._agent_run,
            "agent.abort": self._agent_abort,
            "runtime.setMode": self._set_mode,
            "sessions.list": self._sessions_list,
            "sessions.get": self._sessions_get,
            "sessions.delete": self._sessions_delete,
            "policy.get": self._policy_get,
            "policy.update": self._policy_update,
            "policy-gate.list": self._gate_list,
            "policy-gate.resolve": self._gate_resolve,
            "audit.query": self._audit_query,
            "audit.replay": self._audit_replay,
            "metrics.summary": self._metrics,
            "memory.get": self._memory_get,
            "memory.appendDaily": self._memory_append,
            "memory.archive": self._memory_archive,
            "sync.status": self._sync_status,
            "sync.resolve": self._sync_resolve,
            "sync.pause": self._sync_pause,
            "sync.resume": self._sync_resume,
            "sync.retry": self._sync_retry,
            "sync.discard": self._sync_discard,
        }

    def connect_payload(self, user: str, workspace_id: str | None) -> r.ConnectResult:
        """The payload answering ``connect``."""
        return r.ConnectResult.model_validate(
            {
                "protocolVersion": PROTOCOL_VERSION,
                "serverTime": utcnow().isoformat(),
                "user": {"name": user},
                "workspaceId": workspace_id or self.s.config.workspace_id,
                "role": self.s.config.role,
                "features": sorted(self.handlers),
            }
        )

    async def call(self, ctx: RequestContext, method: str, raw_params: Any) -> r.Result:
        """Run one method; raises :class:`OpenFoalError` for protocol errors."""
        if not self.s.ready.is_set():
            await self.s.ready.wait()  # the server is still loading its state
        if method not in m.METHOD_PARAMS or method == "connect":
            raise OpenFoalError(ErrorCode.METHOD_NOT_FOUND, f"unknown method {method!r}")
        handler = self.handlers.get(method)
        if handler is None:
            raise OpenFoalError(
                ErrorCode.METHOD_NOT_FOUND,
                f"{method} is part of the protocol but not available on this server yet",
            )
        params = parse_params(method, raw_params)
        if isinstance(params, m.SideEffectParams):

            async def action() -> dict[str, Any]:
                return (await handler(ctx, params)).wire()

            outcome = await self.s.idempotency.run(
                method=method,
                key=params.idempotencyKey,
                actor=ctx.user,
                session_id=getattr(params, "sessionId", None),
                params=raw_params,
                action=action,
            )
            if not outcome["ok"]:
                err = outcome["error"]
                raise OpenFoalError(err["code"], err["message"], retryable=err.get("retryable"))
            result = r.METHOD_RESULTS[method].model_validate(outcome["payload"])
            if isinstance(result, r.AgentRunResult):
                ctx.subscribe(result.sessionId)
            return result
        return await handler(ctx, params)

    # -- handlers -------------------------------------------------------------------------
    async def _agent_run(self, ctx: RequestContext, p: m.AgentRunParams) -> r.AgentRunResult:
        return await self.s.runs.start_run(ctx, p)

    async def _agent_abort(self, ctx: RequestContext, p: m.AgentAbortParams) -> r.AgentAbortResult:
        return await self.s.runs.abort(ctx, p.runId)

    async def _set_mode(self, ctx: RequestContext, p: m.RuntimeSetModeParams) -> r.SetModeResult:
        return await self.s.runs.set_mode(ctx, p.sessionId, p.runtimeMode)

    async def _sessions_list(
        self, ctx: RequestContext, p: m.SessionsListParams
    ) -> r.SessionsListResult:
        items, cursor = await self.s.sessions.list(
            ctx.user, limit=p.limit, cursor=p.cursor, query=p.query
        )
        return r.SessionsListResult(items=items, nextCursor=cursor)

    async def _sessions_delete(
        self, ctx: RequestContext, p: m.SessionsDeleteParams
    ) -> r.SessionsDeleteResult:
        return await self.s.runs.delete_session(ctx, p.sessionId)

    async def _sessions_get(
        self, ctx: RequestContext, p: m.SessionsGetParams
    ) -> r.SessionsGetResult:
        session = self.s.sessions.get_owned(ctx.user, p.sessionId)
        ctx.subscribe(session.id)
        await self.s.worker.commit()
        result = r.SessionsGetResult(session=session)
        if p.includeMessages:
            rows = await self.s.worker.call(self.s.worker.store.get_messages, session.id)
            result.messages = [
                r.StoredMessage(
                    idx=row.idx,
                    runId=row.run_id,
                    at=row.at.isoformat(),
                    **row.message.model_dump(exclude_none=True),
                )
                for row in rows
            ]
        if p.afterSeq is not None:
            events = await self.s.worker.call(
                self.s.worker.store.get_events, session.id, after_seq=p.afterSeq, limit=p.limit
            )
            result.events = [
                EventFrame(
                    event=e.event, payload=e.payload, seq=e.seq, stateVersion=e.state_version
                )
                for e in events
            ]
            result.lastSeq = self.s.hub.last_seq(session.id)
        return result

    async def _memory_get(self, ctx: RequestContext, p: m.MemoryGetParams) -> r.MemoryGetResult:
        return await self.s.memory.get(p.path)

    async def _memory_append(
        self, ctx: RequestContext, p: m.MemoryAppendDailyParams
    ) -> r.MemoryAppendResult:
        return await self.s.memory.append_daily(p.text, p.alsoLongTerm)

    async def _memory_archive(
        self, ctx: RequestContext, p: m.MemoryArchiveParams
    ) -> r.MemoryArchiveResult:
        return await self.s.memory.archive(p.date, p.clearDaily)

    async def _policy_get(self, ctx: RequestContext, p: m.PolicyGetParams) -> r.PolicyResult:
        return r.PolicyResult(policy=self.s.policies.current(p.scopeKey))

    async def _policy_update(self, ctx: RequestContext, p: m.PolicyUpdateParams) -> r.PolicyResult:
        policy = await self.s.policies.update(
            actor=ctx.user,
            trace_id=ctx.trace_id,
            scope_key=p.scopeKey,
            patch=p.patch,
            expected_version=p.expectedVersion,
        )
        return r.PolicyResult(policy=policy)

    async def _gate_list(self, ctx: RequestContext, p: m.GateListParams) -> r.GateListResult:
        items = await self.s.gates.list(ctx, status=p.status, session_id=p.sessionId, limit=p.limit)
        return r.GateListResult(items=items)

    async def _gate_resolve(
        self, ctx: RequestContext, p: m.GateResolveParams
    ) -> r.GateResolveResult:
        return await self.s.gates.resolve(ctx, p.gateId, p.decision, p.reason)

    async def _audit_query(self, ctx: RequestContext, p: m.AuditQueryParams) -> r.AuditQueryResult:
        return await self.s.audit.query(ctx.user, p)

    async def _audit_replay(
        self, ctx: RequestContext, p: m.AuditReplayParams
    ) -> r.AuditReplayResult:
        return await self.s.audit.replay(ctx.user, p.runId)

    async def _metrics(
        self, ctx: RequestContext, p: m.MetricsSummaryParams
    ) -> r.MetricsSummaryResult:
        return await self.s.metrics.summary(p.from_, p.to)

    # -- sync -----------------------------------------------------------------------------
    def _sync(self) -> SyncService:
        if self.s.sync is None:
            raise OpenFoalError(ErrorCode.METHOD_NOT_FOUND, "sync is not available here")
        return self.s.sync

    async def _sync_status(self, ctx: RequestContext, p: m.SyncStatusParams) -> r.SyncStatusResult:
        return await self._sync().status(ctx.user)

    async def _sync_resolve(
        self, ctx: RequestContext, p: m.SyncResolveParams
    ) -> r.SyncResolveResult:
        return await self._sync().resolve(ctx, p.sessionId, p.resolution)

    async def _sync_pause(self, ctx: RequestContext, p: m.SyncPauseParams) -> r.SyncStatusResult:
        return await self._sync().set_paused(ctx.user, True)

    async def _sync_resume(self, ctx: RequestContext, p: m.SyncResumeParams) -> r.SyncStatusResult:
        return await self._sync().set_paused(ctx.user, False)

    async def _sync_retry(self, ctx: RequestContext, p: m.SyncRetryParams) -> r.SyncStatusResult:
        return await self._sync().retry(ctx.user, p.ids)

    async def _sync_discard(
        self, ctx: RequestContext, p: m.SyncDiscardParams
    ) -> r.SyncStatusResult:
        return await self._sync().discard(ctx.user, p.ids)
