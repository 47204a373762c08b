"""The sandbox lifecycle, on the gateway's side: one hardened container per cloud session.

- ``acquire`` at the start of a cloud turn gives the session its container (the same one
  turn after turn, so files in /tmp and Python variables stay), taken from a pool of
  pre-started containers when one fits, else started on the spot; ``release`` at the end of
  the turn starts its idle clock; ``remove`` when the session is deleted.
- Containers idle longer than ``idle_ttl`` are reaped by a background task.
- At most ``max_live`` containers exist (pool included). Past it, an idle container of
  another session is reaped early; when every one is busy, ``acquire`` fails at once with
  ``SANDBOX_UNAVAILABLE`` (retryable) instead of queueing the turn.
- Each session has ``budget`` seconds of sandbox exec time (see :mod:`..budget`); past it,
  ``acquire`` and every tool call fail with ``BUDGET_EXCEEDED``.
- ``start`` removes orphans: containers of this host whose server instance is gone
  (``kill -9`` included, see :mod:`.instances`); while Docker is down the reaper retries.
- The pool is started for the configured workspace and owner, or else for the first ones
  a session brings (labels cannot change, so a pooled container only fits its owner).
- When Docker is unreachable, every call fails within seconds with ``SANDBOX_UNAVAILABLE``.

Every Docker SDK call runs in a thread; the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from traitlets import Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from ...protocol.errors import ErrorCode, OpenFoalError
from ..budget import Ledger
from ..docker_api import (
    DEFAULT_DOCKER_HOST,
    PING_TIMEOUT_S,
    Endpoint,
    blocking,
    connect,
    endpoint_of,
    unavailable,
)
from ..handle import LABEL_HOST, LABEL_INSTANCE, LABEL_SANDBOX, SandboxHandle
from .egress import EgressCallback, EgressProxy
from .instances import (
    LABEL_STATE,
    InstanceLock,
    dead_instances,
    default_state_dir,
    instance_alive,
    instance_dir,
    remove_instance_files,
    state_key,
)
from .mounts import MountPlan, WorkspaceMounts
from .spec import PROXY_ENV, container_name, labels, relay_kwargs, sandbox_kwargs

__all__ = ["DEFAULT_IMAGE", "SHELL_IMAGE", "SandboxManager"]

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "openfoal/sandbox-python:latest"
SHELL_IMAGE = "openfoal/sandbox-shell:latest"
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RELAY_READY_S = 15.0


@dataclass(kw_only=True)
class _Box:
    """One sandbox container (pooled when ``session_id`` is None)."""

    container_id: str
    name: str
    workspace: str
    owner: str
    plan: MountPlan
    session_id: str | None = None
    relay_id: str | None = None
    in_use: int = 0
    last_used: float = field(default_factory=time.time)


class SandboxManager(LoggingConfigurable):
    """Creates, pools, reuses, caps, budgets and reaps the sandboxes of one server instance.

    Every tunable is a traitlet (``c.SandboxManager.<name>``); the same names work as
    keyword arguments.
    """

    image = Unicode(
        DEFAULT_IMAGE,
        config=True,
        help="Image of the sandboxes (default openfoal/sandbox-python:latest, built by "
        "scripts/build-sandbox-images.sh; any image with /bin/sh works, python.exec needs "
        "python3 in it).",
    )
    pool_size = Int(
        1,
        config=True,
        help="Pre-started sandboxes waiting for a session's first cloud call (default 1).",
    )
    max_live = Int(8, config=True, help="Most sandboxes alive at once, pool included (default 8).")
    idle_ttl = Float(
        900.0,
        config=True,
        help="Seconds after which an idle session's sandbox is removed (default 900).",
    )
    budget = Float(
        3600.0,
        config=True,
        help="Seconds of sandbox exec time per session, then BUDGET_EXCEEDED; "
        "0 for no budget (default 3600).",
    )
    memory = Unicode("512m", config=True, help="Memory limit per sandbox (default 512m).")
    cpus = Float(1.0, config=True, help="CPUs per sandbox (default 1.0).")
    pids = Int(256, config=True, help="Process limit per sandbox (default 256).")
    tmpfs_size = Unicode("64m", config=True, help="Size of each sandbox's /tmp (default 64m).")
    user = Unicode(
        None,
        allow_none=True,
        config=True,
        help="uid:gid the sandboxes run as. Default: the workspace folder's owner (a "
        "root-owned one is mapped to an unprivileged user).",
    )
    relay_image = Unicode(
        DEFAULT_IMAGE,
        config=True,
        help="Image of the egress relays (default openfoal/sandbox-python:latest).",
    )
    docker_host = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Docker endpoint. Default: $DOCKER_HOST, else the local socket.",
    )
    state_dir = Unicode(
        "",
        config=True,
        help="Folder of sandbox state shared by the servers of this host "
        "(instance locks, budgets). Default: /run/openfoal/sandbox "
        "for root, else a private runtime folder.",
    )
    reap_interval = Float(
        0.0,
        config=True,
        help="Seconds between reaper sweeps. Default (0): a quarter of idle_ttl, "
        "between 0.5 and 30.",
    )

    def __init__(
        self,
        *,
        instance_id: str | None = None,
        owner_label: str | None = None,
        workspace: Path | None = None,
        state_dir: Path | str | None = None,
        docker_client: docker.DockerClient | None = None,
        egress: EgressProxy | None = None,
        on_egress: EgressCallback | None = None,
        extra_labels: dict[str, str] | None = None,
        **traits: Any,
    ) -> None:
        unknown = sorted(set(traits) - set(self.class_trait_names()))
        if unknown:
            raise TypeError(f"SandboxManager has no setting {', '.join(unknown)}")
        if state_dir is not None:
            traits["state_dir"] = str(state_dir)
        super().__init__(**traits)
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        if not _INSTANCE_ID.match(self.instance_id):
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"bad instance id {instance_id!r}")
        self.owner_label = owner_label or getpass.getuser()
        self._owner_fixed = owner_label is not None
        self.pool_workspace = str(Path(workspace).resolve()) if workspace else None
        self.pool_size = max(self.pool_size, 0)
        self.max_live = max(self.max_live, 1)
        self.budget_s: float | None = self.budget or None
        self.state_path = Path(self.state_dir) if self.state_dir else default_state_dir()
        self.state_key = state_key(self.state_path)
        self.proxy = egress or EgressProxy(on_egress=on_egress)
        self._own_proxy = egress is None
        self.reap_interval_s = self.reap_interval or max(min(self.idle_ttl / 4, 30.0), 0.5)
        self.extra_labels = extra_labels or {}
        self.host = socket.gethostname()
        self._client = docker_client
        self._own_client = docker_client is None
        self._mounts = WorkspaceMounts(instance_dir(self.state_path, self.instance_id) / "mounts")
        self._lock_file = InstanceLock(self.state_path, self.instance_id)
        self._boxes: dict[str, _Box] = {}
        self._pool: list[_Box] = []
        self._creating = 0
        self._lock = asyncio.Lock()
        self._fill_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._session_locks: dict[str, asyncio.Lock] = {}
        self._python: dict[str, str | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting: set[asyncio.Task[Container]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._orphans_checked = False
        self._started = False
        self._closed = False

    # -- start and stop --------------------------------------------------------------------

    async def start(self) -> None:
        """Claim the instance, remove orphans, start the reaper and fill the pool (background).

        Docker being down is not fatal here: it is logged, and cloud calls fail fast later.
        """
        if self._started:
            return
        self._started = True
        await asyncio.to_thread(self._lock_file.acquire)
        self._reaper = asyncio.create_task(self._reap_loop(), name="sandbox-reaper")
        try:
            await self.cleanup_orphans()
        except OpenFoalError as exc:
            log.warning("sandbox: %s (cloud runs fail until Docker answers)", exc.message)
            return
        self._schedule_fill()

    async def aclose(self) -> None:
        """Stop background work and remove every container of this instance."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._reaper, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Containers still being started in a thread would appear after the sweep below.
        await asyncio.gather(*self._starting, return_exceptions=True)
        async with self._lock:
            boxes = [*self._boxes.values(), *self._pool]
            self._boxes.clear()
            self._pool.clear()
        for box in boxes:
            try:
                await self._destroy(box)
            except OpenFoalError as exc:
                log.warning("sandbox: cannot remove %s: %s", box.name, exc.message)
        if self._client is not None:
            try:
                await self._sweep()
            except OpenFoalError as exc:
                log.warning("sandbox: cannot remove this instance's containers: %s", exc.message)
        await asyncio.gather(*self._tasks, return_exceptions=True)  # late removals
        if self._own_proxy:
            await self.proxy.aclose()
        await asyncio.to_thread(self._mounts.release)
        await asyncio.to_thread(self._lock_file.release)
        if self._own_client and self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None

    # -- the session API -------------------------------------------------------------------

    async def acquire(
        self, session_id: str, owner: str, workspace: Path, allow_hosts: Sequence[str] = ()
    ) -> SandboxHandle:
        """The session's sandbox (reused, pooled or new), open to ``allow_hosts`` only."""
        if self._closed:
            raise unavailable("the sandbox manager is shut down")
        ws = await asyncio.to_thread(Path(workspace).resolve)
        if not await asyncio.to_thread(ws.is_dir):
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"workspace {workspace} is not a folder")
        self._ledger(session_id).check(self.budget_s)
        await self._docker()
        if self.pool_workspace is None:
            self.pool_workspace = str(ws)  # no workspace configured: pool the first one seen
        if not self._owner_fixed:
            self.owner_label, self._owner_fixed = owner, True  # likewise the first owner
        lock = self._session_locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            async with self._lock:
                # Taken (in_use) before any await, so neither the reaper nor another
                # session's acquire picks it as a victim while it is being checked.
                box = self._boxes.get(session_id)
                if box is not None:
                    box.in_use += 1
            if box is not None:
                try:
                    fits = box.workspace == str(ws) and box.owner == owner
                    fits = fits and await self._running(box)
                except BaseException:
                    box.in_use -= 1
                    raise
                if not fits:
                    box.in_use -= 1
                    async with self._lock:
                        if self._boxes.get(session_id) is box:
                            del self._boxes[session_id]
                    await self._destroy(box)
                    box = None
            if box is None:
                box = await self._new_box(session_id, owner, str(ws))
            box.last_used = time.time()
            try:
                await self._open_egress(box, list(allow_hosts))
                return await self._handle(box)
            except BaseException:
                box.in_use = max(box.in_use - 1, 0)
                raise

    async def release(self, session_id: str) -> None:
        """The session's turn ended: its sandbox stays for the next turn until the idle TTL."""
        box = self._boxes.get(session_id)
        if box is not None:
            box.in_use = max(box.in_use - 1, 0)
            box.last_used = time.time()

    async def remove(self, session_id: str) -> None:
        """The session was deleted: remove its sandbox and forget its budget."""
        lock = self._session_locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            async with self._lock:
                box = self._boxes.pop(session_id, None)
            if box is not None:
                await self._destroy(box)
            self._ledger(session_id).remove()
        self._session_locks.pop(session_id, None)

    async def reap_idle(self) -> list[str]:
        """Remove sandboxes idle (released, no exec) for longer than the TTL; their sessions."""
        now = time.time()
        victims: list[_Box] = []
        async with self._lock:
            for sid, box in list(self._boxes.items()):
                if box.in_use == 0 and now - self._last_used(box) > self.idle_ttl:
                    victims.append(self._boxes.pop(sid))
        for box in victims:
            log.info("sandbox: reaping %s (idle for over %g s)", box.name, self.idle_ttl)
            await self._destroy(box)
        if victims:
            self._schedule_fill()
        return [box.session_id for box in victims if box.session_id]

    async def cleanup_orphans(self) -> int:
        """Remove this host's containers whose server instance is gone; how many were removed."""
        client = await self._docker()
        found = await blocking(
            client.containers.list,
            all=True,
            sparse=True,
            filters={
                "label": [
                    f"{LABEL_SANDBOX}=1",
                    f"{LABEL_HOST}={self.host}",
                    f"{LABEL_STATE}={self.state_key}",
                ]
            },
            what="list containers",
        )
        alive: dict[str, bool] = {}
        removed = 0
        for container in found:
            instance = (container.attrs.get("Labels") or {}).get(LABEL_INSTANCE, "")
            if instance == self.instance_id:
                continue
            if instance not in alive:
                alive[instance] = await asyncio.to_thread(instance_alive, self.state_path, instance)
            if alive[instance]:
                continue
            log.info("sandbox: removing orphan %s of instance %s", container.id[:12], instance)
            if await self._remove_container(container.id):
                removed += 1
        for instance in await asyncio.to_thread(dead_instances, self.state_path, self.instance_id):
            await asyncio.to_thread(remove_instance_files, self.state_path, instance)
        self._orphans_checked = True
        return removed

    async def fill_pool(self) -> int:
        """Start pooled containers up to ``pool_size``; the pool's size afterwards."""
        async with self._fill_lock:
            ws, owner = self.pool_workspace, self.owner_label
            while ws is not None and not self._closed:
                async with self._lock:
                    fits = [b for b in self._pool if b.workspace == ws and b.owner == owner]
                    stale = [b for b in self._pool if b not in fits]
                    self._pool = fits
                    full = len(self._pool) >= self.pool_size or self._live() >= self.max_live
                    if not full:
                        self._creating += 1
                for box in stale:
                    await self._destroy(box)
                if full:
                    break
                try:
                    box = await self._create(ws, owner, None)
                except OpenFoalError as exc:
                    log.warning("sandbox: cannot fill the pool: %s", exc.message)
                    break
                finally:
                    self._creating -= 1  # no await here: a cancellation cannot skip it
                if self._closed:
                    stale = [box]
                else:
                    self._pool.append(box)
                    stale = []
                for box in stale:
                    await self._destroy(box)
            return len(self._pool)

    def usage_s(self, session_id: str) -> float:
        """Seconds of sandbox exec time the session has used."""
        return self._ledger(session_id).used()

    @property
    def live(self) -> int:
        """Containers that exist now (sessions' and pooled)."""
        return self._live()

    @property
    def pooled(self) -> int:
        """Containers waiting in the pool."""
        return len(self._pool)

    # -- inside ----------------------------------------------------------------------------

    def _live(self) -> int:
        return len(self._boxes) + len(self._pool) + self._creating

    def _ledger(self, session_id: str) -> Ledger:
        digest = hashlib.sha256(session_id.encode()).hexdigest()[:32]
        folder = self.state_path / "budget"
        folder.mkdir(parents=True, exist_ok=True)
        return Ledger(folder / f"{digest}.ledger")

    def _last_used(self, box: _Box) -> float:
        last = self._ledger(box.session_id).last_use() if box.session_id else None
        return max(box.last_used, last or 0.0)

    async def _docker(self) -> docker.DockerClient:
        if self._client is None:
            async with self._connect_lock:
                if self._client is None:
                    self._client = await blocking(_connect, self.docker_host, what="connect")
        return self._client

    async def _running(self, box: _Box) -> bool:
        client = await self._docker()
        try:
            info = await blocking(client.api.inspect_container, box.container_id, what="inspect")
        except docker.errors.NotFound:
            return False
        return bool(info.get("State", {}).get("Running"))

    async def _new_box(self, session_id: str, owner: str, ws: str) -> _Box:
        """A container for a session: from the pool when one fits, else a new one."""
        victim: _Box | None = None
        async with self._lock:
            pooled = next((b for b in self._pool if b.workspace == ws and b.owner == owner), None)
            if pooled is not None:
                self._pool.remove(pooled)
            elif self._live() >= self.max_live:
                victim = self._pick_victim()
                if victim is None:
                    raise unavailable(
                        f"all {self.max_live} sandboxes are busy (the server's max_live); "
                        "try again when another session's turn has ended"
                    )
            self._creating += 1
        box: _Box | None = None
        try:
            if victim is not None:
                log.info("sandbox: reaping %s early to stay within max_live", victim.name)
                await self._destroy(victim)
            if pooled is not None:
                box = await self._claim(pooled, session_id)
            if box is None:
                box = await self._create(ws, owner, session_id)
        except BaseException:
            self._creating -= 1
            if box is not None:
                await asyncio.shield(self._destroy(box))
            raise
        # No await from the count to the registration: nothing can run in between.
        self._creating -= 1
        box.in_use += 1
        self._boxes[session_id] = box
        self._schedule_fill()
        return box

    def _pick_victim(self) -> _Box | None:
        """Under the lock: a pooled container, else the longest-idle released sandbox."""
        if self._pool:
            return self._pool.pop(0)
        idle = [b for b in self._boxes.values() if b.in_use == 0]
        if not idle:
            return None
        box = min(idle, key=self._last_used)
        assert box.session_id is not None
        self._boxes.pop(box.session_id)
        return box

    async def _claim(self, box: _Box, session_id: str) -> _Box | None:
        """Give a pooled container to a session (renamed after it); None if it is gone."""
        client = await self._docker()
        name = container_name(self.instance_id, session_id)
        try:
            # Labels cannot change after creation: the name carries the session instead.
            await blocking(client.api.rename, box.container_id, name, what="rename")
        except docker.errors.APIError:
            await self._destroy(box)
            return None
        box.name, box.session_id, box.last_used = name, session_id, time.time()
        return box

    async def _create(self, ws: str, owner: str, session_id: str | None) -> _Box:
        """Start a hardened sandbox container for ``ws``."""
        client = await self._docker()
        plan = await asyncio.to_thread(self._mounts.plan, Path(ws), self.user)
        name = container_name(self.instance_id, session_id)
        kwargs = sandbox_kwargs(
            image=self.image,
            name=name,
            user=plan.user,
            workspace_source=plan.source,
            memory=self.memory,
            cpus=self.cpus,
            pids=self.pids,
            tmpfs_size=self.tmpfs_size,
            container_labels=self._labels(owner, session_id, "sandbox"),
        )
        container = await self._run(client, kwargs)
        box = _Box(
            container_id=container.id,
            name=name,
            workspace=ws,
            owner=owner,
            plan=plan,
            session_id=session_id,
        )
        if self.image not in self._python:
            try:
                self._python[self.image] = await self._find_python(container, plan.user)
            except BaseException:
                await asyncio.shield(self._remove_quietly(container.id))
                raise
        return box

    async def _run(self, client: docker.DockerClient, kwargs: dict[str, Any]) -> Container:
        image = kwargs["image"]
        # The start runs in a thread that a cancellation cannot stop: the task is tracked, and
        # a container that comes up after its caller gave up is removed, not leaked.
        start = asyncio.ensure_future(
            blocking(client.containers.run, **kwargs, what="start a container")
        )
        self._starting.add(start)
        start.add_done_callback(self._starting.discard)
        try:
            return await asyncio.shield(start)
        except asyncio.CancelledError:
            start.add_done_callback(self._remove_late)
            raise
        except docker.errors.ImageNotFound as exc:
            await self._remove_container(str(kwargs["name"]))
            raise unavailable(
                f"the sandbox image {image} is missing; build it with "
                "scripts/build-sandbox-images.sh"
            ) from exc
        except docker.errors.APIError as exc:
            await self._remove_container(str(kwargs["name"]))
            detail = exc.explanation or exc
            raise unavailable(f"Docker could not start a sandbox: {detail}") from exc

    async def _find_python(self, container: Container, user: str) -> str | None:
        """The image's Python interpreter (``python3``), or None when it has none."""
        try:
            res = await blocking(
                container.exec_run,
                ["/bin/sh", "-c", "command -v python3"],
                user=user,
                what="probe python",
            )
        except docker.errors.APIError:
            return None
        return "python3" if res.exit_code == 0 else None

    def _remove_late(self, start: asyncio.Future[Container]) -> None:
        """Remove a container whose start finished after its caller was cancelled."""
        if start.cancelled() or start.exception() is not None:
            return
        task = asyncio.ensure_future(self._remove_quietly(start.result().id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _remove_quietly(self, ref: str) -> None:
        try:
            await self._remove_container(ref)
        except Exception as exc:
            log.warning("sandbox: cannot remove %s: %s", ref[:12], exc)

    async def _sweep(self) -> None:
        """Remove every container labelled with this instance (whatever escaped tracking)."""
        client = await self._docker()
        found = await blocking(
            client.containers.list,
            all=True,
            sparse=True,
            filters={"label": [f"{LABEL_SANDBOX}=1", f"{LABEL_INSTANCE}={self.instance_id}"]},
            what="list containers",
        )
        for container in found:
            await self._remove_container(container.id)

    def _labels(self, owner: str, session_id: str | None, role: str) -> dict[str, str]:
        return labels(
            instance=self.instance_id,
            host=self.host,
            owner=owner,
            session=session_id or "",
            pool=session_id is None,
            role=role,
            extra={**self.extra_labels, LABEL_STATE: self.state_key},
        )

    async def _open_egress(self, box: _Box, allow: list[str]) -> None:
        """Point the sandbox's egress at the proxy with this allowlist (relay on first use)."""
        if not allow and box.relay_id is None:
            return
        # unix socket paths are limited to 107 bytes: a short digest names the folder
        digest = hashlib.sha256(box.name.encode()).hexdigest()[:16]
        folder = instance_dir(self.state_path, self.instance_id) / "egress" / digest
        await self.proxy.open(
            box.name,
            folder / "proxy.sock",
            allow=allow,
            session_id=box.session_id or "",
            owner=box.owner,
        )
        if box.relay_id is not None:
            return
        client = await self._docker()
        relay_name = f"{box.name}-egress"
        kwargs = relay_kwargs(
            image=self.relay_image,
            name=relay_name,
            sandbox_id=box.container_id,
            socket_dir=str(folder),
            container_labels=self._labels(box.owner, box.session_id, "egress-relay"),
        )
        relay = await self._run(client, kwargs)
        box.relay_id = relay.id
        deadline = time.monotonic() + _RELAY_READY_S
        while time.monotonic() < deadline:
            logs = await blocking(relay.logs, what="relay logs")
            if b"relay ready" in logs:
                return
            await asyncio.sleep(0.02)
        raise unavailable(f"the egress relay of {box.name} did not start")

    async def _handle(self, box: _Box) -> SandboxHandle:
        endpoint = endpoint_of(await self._docker())
        assert box.session_id is not None
        return SandboxHandle(
            container_id=box.container_id,
            name=box.name,
            image=self.image,
            session_id=box.session_id,
            owner=box.owner,
            docker_host=endpoint.docker_host,
            api_version=endpoint.api_version,
            user=box.plan.user,
            host_workspace=box.workspace,
            env=dict(PROXY_ENV),
            python=self._python.get(self.image),
            budget_s=self.budget_s,
            ledger=str(self._ledger(box.session_id).path),
            relay_id=box.relay_id,
            memory=self.memory,
        )

    async def _destroy(self, box: _Box) -> None:
        """Remove a container, its relay and its egress listener."""
        await self.proxy.close(box.name)
        if box.relay_id:
            await self._remove_container(box.relay_id)
        await self._remove_container(box.container_id)

    async def _remove_container(self, ref: str) -> bool:
        client = await self._docker()
        try:
            await blocking(client.api.remove_container, ref, force=True, what="remove")
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # removal already in progress
                return False
            raise
        return True

    def _schedule_fill(self) -> None:
        if self._closed or self.pool_size == 0 or self.pool_workspace is None:
            return
        if any(t.get_name() == "sandbox-pool" for t in self._tasks):
            return
        task = asyncio.create_task(self._fill_quietly(), name="sandbox-pool")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill_quietly(self) -> None:
        try:
            await self.fill_pool()
        except Exception:
            log.exception("sandbox: filling the pool failed")

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval_s)
            try:
                if not self._orphans_checked:  # Docker was down at start
                    await self.cleanup_orphans()
                    self._schedule_fill()
                await self.reap_idle()
            except OpenFoalError as exc:
                log.debug("sandbox: reaping skipped: %s", exc.message)
            except Exception:
                log.exception("sandbox: reaping failed")


def _connect(docker_host: str | None) -> docker.DockerClient:
    """:func:`.docker_api.connect`, after checking that a unix endpoint has a listener.

    The SDK leaks the socket of every connection it fails to open; a dead socket path is
    answered here instead, at once and without a leak (blocking: run it in a thread).
    """
    host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    path = Endpoint(host, "").unix_path
    if path is not None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(PING_TIMEOUT_S)
            try:
                probe.connect(path)
            except OSError as exc:
                raise unavailable(
                    f"Docker is unavailable at {host}: {exc.strerror or exc}"
                ) from exc
    return connect(docker_host)
