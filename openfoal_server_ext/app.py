"""The OpenFoal server extension: the gateway, its services and the store, in one ExtensionApp.

Every tunable is a traitlet: ``c.OpenFoalApp.<name>``, and on the parts it builds,
``c.SandboxManager.<name>`` and ``c.KernelOrchestrator.<name>``. Model settings default to
the usual environment variables (OPENFOAL_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY,
ANTHROPIC_BASE_URL) so that either way of configuring works.
"""

from __future__ import annotations

import asyncio
import gc
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Enum, Float, Int, List, Type, Unicode, default

from openfoal_kernel.policy.published import POLICY_FILE_ENV
from openfoal_kernel.protocol import ErrorCode, ModelSettings, OpenFoalError
from openfoal_kernel.sandbox.host.manager import SandboxManager

from .gateway.handlers import GatewayAPIHandler, GatewayWebSocketHandler, OpenAPIHandler
from .gateway.identity import default_server_owner
from .gateway.methods import Gateway
from .gateway.sync_handlers import (
    SyncBatchesHandler,
    SyncConflictsHandler,
    SyncResolutionsHandler,
)
from .kernels.bridge import EventCallback
from .kernels.orchestrator import KERNEL_ACTIONS_SCHEMA, KernelOrchestrator, LostCallback
from .services import otel
from .services.assembly import RunServices, build_run_services
from .services.audit import AuditService
from .services.container import GatewayConfig, Services
from .services.gate_routing import CloudGates
from .services.gates import GateService
from .services.hub import EventHub
from .services.idempotency import IdempotencyService
from .services.memory import MemoryService
from .services.metrics import MetricsService
from .services.model_config import ModelConfigService
from .services.policy import PolicyService
from .services.ratelimit import DEFAULT_LIMITS, RateLimiter
from .services.roles import TeamRoles
from .services.runs import RunService
from .services.sandboxes import SandboxService
from .services.session_policy import SessionPolicies
from .services.sessions import SessionService
from .services.sync import SyncService
from .services.sync_cloud import SyncReceiver
from .services.team_policy import TeamPolicyPoller
from .store import DuckDBStore, Store, StoreWorker
from .store.postgres import PostgresStore
from .store.select import open_configured_store
from .sync.intake import SyncIntake
from .sync.pusher import SyncWorker

#: The built-in scripted demo model (``OPENFOAL_MODEL=demo``), which any run may pick.
DEMO_MODEL = "demo"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


class OpenFoalApp(ExtensionApp):
    """OpenFoal gateway: WebSocket protocol, console REST API, sessions, runs, store."""

    name = "openfoal_server_ext"
    load_other_extensions = True
    classes = [*ExtensionApp.classes, SandboxManager, KernelOrchestrator, SyncWorker]
    #: The console's saved model settings (built with the services).
    models: ModelConfigService | None = None

    # -- models ---------------------------------------------------------------------------
    model = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Model as provider:model (openai:gpt-4.1-mini, anthropic:claude-sonnet-4-5, "
        "demo). Default: $OPENFOAL_MODEL, else none (runs explain how to set one).",
    )
    fallback_models = List(
        Unicode(),
        config=True,
        help="Models tried in order when the main one fails. Default: "
        "$OPENFOAL_FALLBACK_MODELS (comma separated), else [].",
    )
    allowed_models = List(
        Unicode(),
        config=True,
        help="Models a client may pick per run; [] (default) allows only the "
        "configured model and its fallbacks.",
    )
    openai_api_key = Unicode(None, allow_none=True, config=True, help="Default: $OPENAI_API_KEY.")
    openai_base_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Any OpenAI-compatible server (vLLM, Ollama, llama.cpp). "
        "Default: $OPENAI_BASE_URL, else https://api.openai.com/v1.",
    )
    anthropic_api_key = Unicode(
        None, allow_none=True, config=True, help="Default: $ANTHROPIC_API_KEY."
    )
    anthropic_base_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Default: $ANTHROPIC_BASE_URL, else https://api.anthropic.com.",
    )
    model_timeout = Float(
        60.0, config=True, help="Seconds before a model request times out (default 60)."
    )
    model_max_retries = Int(
        2, config=True, help="Retries per model on timeouts/429/5xx (default 2)."
    )
    model_backoff_cap = Float(
        8.0, config=True, help="Cap of the jittered backoff, seconds (default 8)."
    )
    model_settings_file = Unicode(
        "",
        config=True,
        help="Where the console saves the model settings (mode 0600). Default: "
        "<jupyter_config_dir>/openfoal/model.json. Config and environment win over it.",
    )

    # -- runtime --------------------------------------------------------------------------
    kernel_orchestrator_class = Type(
        klass=KernelOrchestrator,
        default_value=KernelOrchestrator,
        config=True,
        help="The agent kernels' orchestrator (a KernelOrchestrator subclass; default "
        "KernelOrchestrator), tuned by c.KernelOrchestrator.*.",
    )
    workspace_dir = Unicode(
        "", config=True, help="Workspace of the agent's tools. Default: the server's root_dir."
    )

    # -- store and protocol ---------------------------------------------------------------
    store_class = Type(
        klass=Store,
        config=True,
        help="The store class (a subclass of openfoal_server_ext.store.Store). Default:"
        " PostgresStore when database_url is set, else DuckDBStore (built with db_path).",
    )
    db_path = Unicode(
        "", config=True, help="DuckDB file. Default: <root_dir>/.openfoal/openfoal.duckdb."
    )
    role = Enum(
        ["local", "cloud"], config=True, help="local (default) or cloud instance. $OPENFOAL_ROLE."
    )
    database_url = Unicode(
        config=True,
        help="Postgres URL of a cloud store (instead of DuckDB). $OPENFOAL_DATABASE_URL.",
    )
    object_store_url = Unicode(
        config=True,
        help="s3://bucket/prefix for large blobs of the Postgres store (endpoint and keys in "
        "AWS_*). $OPENFOAL_OBJECT_STORE_URL.",
    )
    workspace_id = Unicode(
        "default", config=True, help="Workspace id reported to clients (default 'default')."
    )
    server_owner = Unicode(
        config=True,
        help="Owner of sessions on a single-user server. "
        "Default: $JUPYTERHUB_USER, else the OS user.",
    )
    max_frame_bytes = Int(
        8 * 1024 * 1024, config=True, help="Largest frame after connect (default 8 MiB)."
    )
    send_queue_frames = Int(
        50_000,
        config=True,
        help="Frames buffered per client before a slow client is disconnected (default 50000).",
    )
    send_buffer_bytes = Int(
        8 * 1024 * 1024,
        config=True,
        help="Bytes buffered per client (queued, or written and not yet flushed) before a "
        "slow client is closed with 1013 (default 8 MiB).",
    )
    admin_users = List(
        Unicode(),
        config=True,
        help="Users who, besides the server owner, may change the 'default' policy and any "
        "user's scope, and whose metrics.summary counts every user's runs (default none).",
    )
    rate_limits = Dict(
        config=True,
        help="Token buckets per user and method class, 'RATE/BURST' ('0': no limit), laid over "
        f"the defaults {DEFAULT_LIMITS} (classes: run = agent.run, agent.abort, "
        "runtime.setMode; write = other changes; read = the rest). Past one: RATE_LIMITED.",
    )
    idempotency_ttl_hours = Float(
        24.0, config=True, help="Idempotency records kept this long (default 24 h)."
    )
    commit_window_ms = Float(
        50.0, config=True, help="Deltas are committed within this many ms (default 50)."
    )
    context_window_tokens = Int(
        128_000,
        config=True,
        help="Context window assumed for contextUsage (default 128000 tokens).",
    )
    auto_compact_threshold = Float(
        0.9,
        config=True,
        help="contextUsage at which the gateway compacts a session by itself once it is "
        "idle, as /compact would (after a pending memory flush); 0 turns it off (default 0.9).",
    )
    session_token_budget = Int(
        0,
        config=True,
        help="Model tokens (input + output) each session may use over all its runs; a run "
        "that would pass it ends with BUDGET_EXCEEDED, and later turns are refused "
        "(default 0: no budget).",
    )
    memory_flush_threshold = Float(
        0.75,
        config=True,
        help="contextUsage at which a silent memory flush runs, once per "
        "compaction cycle (default 0.75).",
    )
    start_pool = Bool(
        True, config=True, help="Pre-start the kernel pool at server start (default True)."
    )
    otel = Bool(
        None,
        allow_none=True,
        config=True,
        help="Export OpenTelemetry traces over OTLP/HTTP (needs the 'otel' extra). "
        "Default: when the OTEL_* variables ask for it (docs/observability.md).",
    )

    # -- teams: roles from JupyterHub groups -------------------------------------------------
    member_groups = List(
        Unicode(),
        config=True,
        help="Hub groups whose users may use OpenFoal here. [] (default): any Hub user "
        "who reaches the server, once any role group below is set.",
    )
    approver_groups = List(
        Unicode(),
        config=True,
        help="Hub groups that resolve gates of other users' sessions (default []), "
        'e.g. ["openfoal-approvers"].',
    )
    admin_groups = List(
        Unicode(),
        config=True,
        help="Hub groups that edit the team policy and read every user's audit "
        '(default []), e.g. ["openfoal-admins"]. With all three lists empty there are no '
        "team roles: nobody acts on another user's sessions.",
    )

    team_policy_url = Unicode(
        config=True,
        help="Base URL of the team's cloud instance (e.g. {hub}/services/openfoal/) whose "
        "policy this server pulls and never loosens. Default: $OPENFOAL_TEAM_POLICY_URL, "
        "else none.",
    )
    team_policy_token = Unicode(
        config=True,
        help="Token for team_policy_url. Default: $OPENFOAL_TEAM_POLICY_TOKEN, else "
        "$JUPYTERHUB_API_TOKEN (the Hub's token of this server).",
    )
    team_policy_poll_s = Float(
        5.0, config=True, help="Seconds between pulls of the team policy (default 5)."
    )

    @default("team_policy_url")
    def _team_policy_url_default(self) -> str:
        return _env("OPENFOAL_TEAM_POLICY_URL") or ""

    @default("team_policy_token")
    def _team_policy_token_default(self) -> str:
        return _env("OPENFOAL_TEAM_POLICY_TOKEN") or _env("JUPYTERHUB_API_TOKEN") or ""

    # -- cloud mode: the per-session Docker sandbox ------------------------------------------
    sandbox_enabled = Bool(
        True, config=True, help="Offer cloud mode (tools in a per-session Docker container)."
    )
    sandbox_manager_class = Type(
        klass=SandboxManager,
        default_value=SandboxManager,
        config=True,
        help="The sandbox manager (a SandboxManager subclass; default SandboxManager), "
        "tuned by c.SandboxManager.* (image, pool_size, max_live, idle_ttl, budget, ...).",
    )

    # -- sync to the cloud instance (see docs/cloud.md) -------------------------------------
    cloud_url = Unicode(
        config=True,
        help="Base URL of the team's cloud instance to push this server's outbox to "
        "(https://host/...); empty (default): no sync. $OPENFOAL_CLOUD_URL. Tuned by "
        "c.SyncWorker.*.",
    )
    cloud_token = Unicode(
        config=True,
        help="Token this server pushes with (the user's). $OPENFOAL_CLOUD_TOKEN, else "
        "$JUPYTERHUB_API_TOKEN (on a Hub, the token the Hub gives this user's server).",
    )
    sync_tokens = Dict(
        value_trait=Unicode(),
        config=True,
        help="cloud role: sync token -> user it authenticates (besides Jupyter's own "
        "identity, e.g. Hub tokens). Default: $OPENFOAL_SYNC_TOKENS as token=user,...",
    )

    @default("cloud_url")
    def _cloud_url_default(self) -> str:
        return _env("OPENFOAL_CLOUD_URL") or ""

    @default("cloud_token")
    def _cloud_token_default(self) -> str:
        return _env("OPENFOAL_CLOUD_TOKEN") or _env("JUPYTERHUB_API_TOKEN") or ""

    @default("sync_tokens")
    def _sync_tokens_default(self) -> dict[str, str]:
        pairs = [p.partition("=") for p in (_env("OPENFOAL_SYNC_TOKENS") or "").split(",")]
        return {t.strip(): u.strip() for t, _, u in pairs if t.strip() and u.strip()}

    def build_sync(
        self, worker: StoreWorker, hub: EventHub, sessions: SessionService, audit: AuditService
    ) -> tuple[SyncService, SyncReceiver | None]:
        """The sync service (with its push worker when a cloud is set) and, on a cloud
        instance, the intake of pushed batches."""
        receiver = None
        if self.role == "cloud" and isinstance(worker.store, PostgresStore):
            receiver = SyncReceiver(worker, sessions, SyncIntake(worker.store))
        service = SyncService(worker, hub, sessions, role=self.role, audit=audit)
        if self.role == "local" and self.cloud_url:
            service.pusher = SyncWorker(
                parent=self,
                worker=worker,
                user=self.server_owner,
                cloud_url=self.cloud_url,
                token=self.cloud_token,
                on_states=service.announce,
            )
            service.cloud_url = self.cloud_url
        return service, receiver

    gate_poll_s = Float(
        0.2,
        config=True,
        help="Seconds between looks for approvers' decisions on this server's pending gates, "
        "at the cloud instance (with cloud_url; default 0.2). See docs/jupyterhub.md.",
    )

    def route_gates(
        self, sessions: SessionService, runs: RunService, gates: GateService, sync: SyncService
    ) -> None:
        """Approval routing: on a cloud instance, pushed sessions' gates are decided here and
        run on their owners' servers; a user's server with a cloud lists, forwards and picks
        up decisions there."""
        if self.role == "cloud":

            def pushed(session_id: str) -> bool:
                session = sessions.peek(session_id)
                return session is not None and session.syncState != "local_only"

            runs.runs_elsewhere = pushed
            gates.runs_elsewhere = lambda gate: pushed(gate.sessionId)
        elif self.cloud_url:
            pusher = sync.pusher
            self.services.cloud_gates = CloudGates(
                url=self.cloud_url,
                token=self.cloud_token,
                user=self.server_owner,
                gates=gates,
                poll_s=self.gate_poll_s,
                on_new_gate=pusher.wake if pusher is not None else None,
            )

    @default("model")
    def _model_default(self) -> str | None:
        return _env("OPENFOAL_MODEL")

    @default("fallback_models")
    def _fallback_default(self) -> list[str]:
        return [m.strip() for m in (_env("OPENFOAL_FALLBACK_MODELS") or "").split(",") if m.strip()]

    @default("openai_api_key")
    def _oak(self) -> str | None:
        return _env("OPENAI_API_KEY")

    @default("openai_base_url")
    def _oab(self) -> str | None:
        return _env("OPENAI_BASE_URL")

    @default("anthropic_api_key")
    def _aak(self) -> str | None:
        return _env("ANTHROPIC_API_KEY")

    @default("anthropic_base_url")
    def _aab(self) -> str | None:
        return _env("ANTHROPIC_BASE_URL")

    @default("store_class")
    def _store_class_default(self) -> type[Store]:
        return PostgresStore if self.database_url else DuckDBStore

    @default("role")
    def _role_default(self) -> str:
        return _env("OPENFOAL_ROLE") or "local"

    @default("database_url")
    def _database_url_default(self) -> str:
        return _env("OPENFOAL_DATABASE_URL") or ""

    @default("object_store_url")
    def _object_store_url_default(self) -> str:
        return _env("OPENFOAL_OBJECT_STORE_URL") or ""

    @default("server_owner")
    def _owner_default(self) -> str:
        return default_server_owner()

    # -- wiring ---------------------------------------------------------------------------

    def configured_model_settings(self) -> ModelSettings:
        """The model settings from server config and environment alone."""
        return ModelSettings(
            model=self.model,
            fallback=list(self.fallback_models),
            openaiApiKey=self.openai_api_key,
            openaiBaseUrl=self.openai_base_url,
            anthropicApiKey=self.anthropic_api_key,
            anthropicBaseUrl=self.anthropic_base_url,
            timeoutSec=self.model_timeout,
            maxRetries=self.model_max_retries,
            backoffCapSec=self.model_backoff_cap,
        )

    def model_settings(self, requested: str | None = None) -> ModelSettings:
        """Resolve the model settings of a run (a per-run choice must be allowed).

        Config and environment come first; the console's saved settings fill what they leave
        unset (the model, and the saved provider's URL and key)."""
        base = self.configured_model_settings()
        if self.models is not None:
            base = self.models.apply(base)
        chain = [m for m in [base.model, *self.fallback_models] if m]
        model = base.model
        if requested and requested != base.model:
            # the built-in demo (scripted, offline, labelled) is always there to try
            if requested != DEMO_MODEL and requested not in set(self.allowed_models) | set(chain):
                raise OpenFoalError(
                    ErrorCode.INVALID_REQUEST, f"model {requested!r} is not allowed on this server"
                )
            model = requested
        fallback = [m for m in chain if m != model]
        return base.model_copy(update={"model": model, "fallback": fallback})

    def build_sandbox_manager(self, workspace: Path, on_egress: Any) -> SandboxManager:
        """The sandbox manager of this server, configured by ``c.SandboxManager``."""
        return self.sandbox_manager_class(
            parent=self, owner_label=self.server_owner, workspace=workspace, on_egress=on_egress
        )

    def build_kernel_orchestrator(
        self, kernel_manager: Any, on_event: EventCallback, on_lost: LostCallback
    ) -> KernelOrchestrator:
        """The agent kernels' orchestrator, configured by ``c.KernelOrchestrator``."""
        return self.kernel_orchestrator_class(
            kernel_manager, parent=self, on_event=on_event, on_lost=on_lost
        )

    def _sandbox_factory(self, workspace: str) -> Any:
        """Build the sandbox manager on first use (it connects to Docker only then)."""
        if not self.sandbox_enabled:
            return None

        def build(on_egress: Any) -> SandboxManager:
            return self.build_sandbox_manager(Path(workspace), on_egress)

        return build

    @property
    def _server(self) -> Any:
        """The Jupyter server this extension runs in (set before settings are built)."""
        assert self.serverapp is not None
        return self.serverapp

    def _root_dir(self) -> Path:
        return Path(self._server.root_dir).expanduser().resolve()

    def initialize_settings(self) -> None:
        """Open the store and build the services."""
        if otel.configure(self.otel):
            self.log.info("OpenFoal: exporting OpenTelemetry traces")
        root = self._root_dir()
        db_path = Path(self.db_path) if self.db_path else root / ".openfoal" / "openfoal.duckdb"
        store = open_configured_store(
            store_class=self.store_class,
            role=self.role,
            database_url=self.database_url,
            object_store_url=self.object_store_url,
            db_path=db_path,
        )
        recovered_from = getattr(store, "recovered_from", None)
        if recovered_from is not None:
            self.log.error(
                "OpenFoal: the store did not open; the broken file was moved to %s and "
                "a fresh store started",
                recovered_from,
            )
        worker = StoreWorker(store, window_s=self.commit_window_ms / 1000)
        hub = EventHub(worker)
        config = GatewayConfig(
            workspace_id=self.workspace_id,
            role=self.role,
            max_frame_bytes=self.max_frame_bytes,
            send_queue_frames=self.send_queue_frames,
            send_buffer_bytes=self.send_buffer_bytes,
            admin_users=frozenset(self.admin_users),
            server_owner=self.server_owner,
            team=TeamRoles(
                member_groups=tuple(self.member_groups),
                approver_groups=tuple(self.approver_groups),
                admin_groups=tuple(self.admin_groups),
            ),
        )
        sessions = SessionService(worker, hub, workspace_id=self.workspace_id)

        def sessions_owner(session_id: str) -> str | None:
            session = sessions.peek(session_id)
            return session.owner if session is not None else None

        audit = AuditService(worker)
        self.models = ModelConfigService(
            path=Path(self.model_settings_file)
            if self.model_settings_file
            else Path(self._server.config_dir) / "openfoal" / "model.json",
            server_owner=self.server_owner,
            audit=audit,
            configured=self.configured_model_settings,
        )
        # notebook turns read the policy in force from here (outside the workspace); kernels
        # inherit the variable naming it
        policy_file = Path(self._server.runtime_dir) / f"openfoal-policy-{os.getpid()}.json"
        os.environ[POLICY_FILE_ENV] = str(policy_file)
        self._policy_file = policy_file
        policies = PolicyService(worker, hub, audit, publish_to=policy_file)
        workspace = self.workspace_dir or str(root)
        memory = MemoryService(Path(workspace), server_owner=self.server_owner)
        sandboxes = SandboxService(self._sandbox_factory(workspace), audit)
        wired: dict[str, RunServices] = {}

        async def on_event(bridge: Any, event: Any) -> None:
            await wired["runs"].ingest.on_kernel_event(bridge, event)

        async def on_lost(bridge: Any, reason: str, pid: int | None) -> None:
            await wired["runs"].ingest.on_kernel_lost(bridge, reason, pid)

        kernels = self.build_kernel_orchestrator(self._server.kernel_manager, on_event, on_lost)
        run_services = build_run_services(
            worker=worker,
            hub=hub,
            sessions=sessions,
            kernels=kernels,
            audit=audit,
            sandboxes=sandboxes,
            memory=memory,
            model_settings=self.model_settings,
            policy=SessionPolicies(policies, owner_of=sessions_owner),
            gate_timeout_s=lambda: policies.current().gateTimeoutSec,
            workspace=workspace,
            default_owner=self.server_owner,
            context_window=self.context_window_tokens,
            flush_threshold=self.memory_flush_threshold,
            token_budget=self.session_token_budget,
            compact_threshold=self.auto_compact_threshold,
        )
        wired["runs"] = run_services
        runs, gates = run_services.runs, run_services.gates
        kernels.set_busy_check(runs.busy)
        sync, receiver = self.build_sync(worker, hub, sessions, audit)
        self.services = Services(
            config=config,
            worker=worker,
            hub=hub,
            sessions=sessions,
            runs=runs,
            idempotency=IdempotencyService(worker, ttl=timedelta(hours=self.idempotency_ttl_hours)),
            kernels=kernels,
            memory=memory,
            policies=policies,
            gates=gates,
            audit=audit,
            metrics=MetricsService(worker),
            sandboxes=sandboxes,
            models=self.models,
            rate_limiter=RateLimiter(self.rate_limits),
            sync=sync,
            receiver=receiver,
        )
        self.route_gates(sessions, runs, gates, sync)
        self.settings.update(
            {
                "openfoal_services": self.services,
                "openfoal_gateway": Gateway(self.services),
                "openfoal_sync_tokens": dict(self.sync_tokens),
            }
        )

    def initialize_handlers(self) -> None:
        """Register the WebSocket, REST and OpenAPI routes."""
        if self.role == "cloud":
            self.handlers.extend(
                [
                    (r"/openfoal/api/sync/batches", SyncBatchesHandler),
                    (r"/openfoal/api/sync/resolutions", SyncResolutionsHandler),
                    (r"/openfoal/api/sync/conflicts", SyncConflictsHandler),
                ]
            )
        self.handlers.extend(
            [
                (r"/openfoal/ws", GatewayWebSocketHandler),
                (r"/openfoal/api/openapi\.json", OpenAPIHandler),
                (r"/openfoal/api/(?P<method>[A-Za-z][\w.\-]*)", GatewayAPIHandler),
            ]
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Load state, recover from a crash, attach to kernels, fill the pool."""
        s = self.services
        await s.hub.start()
        await s.sessions.start()
        await s.policies.start()
        await s.gates.start()
        recovered = await s.runs.recover()
        if recovered:
            self.log.warning("OpenFoal: %d run(s) were interrupted by a server stop", recovered)

        async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
            await s.kernels.on_kernel_action(data)

        serverapp.event_logger.add_listener(schema_id=KERNEL_ACTIONS_SCHEMA, listener=listener)
        # the server's modules and state loaded so far live as long as it does: keep them out
        # of the collector's full scans, which otherwise pause streaming for ~100 ms each
        gc.collect()
        gc.freeze()
        s.ready.set()
        self._team_policy: TeamPolicyPoller | None = None
        if self.team_policy_url:
            self._team_policy = TeamPolicyPoller(
                url=self.team_policy_url,
                token=self.team_policy_token,
                interval_s=self.team_policy_poll_s,
                on_policy=s.policies.apply_team,
            )
            self._team_policy.start()
        if s.sync is not None:
            await s.sync.start()
        if s.cloud_gates is not None:
            s.cloud_gates.start()
        if self.start_pool:
            await s.kernels.start()
        # orphans of dead servers are removed and the pool filled in the background: a slow
        # or absent Docker engine never delays the server
        self._sandbox_start = asyncio.ensure_future(s.sandboxes.start())
        if not self.model_settings().model:
            self.log.warning(
                "OpenFoal: no model configured. Set OPENFOAL_MODEL (e.g. "
                "openai:gpt-4.1-mini with OPENAI_API_KEY, or demo for the scripted demo)."
            )

    async def stop_extension(self) -> None:
        """Stop kernels' bridges and close the store."""
        s = self.services
        if getattr(self, "_team_policy", None) is not None:
            await self._team_policy.stop()  # type: ignore[union-attr]
        if s.cloud_gates is not None:
            await s.cloud_gates.stop()
        if s.sync is not None:
            await s.sync.stop()
        await s.gates.stop()
        await s.kernels.stop()
        await s.sandboxes.stop()
        self._policy_file.unlink(missing_ok=True)
        try:
            await s.worker.commit()
        finally:
            s.worker.close()
            otel.shutdown()
