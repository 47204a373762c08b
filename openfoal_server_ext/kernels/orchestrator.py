"""Session -> agent kernel: start on demand through Jupyter's kernel manager, pool, reap.

Agent kernels are ordinary Jupyter kernels (kernel spec ``openfoal``), so they show in
JupyterLab's running-kernels list. A few are pre-started so a new session answers at once;
one that stays idle past ``idle_timeout`` is shut down (the session lives on in the store).
Kernels of the same spec that a notebook started are observed too: their cells are turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import Enum, Float, Int, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from openfoal_kernel.executors.code_kernel import BINDING_KEY
from openfoal_kernel.protocol import ErrorCode, OpenFoalError

from .bridge import EventCallback, KernelBridge
from .leases import KernelLeases, process_running
from .ports import install as install_port_cache
from .ports import parse_range

log = logging.getLogger(__name__)

KERNEL_ACTIONS_SCHEMA = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
KERNEL_NAME = "openfoal"
#: Addresses an attached kernel may listen on (``kernels.attach``: this machine only).
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: Seconds a kernel to attach has to answer the gateway's probe.
ATTACH_TIMEOUT_S = 20.0
#: The plain ipykernel that runs a session's python.exec (never the agent kernel itself).
CODE_KERNEL_NAME = "python3"

#: Called with a bridge whose kernel died, the reason, and the dead process's pid (None: every
#: run on the bridge is lost, whichever process it was sent to).
LostCallback = Callable[[KernelBridge, str, int | None], Awaitable[None]]


class KernelOrchestrator(LoggingConfigurable):
    """Owns the gateway's bridges to OpenFoal kernels (tunables: ``c.KernelOrchestrator.*``)."""

    pool_size = Int(1, config=True, help="Pre-started agent kernels (default 1).")
    idle_timeout = Float(
        600.0,
        config=True,
        help="Seconds before an idle session's agent kernel is shut down (default 600).",
    )
    max_kernels_per_user = Int(
        16,
        config=True,
        help="Live agent kernels one user may hold (0: no cap; default 16). Past it a new "
        "session's run waits, or the user's longest-idle kernel is shut down (cap_policy).",
    )
    cap_policy = Enum(
        ["evict", "queue"],
        "evict",
        config=True,
        help="At the kernel cap: 'evict' (default) shuts down the user's longest-idle agent "
        "kernel (never one mid-run; when all are busy the run waits); 'queue' waits until one "
        "of the user's kernels is shut down (idle timeout, sessions.delete).",
    )
    kernel_name = Unicode(
        KERNEL_NAME, config=True, help="Kernel spec of the agent kernels (default openfoal)."
    )
    code_kernel_name = Unicode(
        CODE_KERNEL_NAME,
        config=True,
        help="Kernel spec of the sessions' code kernels, where python.exec runs (default "
        "python3); started at a session's first python.exec.",
    )
    kernel_cwd = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Folder the kernels start in. Default: the server's root_dir.",
    )
    kernel_ports = Unicode(
        "auto",
        config=True,
        help="Where the server's kernels take their ports: 'auto' (default: the 12,000 ports "
        "below the machine's ephemeral range, which outgoing connections never take), "
        "'LOW-HIGH' (HIGH exclusive), or 'os' (Jupyter's own choice, from the ephemeral range).",
    )

    @validate("kernel_ports")
    def _check_kernel_ports(self, proposal: Any) -> str:
        try:
            parse_range(proposal["value"])
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        return str(proposal["value"])

    lease_dir = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Folder of the kernel leases, by which the kernels of a server killed with "
        "kill -9 are reaped at the next start. Default: /run/openfoal/kernels for root, "
        "else openfoal-kernels-<uid> in $XDG_RUNTIME_DIR or the temp folder.",
    )

    def __init__(
        self,
        kernel_manager: Any,
        *,
        on_event: EventCallback,
        on_lost: LostCallback,
        **traits: Any,
    ) -> None:
        unknown = sorted(set(traits) - set(self.class_trait_names()))
        if unknown:
            raise TypeError(f"KernelOrchestrator has no setting {', '.join(unknown)}")
        super().__init__(**traits)
        self.mkm = kernel_manager
        self.on_event = on_event
        self.on_lost = on_lost
        self.bridges: dict[str, KernelBridge] = {}
        self.by_session: dict[str, KernelBridge] = {}
        self._pool: list[KernelBridge] = []
        self._code_pool: list[str] = []
        self.code_by_session: dict[str, str] = {}
        #: Bridges of kernels attached from outside (``kernels.attach``), by their ids.
        self.external: set[str] = set()
        self._starting: set[str] = set()
        self._attaching: set[asyncio.Future[None]] = set()
        self._fill_task: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._busy: Callable[[str], bool] = lambda session_id: False
        self.owner_by_session: dict[str, str] = {}
        #: Users' runs waiting for a kernel under the cap, and slots being filled now.
        self.waiting: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._freed = asyncio.Event()
        self.leases = KernelLeases(Path(self.lease_dir) if self.lease_dir else None)

    def set_busy_check(self, busy: Callable[[str], bool]) -> None:
        """Tell the reaper how to know a session is mid-run (never reap those)."""
        self._busy = busy

    async def start(self) -> None:
        """Reap dead instances' kernels, attach to running OpenFoal kernels, fill the pool,
        start the idle reaper."""
        ports = install_port_cache(self.kernel_ports)
        log.info("kernel ports: %s", f"{ports[0]}-{ports[1] - 1}" if ports else "the OS's choice")
        try:
            await asyncio.to_thread(self.leases.start)
        except Exception:
            log.exception("could not reap the orphan kernels of dead server instances")
        for kernel_id in list(self.mkm.list_kernel_ids()):
            km = self.mkm.get_kernel(kernel_id)
            if getattr(km, "kernel_name", "") == self.kernel_name and kernel_id not in self.bridges:
                await self._attach(kernel_id, owned=False)
        self._fill_task = asyncio.create_task(self._fill_pool())
        self._reaper = asyncio.create_task(self._reap_loop())

    async def on_kernel_action(self, data: dict[str, Any]) -> None:
        """React to Jupyter's kernel_actions events (kernels started by notebooks)."""
        kernel_id = data.get("kernel_id")
        if not kernel_id or data.get("status") != "success":
            return
        action = data.get("action")
        if action == "start" and data.get("kernel_name") == self.kernel_name:
            if kernel_id not in self.bridges and kernel_id not in self._starting:
                await self._attach(kernel_id, owned=False)
        elif action == "shutdown" and kernel_id in self.bridges:
            await self.on_lost(self.bridges[kernel_id], "the agent kernel was shut down", None)
            await self._detach(kernel_id)
        elif action == "restart" and kernel_id in self.bridges:
            # restarted from JupyterLab or the REST API: a new process behind the same bridge
            bridge = self.bridges[kernel_id]
            await bridge.reconnect()
            await self.on_lost(bridge, "the agent kernel was restarted", None)
            if not bridge.owned:
                self._spawn_attach(bridge)

    async def _attach(self, kernel_id: str, *, owned: bool) -> KernelBridge:
        km = self.mkm.get_kernel(kernel_id)
        bridge = KernelBridge(
            kernel_id, km, on_event=self.on_event, owned=owned, on_code_kernel=self.code_kernel
        )
        await bridge.start(wait_ready=owned)
        self.bridges[kernel_id] = bridge
        if not owned:
            self._spawn_attach(bridge)

        async def restarted(before: Any, pid: int | None, first: bool) -> None:
            # the runs sent to the dead process end now, not once the new one is up: the
            # session is free for its next turn, which waits for the reconnect below
            if first:
                await self.on_lost(bridge, "the agent kernel died and was restarted", pid)
            # a new process, maybe on new ports: reconnect once it is up, subscribe again
            await bridge.reconnect(before)
            if bridge.owned:
                self._lease(kernel_id)  # the new process is the one to reap after a crash
            if not bridge.owned:
                self._spawn_attach(bridge)

        async def dead() -> None:
            bridge.mark_lost(None)
            await self.on_lost(bridge, "the agent kernel died", None)
            await self._detach(kernel_id)
            bridge.up.set()  # turns waiting for a restart go on, and find their run ended

        def on_restart() -> None:
            # runs before the restart begins: note the dead pid and the manager's ready future
            pid = bridge.pid
            first = bridge.mark_lost(pid)
            task = asyncio.ensure_future(restarted(km.ready, pid, first))
            self._attaching.add(task)
            task.add_done_callback(self._attaching.discard)

        km.add_restart_callback(on_restart, "restart")
        km.add_restart_callback(lambda: asyncio.ensure_future(dead()), "dead")
        return bridge

    async def attach_external(self, connection: dict[str, Any]) -> str:
        """Listen on an OpenFoal kernel started outside this server (``kernels.attach``):
        papermill's or nbclient's own. It is on this machine (loopback or IPC) and answers
        within ``ATTACH_TIMEOUT_S``; the gateway opens its comm as for a notebook's kernel and
        never starts, restarts or stops it.
        Its bridge is dropped once it has been silent for ``idle_timeout``."""
        if connection.get("transport") == "tcp" and connection.get("ip") not in LOOPBACK:
            raise OpenFoalError(
                ErrorCode.INVALID_REQUEST,
                f"a kernel to attach listens on this machine (loopback), not {connection['ip']!r}",
            )
        if self.kernel_name not in self.mkm.kernel_spec_manager.find_kernel_specs():
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no kernel spec {self.kernel_name!r}")
        km = AsyncKernelManager(kernel_name=self.kernel_name)
        km.load_connection_info(connection)  # type: ignore[arg-type]
        kernel_id = f"external-{uuid.uuid4()}"
        bridge = KernelBridge(
            kernel_id, km, on_event=self.on_event, owned=False, on_code_kernel=self.code_kernel
        )
        await bridge.start(wait_ready=False)
        try:
            await bridge.attach_notebook(timeout=ATTACH_TIMEOUT_S)
        except Exception as exc:
            await bridge.close()
            raise OpenFoalError(
                ErrorCode.RUNTIME_LOST,
                f"no OpenFoal kernel answered at {connection.get('ip')}:"
                f"{connection.get('shell_port')} within {ATTACH_TIMEOUT_S:g} s ({exc!r})",
            ) from exc
        self.bridges[kernel_id] = bridge
        self.external.add(kernel_id)
        log.info(
            "OpenFoal: attached the kernel of %s:%s", connection["ip"], connection["shell_port"]
        )
        return kernel_id

    async def _drop_silent_external(self) -> None:
        now = time.monotonic()
        for kernel_id in list(self.external):
            bridge = self.bridges.get(kernel_id)
            if bridge is None or now - bridge.last_iopub > self.idle_timeout:
                self.external.discard(kernel_id)
                if bridge is not None:
                    await self.on_lost(bridge, "the attached kernel went silent", None)
                    await self._detach(kernel_id)

    def _spawn_attach(self, bridge: KernelBridge) -> None:
        """Tell a notebook's kernel, in the background, once the gateway hears its iopub."""

        async def attach() -> None:
            try:
                await bridge.attach_notebook()
            except Exception as exc:  # the kernel died meanwhile, or never answered
                log.warning("OpenFoal: cannot attach to kernel %s: %s", bridge.kernel_id, exc)

        task = asyncio.ensure_future(attach())
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    async def _detach(self, kernel_id: str) -> None:
        bridge = self.bridges.pop(kernel_id, None)
        if bridge is None:
            return
        if bridge.session_id and self.by_session.get(bridge.session_id) is bridge:
            del self.by_session[bridge.session_id]
        if bridge in self._pool:
            self._pool.remove(bridge)
        await bridge.close()
        self._freed.set()

    async def _start_kernel(self) -> KernelBridge:
        # choose the id first, so the kernel_actions "start" event of our own kernel is not
        # mistaken for a notebook's kernel
        kernel_id = str(uuid.uuid4())
        self._starting.add(kernel_id)
        kwargs: dict[str, Any] = {"kernel_name": self.kernel_name, "kernel_id": kernel_id}
        if self.kernel_cwd:
            kwargs["path"] = self.kernel_cwd
        try:
            await self.mkm.start_kernel(**kwargs)
            self._lease(kernel_id)
            return await self._attach(kernel_id, owned=True)
        finally:
            self._starting.discard(kernel_id)

    async def _fill_pool(self) -> None:
        while len(self._pool) < self.pool_size or len(self._code_pool) < self.pool_size:
            try:
                if len(self._pool) < self.pool_size:
                    self._pool.append(await self._start_kernel())
                if len(self._code_pool) < self.pool_size:
                    self._code_pool.append(await self._start_code_kernel())
            except Exception:
                log.exception("could not pre-start kernels for the pool")
                return

    async def _start_code_kernel(self) -> str:
        kernel_id = str(uuid.uuid4())
        kwargs: dict[str, Any] = {"kernel_name": self.code_kernel_name, "kernel_id": kernel_id}
        if self.kernel_cwd:
            kwargs["path"] = self.kernel_cwd
        await self.mkm.start_kernel(**kwargs)
        self._lease(kernel_id)
        return kernel_id

    def _lease(self, kernel_id: str) -> None:
        """Record the kernel's process, so a later instance reaps it if this one dies."""
        provisioner = getattr(self.mkm.get_kernel(kernel_id), "provisioner", None)
        try:
            self.leases.record(kernel_id, getattr(provisioner, "pid", None))
        except OSError:
            log.exception("could not record the lease of kernel %s", kernel_id)

    def connection_info(self, kernel_id: str, binding: str) -> dict[str, Any]:
        """JSON-ready connection info of a kernel this server runs, tagged with its binding."""
        if kernel_id not in self.mkm:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no running kernel {kernel_id!r}")
        info = dict(self.mkm.get_kernel(kernel_id).get_connection_info())
        key = info.get("key", b"")
        info["key"] = key.decode() if isinstance(key, bytes) else str(key)
        info[BINDING_KEY] = binding
        return info

    def running_code_kernel(self, session_id: str) -> dict[str, Any] | None:
        """The session's code kernel when it runs already (None: started on request)."""
        kernel_id = self.code_by_session.get(session_id)
        if kernel_id is None or kernel_id not in self.mkm:
            return None
        return self.connection_info(kernel_id, "session")

    async def code_kernel(self, session_id: str) -> dict[str, Any]:
        """The session's code kernel (started through Jupyter, so it outlives agent kernels)."""
        kernel_id = self.code_by_session.get(session_id)
        if kernel_id is None or kernel_id not in self.mkm:
            kernel_id = (
                self._code_pool.pop(0) if self._code_pool else await self._start_code_kernel()
            )
            self.code_by_session[session_id] = kernel_id
            self._refill()
        return self.connection_info(kernel_id, "session")

    def _refill(self) -> None:
        if self._fill_task is None or self._fill_task.done():
            self._fill_task = asyncio.create_task(self._fill_pool())

    async def acquire(
        self,
        session_id: str,
        owner: str | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> KernelBridge:
        """Return the session's kernel, taking a pooled one or starting one if needed; a new
        kernel for ``owner`` first waits for room under the per-user cap (``on_wait`` is
        called once when it has to wait)."""
        bridge = self.by_session.get(session_id)
        if bridge is not None and bridge.kernel_id in self.bridges:
            return bridge
        if owner is None or self.max_kernels_per_user <= 0:
            return await self._take(session_id)
        await self._make_room(owner, on_wait)
        try:
            bridge = await self._take(session_id)
            self.owner_by_session[session_id] = owner
            return bridge
        finally:
            self._reserved[owner] -= 1

    def live_kernels(self, owner: str) -> list[str]:
        """The sessions of ``owner`` holding a live agent kernel."""
        return [
            sid
            for sid, b in self.by_session.items()
            if self.owner_by_session.get(sid) == owner and b.kernel_id in self.bridges
        ]

    async def _make_room(self, owner: str, on_wait: Callable[[], None] | None) -> None:
        """Reserve a kernel slot for ``owner`` under the cap: evict, or wait in line."""
        queued = False
        try:
            while True:
                live = self.live_kernels(owner)
                if len(live) + self._reserved.get(owner, 0) < self.max_kernels_per_user:
                    self._reserved[owner] = self._reserved.get(owner, 0) + 1
                    return
                idle = [sid for sid in live if not self._busy(sid)]
                if self.cap_policy == "evict" and idle:
                    victim = min(idle, key=lambda sid: self.by_session[sid].last_used)
                    log.info("kernel cap of %s: shutting down the idle kernel of %s", owner, victim)
                    await self.release_session(victim)
                    continue
                if not queued:
                    queued = True
                    self.waiting[owner] = self.waiting.get(owner, 0) + 1
                    log.info("kernel cap of %s reached: a run waits for a kernel", owner)
                    if on_wait is not None:
                        on_wait()
                self._freed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    # woken when a kernel goes; the timeout also catches a run that ended
                    await asyncio.wait_for(self._freed.wait(), 1.0)
        finally:
            if queued:
                self.waiting[owner] -= 1

    async def _take(self, session_id: str) -> KernelBridge:
        if self._pool:
            bridge = self._pool.pop(0)
            self._refill()
        else:
            bridge = await self._start_kernel()
            self._refill()
        bridge.session_id = session_id
        self.by_session[session_id] = bridge
        return bridge

    async def check_alive(self, bridge: KernelBridge) -> bool:
        """True when the bridge's kernel process lives; a dead one's runs end now.

        Jupyter's restarter notices a killed kernel only at its next poll; a turn sent
        before then would wait on the dead run. The restart that follows does not end runs
        a second time, and the next turn waits for the new process.
        """
        if not bridge.up.is_set():
            return False
        pid = bridge.pid
        alive = pid is None or process_running(pid)
        if alive:
            try:
                alive = bool(await self.mkm.get_kernel(bridge.kernel_id).is_alive())
            except Exception:
                return True  # unknown: leave it to the restarter
        if alive:
            return True
        if bridge.mark_lost(pid):
            await self.on_lost(bridge, "the agent kernel died", pid)
        return False

    async def interrupt(self, bridge: KernelBridge) -> None:
        """Interrupt a kernel by message."""
        await self.mkm.interrupt_kernel(bridge.kernel_id)

    async def release_session(self, session_id: str) -> None:
        """Shut down the session's kernels now."""
        bridge = self.by_session.pop(session_id, None)
        self.owner_by_session.pop(session_id, None)
        if bridge is not None:
            await self._shutdown(bridge)
        await self._shutdown_code(session_id)
        self._freed.set()

    async def _shutdown_code(self, session_id: str) -> None:
        kernel_id = self.code_by_session.pop(session_id, None)
        if kernel_id is not None and kernel_id in self.mkm:
            with contextlib.suppress(Exception):
                await self.mkm.shutdown_kernel(kernel_id)
            self.leases.forget(kernel_id)

    async def _shutdown(self, bridge: KernelBridge) -> None:
        kernel_id = bridge.kernel_id
        await self._detach(kernel_id)
        if kernel_id in self.mkm:
            with contextlib.suppress(Exception):
                await self.mkm.shutdown_kernel(kernel_id)
        self.leases.forget(kernel_id)

    async def reap_idle(self) -> int:
        """Shut down session kernels idle for longer than the timeout; return how many."""
        now = time.monotonic()
        victims = [
            b
            for sid, b in self.by_session.items()
            if b.owned and not self._busy(sid) and now - b.last_used > self.idle_timeout
        ]
        for bridge in victims:
            log.info("shutting down idle agent kernel %s", bridge.kernel_id)
            if bridge.session_id:
                self.by_session.pop(bridge.session_id, None)
                self.owner_by_session.pop(bridge.session_id, None)
                await self._shutdown_code(bridge.session_id)
            await self._shutdown(bridge)
        if victims:
            self._freed.set()
        return len(victims)

    async def _reap_loop(self) -> None:
        period = max(1.0, min(30.0, self.idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.reap_idle()
                await self._drop_silent_external()
            except Exception:
                log.exception("reaping idle kernels")

    async def stop(self) -> None:
        """Stop background work and close bridges (kernels are shut down by the server)."""
        for task in (self._fill_task, self._reaper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for kernel_id in list(self.bridges):
            await self._detach(kernel_id)
