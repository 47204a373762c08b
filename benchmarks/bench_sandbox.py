"""Cloud sandbox cost: a tool call in a warm sandbox, and a new session's first tool call.

Run: ``python -m benchmarks sandbox`` (needs the Docker engine and the sandbox images).

- Warm: ``DockerExecutor.run_command("true")`` in a session's running sandbox against a raw
  ``container.exec_run(["true"])`` through the Docker SDK on the same container,
  interleaved. Target: p50 ratio <= 1.2x.
- First call: ``SandboxManager.acquire`` of a new session on a filled pool, plus its first
  ``run_command("true")`` through a new executor (as a new session's kernel does). Baseline:
  a raw hardened ``containers.run`` (the same spec, detached, returned once running), what
  a first call would at least cost without the pool. Before each sample the pool has
  refilled, so the background start never overlaps a measurement. Target: p50 <= 150 ms.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import docker

from benchmarks._table import Row, percentile, print_table
from openfoal_kernel.sandbox.client.executor import DockerExecutor
from openfoal_kernel.sandbox.host.manager import DEFAULT_IMAGE, SandboxManager
from openfoal_kernel.sandbox.host.mounts import WorkspaceMounts
from openfoal_kernel.sandbox.host.spec import container_name, labels, sandbox_kwargs

WARM_SAMPLES = int(os.environ.get("OPENFOAL_BENCH_SANDBOX_SAMPLES", "40"))
COLD_SAMPLES = int(os.environ.get("OPENFOAL_BENCH_SANDBOX_COLD_SAMPLES", "12"))
TARGET_RATIO = 1.2
TARGET_FIRST_MS = 150.0
OWNER = "bench"


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Milliseconds one call of ``fn`` took."""
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def wait_pool(manager: SandboxManager) -> None:
    """Wait until the pool is full again (its refill runs in the background)."""
    deadline = time.monotonic() + 60
    while manager.pooled < manager.pool_size:
        if time.monotonic() > deadline:
            raise RuntimeError("the sandbox pool did not refill within 60 s")
        await asyncio.sleep(0.02)


async def warm_call(manager: SandboxManager, ws: Path, n: int) -> tuple[list[float], list[float]]:
    """Per-call ms of the executor's ``true`` and of a raw SDK exec, same container."""
    handle = await manager.acquire("bench-warm", OWNER, ws)
    ex = DockerExecutor(handle)
    client = docker.DockerClient(base_url=handle.docker_host, version=handle.api_version)
    try:
        container = client.containers.get(handle.container_id)

        async def tool() -> None:
            res = await ex.run_command("true", timeout_s=30, max_output_bytes=4096)
            assert res.exit_code == 0, res

        async def raw() -> None:
            res = container.exec_run(["true"], user=handle.user)
            assert res.exit_code == 0, res

        for _ in range(5):  # warm-up: connections, the page cache of the image's binaries
            await tool()
            await raw()
        ours: list[float] = []
        base: list[float] = []
        for _ in range(n):
            ours.append(await timed(tool))
            base.append(await timed(raw))
        return ours, base
    finally:
        await ex.aclose()
        client.close()
        await manager.release("bench-warm")
        await manager.remove("bench-warm")


async def first_call(
    manager: SandboxManager, ws: Path, state: Path, n: int
) -> tuple[list[float], list[float]]:
    """Per-sample ms of a new session's pooled first call, and of a raw hardened start."""
    client = docker.DockerClient(base_url=manager.docker_host or None, version="auto")
    mounts = WorkspaceMounts(state / "bench-mounts")
    plan = await asyncio.to_thread(mounts.plan, ws)
    ours: list[float] = []
    base: list[float] = []
    try:
        for i in range(n):
            session = f"bench-first-{i}"
            await wait_pool(manager)

            async def first(session: str = session) -> None:
                handle = await manager.acquire(session, OWNER, ws)
                ex = DockerExecutor(handle)
                try:
                    res = await ex.run_command("true", timeout_s=30, max_output_bytes=4096)
                    assert res.exit_code == 0, res
                finally:
                    await ex.aclose()

            ours.append(await timed(first))
            await manager.release(session)
            await manager.remove(session)
            await wait_pool(manager)

            kwargs = sandbox_kwargs(
                image=manager.image,
                name=container_name(manager.instance_id, f"raw-{i}"),
                user=plan.user,
                workspace_source=plan.source,
                memory=manager.memory,
                cpus=manager.cpus,
                pids=manager.pids,
                tmpfs_size=manager.tmpfs_size,
                container_labels=labels(
                    instance=manager.instance_id,
                    host=manager.host,
                    owner=OWNER,
                    session=f"raw-{i}",
                    pool=False,
                    role="sandbox",
                ),
            )

            async def raw(kwargs: dict[str, object] = kwargs) -> None:
                client.containers.run(**kwargs)  # detached: returns once it was started

            base.append(await timed(raw))
            state_of = client.api.inspect_container(str(kwargs["name"]))["State"]
            assert state_of["Running"], state_of
            client.api.remove_container(str(kwargs["name"]), force=True)
        return ours, base
    finally:
        client.close()
        await asyncio.to_thread(mounts.release)


async def main() -> bool:
    """Measure both rows, print the table, return whether every target was met."""
    with tempfile.TemporaryDirectory(prefix="openfoal-bench-sandbox-") as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        state = Path(tmp) / "state"
        manager = SandboxManager(
            image=DEFAULT_IMAGE,
            instance_id=f"bench-{uuid.uuid4().hex[:8]}",
            owner_label=OWNER,
            workspace=ws,
            pool_size=1,
            max_live=4,
            state_dir=state,
        )
        await manager.start()
        try:
            await manager.acquire("bench-probe", OWNER, ws)  # raises when Docker is down
            await manager.remove("bench-probe")
            await wait_pool(manager)
            warm, exec_run = await warm_call(manager, ws, WARM_SAMPLES)
            first, run = await first_call(manager, ws, state, COLD_SAMPLES)
        finally:
            await manager.aclose()

    warm50, raw50 = percentile(warm, 50), percentile(exec_run, 50)
    ratio = warm50 / raw50
    first50, run50 = percentile(first, 50), percentile(run, 50)
    rows = [
        Row(
            metric=f"warm tool call: run_command('true'), {len(warm)} samples",
            value=f"p50 {warm50:.1f} ms, p95 {percentile(warm, 95):.1f} ms ({ratio:.2f}x)",
            baseline=f"SDK exec_run p50 {raw50:.1f} ms, p95 {percentile(exec_run, 95):.1f} ms",
            target=f"<= {TARGET_RATIO:g}x",
            ok=ratio <= TARGET_RATIO,
        ),
        Row(
            metric=f"new session's first call: pooled acquire + run_command, {len(first)} samples",
            value=f"p50 {first50:.1f} ms, p95 {percentile(first, 95):.1f} ms",
            baseline=f"hardened containers.run p50 {run50:.1f} ms ({run50 / first50:.1f}x ours)",
            target=f"p50 <= {TARGET_FIRST_MS:g} ms",
            ok=first50 <= TARGET_FIRST_MS,
        ),
    ]
    return print_table("Cloud sandbox: tool call and first call of a session", rows)


if __name__ == "__main__":
    raise SystemExit(0 if asyncio.run(main()) else 3)
