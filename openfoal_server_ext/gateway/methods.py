"""The method table: params validation, idempotency, and the call into services.

Shared by the WebSocket and REST transports, so both speak exactly the same operations.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from openfoal_kernel.protocol import PROTOCOL_VERSION, ErrorCode, OpenFoalError, utcnow
from openfoal_kernel.protocol import methods as m
from openfoal_kernel.protocol import results as r
from openfoal_kernel.protocol.frames import EventFrame

from ..services.access import Access
from ..services.container import Services
from ..services.context import RequestContext
from ..services.export import SessionExporter
from ..services.model_config import ModelConfigService
from ..services.policy import DEFAULT_SCOPE
from ..services.roles import MEMBER, CrossUserRefusal
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
            "sessions.export": self._sessions_export,
            "model.get": self._model_get,
            "model.update": self._model_update,
            "kernels.attach": self._kernels_attach,
            "model.test": self._model_test,
            "sync.status": self._sync_status,
            "sync.resolve": self._sync_resolve,
            "sync.pause": self._sync_pause,
            "sync.resume": self._sync_resume,
            "sync.retry": self._sync_retry,
            "sync.discard": self._sync_discard,
        }

    @functools.cached_property
    def access(self) -> Access:
        """Who may read and change what (the server owner and admins see everything)."""
        return Access(self.s.config.server_owner, self.s.config.admin_users)

    def connect_payload(
        self, user: str, workspace_id: str | None, version: str = PROTOCOL_VERSION
    ) -> r.ConnectResult:
        """The payload answering ``connect`` (``version``: the one negotiated)."""
        return r.ConnectResult.model_validate(
            {
                "protocolVersion": version,
                "serverTime": utcnow().isoformat(),
                "user": {"name": user},
                "workspaceId": workspace_id or self.s.config.workspace_id,
                "role": self.s.config.role,
                "features": sorted(self.handlers),
            }
        )

    async def call(self, ctx: RequestContext, method: str, raw_params: Any) -> r.Result:
        """Run one method; raises :class:`OpenFoalError` for protocol errors.

        Refusals on identity (a user outside every team group, another user's resource, a
        forged ``resolvedBy``) are audited with both identities before they are answered.
        """
        if not self.s.ready.is_set():
            await self.s.ready.wait()  # the server is still loading its state
        try:
            if MEMBER not in ctx.roles:
                groups = ", ".join(self.s.config.team.all_groups())
                raise CrossUserRefusal(
                    f"user {ctx.user!r} is in none of this server's OpenFoal groups ({groups})",
                    owner=ctx.user,
                    resource=f"method:{method}",
                )
            return await self._call(ctx, method, raw_params)
        except CrossUserRefusal as exc:
            await self._audit_refusal(ctx, method, exc)
            raise

    async def _audit_refusal(self, ctx: RequestContext, method: str, exc: CrossUserRefusal) -> None:
        """Put a refusal on the trail of the resource's owner, naming both users."""
        await self.s.audit.record_now(
            actor=ctx.user,
            owner=exc.owner,
            action="access.denied",
            resource=exc.resource,
            trace_id=ctx.trace_id,
            detail={
                "method": method,
                "reason": exc.message,
                "actor": ctx.user,
                "owner": exc.owner,
                "roles": sorted(ctx.roles),
            },
        )

    async def _call(self, ctx: RequestContext, method: str, raw_params: Any) -> r.Result:
        if method not in m.METHOD_PARAMS or method == "connect":
            raise OpenFoalError(ErrorCode.METHOD_NOT_FOUND, f"unknown method {method!r}")
        self.s.rate_limiter.check(ctx.user, method)
        handler = self.handlers.get(method)
        if handler is None:
            raise OpenFoalError(
                ErrorCode.METHOD_NOT_FOUND,
                f"{method} is part of the protocol but not available on this server yet",
            )
        params = parse_params(method, raw_params)
        if isinstance(params, m.SideEffectParams):

            async def action() -> dict[str, Any]:
                try:
                    return (await handler(ctx, params)).wire()
                except CrossUserRefusal as exc:
                    # audited once, when it happens: a replay returns the stored refusal
                    await self._audit_refusal(ctx, method, exc)
                    raise

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
                raise OpenFoalError(
                    err["code"],
                    err["message"],
                    retryable=err.get("retryable"),
                    details=err.get("details"),
                )
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
        return await self.s.runs.set_mode(ctx, p.sessionId, p.runtimeMode, force=p.force)

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
        return await self.s.memory.get(p.path, ctx.user)

    async def _memory_append(
        self, ctx: RequestContext, p: m.MemoryAppendDailyParams
    ) -> r.MemoryAppendResult:
        return await self.s.memory.append_daily(p.text, p.alsoLongTerm, ctx.user)

    async def _memory_archive(
        self, ctx: RequestContext, p: m.MemoryArchiveParams
    ) -> r.MemoryArchiveResult:
        return await self.s.memory.archive(p.date, p.clearDaily, ctx.user)

    async def _policy_get(self, ctx: RequestContext, p: m.PolicyGetParams) -> r.PolicyResult:
        self.access.policy_read(
            ctx.user, p.scopeKey, self._session_owner, team_admin=ctx.is_team_admin
        )
        result = r.PolicyResult(policy=self.s.policies.current(p.scopeKey))
        if p.history:
            result.history = await self.s.policies.history(p.scopeKey)
        if p.diff is not None:
            changes = await self.s.policies.diff_versions(p.scopeKey, p.diff.from_, p.diff.to)
            result.diff = r.PolicyDiff.model_validate(changes)
        return result

    def _session_owner(self, session_id: str) -> str | None:
        session = self.s.sessions.peek(session_id)
        return session.owner if session is not None else None

    async def _policy_update(self, ctx: RequestContext, p: m.PolicyUpdateParams) -> r.PolicyResult:
        if ctx.team and not ctx.is_admin and (p.scopeKey or DEFAULT_SCOPE) == DEFAULT_SCOPE:
            groups = ", ".join(self.s.config.team.admin_groups) or "none configured"
            raise CrossUserRefusal(
                f"editing the team policy needs an admin group ({groups})",
                owner=ctx.user,
                resource=f"policy:{p.scopeKey or 'default'}",
            )
        governs = self.access.policy_write(
            ctx.user, p.scopeKey, self._session_owner, team_admin=ctx.is_team_admin
        )
        policy = await self.s.policies.update(
            governs=governs,
            actor=ctx.user,
            trace_id=ctx.trace_id,
            scope_key=p.scopeKey,
            patch=p.patch,
            expected_version=p.expectedVersion,
        )
        return r.PolicyResult(policy=policy)

    async def _gate_list(self, ctx: RequestContext, p: m.GateListParams) -> r.GateListResult:
        filters: dict[str, Any] = {
            "status": p.status,
            "session_id": p.sessionId,
            "limit": p.limit,
            "tool_name": p.toolName,
            "gate_id": p.gateId,
        }
        items = await self.s.gates.list(ctx, **filters)
        cloud = self.s.cloud_gates
        if cloud is not None:  # the team's gates, as the cloud lets this server's user see them
            here = {g.gateId for g in items}
            remote = await cloud.list(**filters)
            items += [g for g in remote if g.gateId not in here]
            items.sort(key=lambda g: g.createdAt, reverse=True)
            items = items[: p.limit]
        return r.GateListResult(items=items)

    async def _gate_resolve(
        self, ctx: RequestContext, p: m.GateResolveParams
    ) -> r.GateResolveResult:
        claimed = (p.model_extra or {}).get("resolvedBy")
        if claimed is not None and claimed != ctx.user:
            raise CrossUserRefusal(
                f"resolvedBy is the caller's identity ({ctx.user!r}) and cannot name {claimed!r}",
                owner=self.s.gates.owner_of(p.gateId) or ctx.user,
                resource=f"gate:{p.gateId}",
            )
        cloud = self.s.cloud_gates
        if cloud is not None:
            return await cloud.resolve_here_or_there(
                ctx, p.gateId, p.decision, p.reason, p.idempotencyKey
            )
        return await self.s.gates.resolve(ctx, p.gateId, p.decision, p.reason)

    async def _audit_query(self, ctx: RequestContext, p: m.AuditQueryParams) -> r.AuditQueryResult:
        if ctx.is_team_admin:
            return await self.s.audit.query(None, p)
        if p.sessionId is not None:
            session = self.s.sessions.peek(p.sessionId)
            if session is not None and session.owner != ctx.user:
                raise CrossUserRefusal(
                    "this session's audit belongs to another user",
                    owner=session.owner,
                    resource=p.sessionId,
                )
        if p.runId is not None:
            await self.s.worker.commit()
            run = await self.s.worker.call(self.s.worker.store.get_run, p.runId)
            if run is not None and run.owner != ctx.user:
                raise CrossUserRefusal(
                    "this run's audit belongs to another user",
                    owner=run.owner,
                    resource=f"run:{p.runId}",
                )
        return await self.s.audit.query(ctx.user, p)

    async def _audit_replay(
        self, ctx: RequestContext, p: m.AuditReplayParams
    ) -> r.AuditReplayResult:
        return await self.s.audit.replay(ctx.user, p.runId)

    async def _metrics(
        self, ctx: RequestContext, p: m.MetricsSummaryParams
    ) -> r.MetricsSummaryResult:
        owner = None if self.access.is_admin(ctx.user, team_admin=ctx.is_team_admin) else ctx.user
        return await self.s.metrics.summary(p.from_, p.to, p.bucket, owner=owner)

    async def _sessions_export(
        self, ctx: RequestContext, p: m.SessionsExportParams
    ) -> r.SessionsExportResult:
        exporter = SessionExporter(self.s.worker, self.s.sessions)
        return await exporter.export(ctx.user, p.sessionId)

    # -- model settings (the console's form) ------------------------------------------------
    def _models(self) -> ModelConfigService:
        if self.s.models is None:
            raise OpenFoalError(
                ErrorCode.METHOD_NOT_FOUND, "this server keeps no model settings of its own"
            )
        return self.s.models

    async def _model_get(self, ctx: RequestContext, p: m.ModelGetParams) -> r.ModelGetResult:
        return self._models().get(ctx)

    async def _model_update(self, ctx: RequestContext, p: m.ModelUpdateParams) -> r.ModelGetResult:
        return await self._models().update(ctx, p)

    async def _model_test(self, ctx: RequestContext, p: m.ModelTestParams) -> r.ModelTestResult:
        return await self._models().test(ctx, p)

    async def _kernels_attach(
        self, ctx: RequestContext, p: m.KernelsAttachParams
    ) -> r.KernelsAttachResult:
        if ctx.user != self.s.config.server_owner:
            raise OpenFoalError(
                ErrorCode.FORBIDDEN, "only the server's owner may attach a kernel to it"
            )
        kernel_id = await self.s.kernels.attach_external(p.connection.model_dump())
        return r.KernelsAttachResult(kernelId=kernel_id)

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
