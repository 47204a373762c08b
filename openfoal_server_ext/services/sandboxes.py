"""Cloud mode on the gateway's side: a session's sandbox for each cloud turn, and its audit.

The container lifecycle itself (pool, reuse, cap, idle TTL, budget, orphans) lives in
:class:`openfoal_kernel.sandbox.host.manager.SandboxManager`; this service decides, per turn,
whether the turn runs in the sandbox, degrades when Docker is unavailable as the policy says
(``sandboxDegrade``: ``local``, ``read-only`` or ``fail``; unset, ``bashMode`` decides, see
:mod:`openfoal_kernel.policy.degrade`), or fails with ``SANDBOX_UNAVAILABLE``, and writes
every egress attempt to the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openfoal_kernel.policy.degrade import degrade_mode, degraded_policy
from openfoal_kernel.protocol import ErrorCode, OpenFoalError, Policy

from .audit import AuditService

log = logging.getLogger(__name__)

__all__ = ["Placement", "SandboxService"]

#: What a manager factory builds (kept loose so the Docker SDK loads only when used).
ManagerFactory = Callable[[Callable[[dict[str, Any]], None]], Any]


@dataclass(frozen=True)
class Placement:
    """Where one turn's tools run."""

    runtime_mode: str
    """``cloud`` or ``local`` (the effective mode of this turn)."""
    sandbox: dict[str, Any] | None = None
    """The sandbox handle for the kernel (cloud only)."""
    fallback_reason: str | None = None
    """Why a cloud turn runs locally, when it does."""
    policy: Policy | None = None
    """The policy the turn runs under instead of its own (a ``read-only`` degrade)."""


class SandboxService:
    """Sandboxes of the sessions of this server, created on demand."""

    def __init__(self, factory: ManagerFactory | None, audit: AuditService) -> None:
        self._factory = factory
        self.audit = audit
        self.manager: Any = None
        #: sessions holding their sandbox for a turn -> (trace id, run id) of that turn
        self._held: dict[str, tuple[str, str]] = {}

    def _get(self) -> Any:
        if self._factory is None:
            raise OpenFoalError(
                ErrorCode.SANDBOX_UNAVAILABLE,
                "cloud mode is disabled on this server (sandbox_enabled is False)",
            )
        if self.manager is None:
            self.manager = self._factory(self._on_egress)
        return self.manager

    async def start(self) -> None:
        """Remove orphans of dead server instances and fill the pool (Docker down: logged)."""
        if self._factory is None:
            return
        try:
            await self._get().start()
        except OpenFoalError as exc:
            log.warning("OpenFoal sandbox: %s", exc.message)

    async def stop(self) -> None:
        """Remove this instance's containers."""
        if self.manager is not None:
            await self.manager.aclose()

    async def place(
        self,
        *,
        session_id: str,
        owner: str,
        workspace: str,
        policy: Policy,
        trace_id: str,
        run_id: str,
    ) -> Placement:
        """Acquire the session's sandbox for a cloud turn, or decide the fallback.

        Raises SANDBOX_UNAVAILABLE (Docker down, cap reached, cloud disabled, and the policy
        keeps bash off the host) or BUDGET_EXCEEDED.
        """
        try:
            handle = await self._get().acquire(
                session_id, owner, Path(workspace), allow_hosts=list(policy.network.allow)
            )
        except OpenFoalError as exc:
            mode = degrade_mode(policy)
            if exc.code != ErrorCode.SANDBOX_UNAVAILABLE or mode == "fail":
                raise
            self.audit.record(
                actor=owner,
                owner=owner,
                action="sandbox.fallback",
                resource=f"session:{session_id}",
                trace_id=trace_id,
                session_id=session_id,
                run_id=run_id,
                detail={"reason": exc.message, "runtimeMode": "local", "degrade": mode},
            )
            log.warning(
                "OpenFoal sandbox: session %s runs locally (%s) this turn: %s",
                session_id,
                mode,
                exc.message,
            )
            degraded = degraded_policy(policy) if mode == "read-only" else None
            return Placement("local", fallback_reason=exc.message, policy=degraded)
        self._held[session_id] = (trace_id, run_id)
        return Placement("cloud", sandbox=handle.model_dump())

    async def release(self, session_id: str) -> None:
        """The session's turn ended: its sandbox waits for the next turn (idle TTL)."""
        if session_id in self._held and self.manager is not None:
            del self._held[session_id]
            await self.manager.release(session_id)

    async def remove(self, session_id: str) -> None:
        """The session was deleted: remove its sandbox (when Docker answers)."""
        if self.manager is None:
            return
        self._held.pop(session_id, None)
        try:
            await self.manager.remove(session_id)
        except OpenFoalError as exc:
            log.warning(
                "OpenFoal sandbox: cannot remove the sandbox of %s: %s", session_id, exc.message
            )

    def _on_egress(self, record: dict[str, Any]) -> None:
        owner = str(record.get("owner") or "")
        session_id = record.get("sessionId")
        trace_id, run_id = self._held.get(str(session_id), ("", ""))
        self.audit.record(
            actor=owner,
            owner=owner,
            action="sandbox.egress",
            resource=f"host:{record.get('host')}:{record.get('port')}",
            trace_id=trace_id,
            session_id=session_id,
            run_id=run_id or None,
            detail={
                k: record.get(k) for k in ("method", "host", "port", "allowed", "reason", "address")
            },
        )
