"""The run and gate services built from their parts around one run registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openfoal_kernel.protocol import ModelSettings, Policy

from ..kernels.orchestrator import KernelOrchestrator
from ..store import StoreWorker
from .audit import AuditService
from .autocompact import AutoCompaction
from .budgets import TokenBudgets
from .execution import RunExecutor
from .flush import MemoryFlush
from .forced_mode import ForcedLocal
from .gate_preview import gate_preview
from .gates import GateService
from .hub import EventHub
from .ingest import KernelEventIngest
from .launcher import RunLauncher
from .memory import MemoryService
from .modes import RuntimeModes
from .registry import RunRegistry
from .runs import RunService
from .sandboxes import SandboxService
from .sessions import SessionService
from .tool_ledger import ToolLedger
from .transcripts import TranscriptService


@dataclass(kw_only=True)
class RunServices:
    """What the gateway and the kernel orchestrator call into."""

    runs: RunService
    gates: GateService
    ingest: KernelEventIngest
    registry: RunRegistry


def build_run_services(
    *,
    worker: StoreWorker,
    hub: EventHub,
    sessions: SessionService,
    kernels: KernelOrchestrator,
    audit: AuditService,
    sandboxes: SandboxService,
    memory: MemoryService,
    model_settings: Callable[[str | None], ModelSettings],
    policy: Callable[[str], Policy],
    gate_timeout_s: Callable[[], int],
    workspace: str,
    default_owner: str,
    context_window: int = 128_000,
    flush_threshold: float = 0.75,
    token_budget: int = 0,
    compact_threshold: float = 0.9,
) -> RunServices:
    """Wire the registry, transcripts, executor, launcher, gates, ingest and memory flush."""
    registry = RunRegistry()
    budgets = TokenBudgets(worker, token_budget)
    transcripts = TranscriptService(worker)
    modes = RuntimeModes(worker=worker, hub=hub, sessions=sessions, registry=registry)
    executor = RunExecutor(
        worker=worker,
        hub=hub,
        sessions=sessions,
        kernels=kernels,
        sandboxes=sandboxes,
        registry=registry,
        transcripts=transcripts,
        modes=modes,
        workspace=workspace,
        context_window=context_window,
        budgets=budgets,
    )
    launcher = RunLauncher(
        worker=worker,
        hub=hub,
        sessions=sessions,
        kernels=kernels,
        registry=registry,
        transcripts=transcripts,
        executor=executor,
        memory=memory,
        audit=audit,
        model_settings=model_settings,
        policy=policy,
        workspace=workspace,
        budgets=budgets,
    )
    flush = MemoryFlush(
        sessions=sessions, registry=registry, launcher=launcher, threshold=flush_threshold
    )
    executor.on_idle(flush.after_run)
    compaction = AutoCompaction(
        sessions=sessions, registry=registry, launcher=launcher, threshold=compact_threshold
    )
    executor.on_idle(compaction.after_run)  # after the flush: a flush it starts goes first
    gates = GateService(
        worker=worker,
        hub=hub,
        sessions=sessions,
        audit=audit,
        registry=registry,
        continuer=launcher,
        timeout_s=gate_timeout_s,
        preview=lambda gate: gate_preview(Path(workspace), gate),
    )
    ledger = ToolLedger(worker, audit)
    forced = ForcedLocal(
        hub=hub,
        sessions=sessions,
        kernels=kernels,
        audit=audit,
        ledger=ledger,
        transcripts=transcripts,
        executor=executor,
        modes=modes,
    )
    ingest = KernelEventIngest(
        worker=worker,
        hub=hub,
        sessions=sessions,
        registry=registry,
        transcripts=transcripts,
        executor=executor,
        gates=gates,
        ledger=ledger,
        forced=forced,
        default_owner=default_owner,
    )
    runs = RunService(
        worker=worker,
        hub=hub,
        sessions=sessions,
        kernels=kernels,
        audit=audit,
        sandboxes=sandboxes,
        registry=registry,
        transcripts=transcripts,
        launcher=launcher,
        executor=executor,
        modes=modes,
        forced=forced,
    )
    return RunServices(runs=runs, gates=gates, ingest=ingest, registry=registry)
