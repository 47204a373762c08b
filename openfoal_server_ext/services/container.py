"""The services of one server, wired together (built by the extension app at start-up)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..kernels.orchestrator import KernelOrchestrator
from ..store import StoreWorker
from .audit import AuditService
from .gates import GateService
from .hub import EventHub
from .idempotency import IdempotencyService
from .memory import MemoryService
from .metrics import MetricsService
from .policy import PolicyService
from .runs import RunService
from .sandboxes import SandboxService
from .sessions import SessionService
from .sync import SyncService
from .sync_cloud import SyncReceiver


@dataclass(kw_only=True)
class GatewayConfig:
    """Settings the gateway needs at request time."""

    workspace_id: str = "default"
    role: str = "local"
    max_frame_bytes: int = 8 * 1024 * 1024
    pre_connect_max_bytes: int = 64 * 1024
    send_queue_frames: int = 50_000
    server_owner: str = "user"


@dataclass(kw_only=True)
class Services:
    """Everything handlers call."""

    config: GatewayConfig
    worker: StoreWorker
    hub: EventHub
    sessions: SessionService
    runs: RunService
    idempotency: IdempotencyService
    kernels: KernelOrchestrator
    memory: MemoryService
    policies: PolicyService
    gates: GateService
    audit: AuditService
    metrics: MetricsService
    sandboxes: SandboxService
    #: Sync state and actions (``None`` only in unit tests that do not need it).
    sync: SyncService | None = None
    #: The intake of pushed batches (a cloud instance only).
    receiver: SyncReceiver | None = None
    #: Set once state is loaded and crash recovery is done; requests wait for it.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
