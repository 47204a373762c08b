"""Policy: versioned per scope, changed only with the expected version, every change audited."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from openfoal_kernel.protocol import ErrorCode, OpenFoalError, Policy, utcnow
from openfoal_kernel.protocol.events import POLICY_UPDATED

from ..store import StoreWorker
from .audit import AuditService
from .hub import EventHub

#: Fields a patch may change (the rest are maintained by the server).
PATCHABLE = frozenset({"toolDefault", "highRisk", "bashMode", "tools", "network", "gateTimeoutSec"})


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {k: {"from": old.get(k), "to": new.get(k)} for k in PATCHABLE if old.get(k) != new.get(k)}


class PolicyService:
    """The current policy of each scope, and its history in the store."""

    def __init__(self, worker: StoreWorker, hub: EventHub, audit: AuditService) -> None:
        self.worker = worker
        self.hub = hub
        self.audit = audit
        self._current: dict[str, Policy] = {}

    async def start(self) -> None:
        """Load the newest versions; a fresh store gets the default policy as version 1."""
        self._current = await self.worker.call(self.worker.store.latest_policies)
        if "default" not in self._current:
            policy = Policy(updatedBy="system")
            self._current["default"] = policy
            self.worker.stage_policy(policy)
            self.audit.record(actor="system", owner="", action="policy.create",
                              resource="policy:default", trace_id="0" * 32,
                              detail={"policy": policy.wire()})
            await self.worker.commit()

    def current(self, scope_key: str = "default") -> Policy:
        """The policy in force for a scope (unknown scopes fall back to ``default``)."""
        return self._current.get(scope_key) or self._current["default"]

    async def update(self, *, actor: str, trace_id: str, scope_key: str, patch: dict[str, Any],
                     expected_version: int | None) -> Policy:
        """Apply a patch as a new version; VERSION_CONFLICT when ``expected_version`` is stale."""
        unknown = set(patch) - PATCHABLE
        if unknown:
            raise OpenFoalError(ErrorCode.INVALID_REQUEST,
                                f"patch: {', '.join(sorted(unknown))} cannot be changed; "
                                f"patchable fields: {', '.join(sorted(PATCHABLE))}")
        current = self.current(scope_key)
        if expected_version is not None and expected_version != current.version:
            raise OpenFoalError(ErrorCode.VERSION_CONFLICT,
                                f"policy is at version {current.version}, not {expected_version}",
                                details={"currentVersion": current.version})
        old = current.model_dump(mode="json")
        merged = {**old, **patch, "scopeKey": scope_key, "version": current.version + 1,
                  "updatedAt": utcnow(), "updatedBy": actor}
        try:
            policy = Policy.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(x) for x in first["loc"])
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"patch.{where}: {first['msg']}") from exc
        self._current[scope_key] = policy
        self.worker.stage_policy(policy)
        await self.audit.record_now(actor=actor, owner=actor, action="policy.update",
                                    resource=f"policy:{scope_key}", trace_id=trace_id,
                                    detail={"version": policy.version,
                                            "diff": _diff(old, policy.model_dump(mode="json"))})
        self.hub.broadcast(POLICY_UPDATED, {"policy": policy.wire()})
        return policy
