"""The services of one server, wired together (built by the extension app at start-up)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..kernels.orchestrator import KernelOrchestrator
from ..store import StoreWorker
from .audit import AuditService
from .gate_routing import CloudGates
from .gates import GateService
from .hub import EventHub
from .idempotency import IdempotencyService
from .memory import MemoryService
from .metrics import MetricsService
from .model_config import ModelConfigService
from .policy import PolicyService
from .ratelimit import RateLimiter
from .roles import TeamRoles
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
    send_buffer_bytes: int = 8 * 1024 * 1024
    server_owner: str = "user"
    #: Users who, like the server owner, may change the default policy and see everyone's metrics.
    admin_users: frozenset[str] = frozenset()
    team: TeamRoles = field(default_factory=TeamRoles)


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
    #: Token buckets per user and method class (docs/limits.md).
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    #: The console's saved model settings (``model.*``); ``None``: those methods are absent.
    models: ModelConfigService | None = None
    #: Sync state and actions (``None`` only in unit tests that do not need it).
    sync: SyncService | None = None
    #: The intake of pushed batches (a cloud instance only).
    receiver: SyncReceiver | None = None
    #: Approval routing through the cloud (a user's server with a cloud only).
    cloud_gates: CloudGates | None = None
    #: Set once state is loaded and crash recovery is done; requests wait for it.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
