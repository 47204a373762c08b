"""The sandbox lifecycle against a real engine: reuse, pool, caps, reaping, budget, orphans."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import pytest_asyncio

from openfoal_kernel.protocol.errors import ErrorCode, OpenFoalError
from openfoal_kernel.sandbox.client.executor import DockerExecutor
from openfoal_kernel.sandbox.handle import (
    LABEL_HOST,
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_POOL,
    LABEL_SANDBOX,
    LABEL_SESSION,
    SandboxHandle,
)
from openfoal_kernel.sandbox.host.instances import LABEL_STATE, state_key
from openfoal_kernel.sandbox.host.manager import SandboxManager

pytestmark = [pytest.mark.docker, pytest.mark.asyncio]

OWNER = "tester"
REPO = Path(__file__).resolve().parents[2]

MakeManager = Callable[..., Awaitable[SandboxManager]]


def containers_of(client: docker.DockerClient, instance: str) -> dict[str, dict[str, str]]:
    """The containers (id -> labels) of one manager instance, stopped ones included."""
    found = client.containers.list(
        all=True, sparse=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}
    )
    return {c.id: c.attrs.get("Labels") or {} for c in found}


def exists(client: docker.DockerClient, container_id: str) -> bool:
    """Whether the container is still there."""
    try:
        client.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return False
    return True


def mount_table() -> str:
    """This host's mount table (the mount namespace of the test process)."""
    return Path("/proc/self/mountinfo").read_text("utf-8", "surrogateescape")


async def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` (blocking, so in a thread) until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(0.05)


async def shell(handle: SandboxHandle, command: str) -> str:
    """Run ``command`` through a fresh executor (as a new turn's kernel would); its stdout."""
    ex = DockerExecutor(handle)
    try:
        res = await ex.run_command(command, timeout_s=30, max_output_bytes=65536)
    finally:
        await ex.aclose()
    assert res.exit_code == 0, res
    return res.stdout


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The session's workspace folder."""
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws.resolve()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The managers' state folder (instance locks, ledgers) for one test."""
    return tmp_path / "state"


@pytest_asyncio.fixture
async def make_manager(
    docker_client: docker.DockerClient,
    workspace: Path,
    state_dir: Path,
    instance_ids: Callable[[], str],
) -> AsyncIterator[MakeManager]:
    """Started managers with small limits; closing each must leave no container behind."""
    made: list[SandboxManager] = []

    async def make(**kwargs: Any) -> SandboxManager:
        kwargs.setdefault("instance_id", instance_ids())
        kwargs.setdefault("state_dir", state_dir)
        kwargs.setdefault("workspace", workspace)
        kwargs.setdefault("owner_label", OWNER)
        kwargs.setdefault("pool_size", 0)
        kwargs.setdefault("memory", "128m")
        kwargs.setdefault("tmpfs_size", "16m")
        manager = SandboxManager(**kwargs)
        made.append(manager)
        await manager.start()
        return manager

    yield make
    for manager in made:
        await manager.aclose()
    mounts = mount_table()
    for manager in made:
        if manager.docker_host is None:
            left = containers_of(docker_client, manager.instance_id)
            assert not left, f"aclose left containers of {manager.instance_id}: {list(left)}"
        assert f"/instances/{manager.instance_id}/" not in mounts, "aclose left a mount"


async def test_session_keeps_its_container_files_and_variables(
    make_manager: MakeManager, workspace: Path
) -> None:
    manager = await make_manager()
    first = await manager.acquire("s_keep", OWNER, workspace)
    ex = DockerExecutor(first)
    try:
        res = await ex.run_command("echo kept > /tmp/mark", timeout_s=30, max_output_bytes=1024)
        assert res.exit_code == 0, res
        code = await ex.run_python("answer = 41", timeout_s=30, max_output_bytes=1024)
        assert code.status == "ok", code
    finally:
        await ex.aclose()
    await manager.release("s_keep")

    second = await manager.acquire("s_keep", OWNER, workspace)
    assert second.container_id == first.container_id
    assert second.session_id == "s_keep" and second.owner == OWNER
    ex = DockerExecutor(second)  # the next turn's kernel: a new executor, same container
    try:
        res = await ex.run_command("cat /tmp/mark", timeout_s=30, max_output_bytes=1024)
        assert res.stdout == "kept\n", res
        code = await ex.run_python("print(answer + 1)", timeout_s=30, max_output_bytes=1024)
        assert code.status == "ok" and code.text.strip() == "42", code
    finally:
        await ex.aclose()
    await manager.release("s_keep")
    assert manager.live == 1


async def test_sessions_get_their_own_containers(
    make_manager: MakeManager, docker_client: docker.DockerClient, workspace: Path
) -> None:
    manager = await make_manager()
    # Two turns of one session racing: one container; another session: another one.
    a1, a2, b = await asyncio.gather(
        manager.acquire("s_a", OWNER, workspace),
        manager.acquire("s_a", OWNER, workspace),
        manager.acquire("s_b", OWNER, workspace),
    )
    assert a1.container_id == a2.container_id
    assert b.container_id != a1.container_id
    assert manager.live == 2
    found = containers_of(docker_client, manager.instance_id)
    assert found[a1.container_id][LABEL_SESSION] == "s_a"
    assert found[b.container_id][LABEL_SESSION] == "s_b"
    await shell(a1, "echo only-a > /tmp/mine")
    assert "only-a" not in await shell(b, "cat /tmp/mine 2>/dev/null; true")


async def test_first_acquire_takes_the_pool_and_it_refills(
    make_manager: MakeManager, docker_client: docker.DockerClient, workspace: Path
) -> None:
    manager = await make_manager(pool_size=1)
    await wait_until(lambda: manager.pooled == 1, 30, "the pool filled after start")
    (pooled_id,) = containers_of(docker_client, manager.instance_id)

    started = time.perf_counter()
    handle = await manager.acquire("s_pool", OWNER, workspace)
    took = time.perf_counter() - started
    assert handle.container_id == pooled_id
    assert took < 1.0, f"acquire from the pool took {took:.3f} s"
    assert "s_pool" in handle.name  # the session is carried by the name of a pooled container
    assert (await shell(handle, "echo ok")) == "ok\n"

    await wait_until(lambda: manager.pooled == 1, 30, "the pool refilled in the background")
    found = containers_of(docker_client, manager.instance_id)
    assert len(found) == 2 and manager.live == 2
    (refill,) = (cid for cid in found if cid != pooled_id)
    assert found[refill][LABEL_POOL] == "1" and found[refill][LABEL_OWNER] == OWNER


async def test_pool_does_not_serve_another_owner(
    make_manager: MakeManager, workspace: Path
) -> None:
    manager = await make_manager(pool_size=1)
    await wait_until(lambda: manager.pooled == 1, 30, "the pool filled after start")
    handle = await manager.acquire("s_other", "someone-else", workspace)
    assert handle.owner == "someone-else"
    assert manager.pooled == 1  # still waiting for its own owner


async def test_max_live_fails_fast_when_all_busy_and_reaps_idle_early(
    make_manager: MakeManager, docker_client: docker.DockerClient, workspace: Path
) -> None:
    manager = await make_manager(max_live=2)
    a = await manager.acquire("s_a", OWNER, workspace)
    b = await manager.acquire("s_b", OWNER, workspace)

    started = time.perf_counter()
    with pytest.raises(OpenFoalError) as caught:
        await manager.acquire("s_c", OWNER, workspace)
    assert time.perf_counter() - started < 1.0  # refused at once, not queued
    assert caught.value.code is ErrorCode.SANDBOX_UNAVAILABLE
    assert caught.value.retryable
    assert "max_live" in caught.value.message
    assert manager.live == 2

    await manager.release("s_a")  # a's turn ended: its sandbox may make room
    c = await manager.acquire("s_c", OWNER, workspace)
    assert not exists(docker_client, a.container_id)
    assert exists(docker_client, b.container_id)
    assert c.container_id not in (a.container_id, b.container_id)
    assert manager.live == 2


async def test_idle_sandbox_is_reaped_after_ttl_and_replaced(
    make_manager: MakeManager, docker_client: docker.DockerClient, workspace: Path
) -> None:
    manager = await make_manager(idle_ttl=0.5, reap_interval=0.1)
    idle = await manager.acquire("s_idle", OWNER, workspace)
    busy = await manager.acquire("s_busy", OWNER, workspace)  # never released: in a turn
    await manager.release("s_idle")

    await wait_until(lambda: not exists(docker_client, idle.container_id), 10, "idle reaped")
    await asyncio.sleep(0.3)  # a few more reaper rounds past the TTL
    assert exists(docker_client, busy.container_id)
    assert manager.live == 1

    again = await manager.acquire("s_idle", OWNER, workspace)
    assert again.container_id != idle.container_id
    assert (await shell(again, "echo back")) == "back\n"


async def test_remove_deletes_the_container(
    make_manager: MakeManager, docker_client: docker.DockerClient, workspace: Path
) -> None:
    manager = await make_manager()
    handle = await manager.acquire("s_gone", OWNER, workspace)
    await manager.release("s_gone")
    await manager.remove("s_gone")
    assert not exists(docker_client, handle.container_id)
    assert manager.live == 0
    await manager.remove("s_gone")  # twice is fine


async def test_budget_breaker(make_manager: MakeManager, workspace: Path) -> None:
    manager = await make_manager(budget=0.3)
    handle = await manager.acquire("s_budget", OWNER, workspace)
    assert handle.budget_s == 0.3 and handle.ledger
    ex = DockerExecutor(handle)
    try:
        res = await ex.run_command("sleep 0.5", timeout_s=30, max_output_bytes=1024)
        assert res.exit_code == 0, res
        assert manager.usage_s("s_budget") >= 0.5  # the executor charged the manager's ledger
        with pytest.raises(OpenFoalError) as caught:
            await ex.run_command("true", timeout_s=30, max_output_bytes=1024)
        assert caught.value.code is ErrorCode.BUDGET_EXCEEDED
        assert not caught.value.retryable
        with pytest.raises(OpenFoalError) as caught:
            await ex.run_python("1", timeout_s=30, max_output_bytes=1024)
        assert caught.value.code is ErrorCode.BUDGET_EXCEEDED
    finally:
        await ex.aclose()
    await manager.release("s_budget")
    with pytest.raises(OpenFoalError) as caught:
        await manager.acquire("s_budget", OWNER, workspace)
    assert caught.value.code is ErrorCode.BUDGET_EXCEEDED
    assert "budget" in caught.value.message

    # Another session has its own budget; deleting the session forgets the spent one.
    await manager.acquire("s_fresh", OWNER, workspace)
    await manager.remove("s_budget")
    assert manager.usage_s("s_budget") == 0
    await manager.acquire("s_budget", OWNER, workspace)


async def test_hardened_spec_is_applied(
    make_manager: MakeManager, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    ws = tmp_path / "user-ws"
    ws.mkdir()
    if os.geteuid() == 0:
        os.chown(ws, 1000, 1000)  # a regular user's workspace: the sandbox runs as that user
    st = ws.stat()
    manager = await make_manager(workspace=ws, memory="96m", cpus=0.5, pids=64, tmpfs_size="8m")
    handle = await manager.acquire("s_spec", "alice", ws)
    info = docker_client.api.inspect_container(handle.container_id)
    config, host = info["Config"], info["HostConfig"]

    assert config["User"] == f"{st.st_uid}:{st.st_gid}" == handle.user
    assert not config["User"].startswith("0")
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert host["Privileged"] is False
    assert host["Memory"] == 96 * 2**20 and host["MemorySwap"] == 96 * 2**20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert set(host["Tmpfs"]) == {"/tmp"} and "size=8m" in host["Tmpfs"]["/tmp"]
    assert host["NetworkMode"] == "none"
    assert host["Init"] is True
    (mount,) = info["Mounts"]
    assert mount["Destination"] == "/workspace" and mount["Source"] == str(ws)
    labels = config["Labels"]
    assert labels[LABEL_OWNER] == "alice" and labels[LABEL_SESSION] == "s_spec"
    assert labels[LABEL_SANDBOX] == "1" and labels[LABEL_INSTANCE] == manager.instance_id
    assert labels[LABEL_HOST] == socket.gethostname()
    assert labels[LABEL_STATE] == state_key(manager.state_dir)

    # And as seen from inside.
    out = await shell(
        handle,
        "id -u; touch /rootfs-probe 2>/dev/null && echo rootfs-writable; "
        "echo x > /tmp/t && echo tmp-ok; echo y > /workspace/w && echo ws-ok",
    )
    assert out.split() == [str(st.st_uid), "tmp-ok", "ws-ok"]
    assert (ws / "w").stat().st_uid == st.st_uid


def _dead_socket(folder: Path) -> tuple[socket.socket, str]:
    """A unix socket path that is bound but never listens (connections are refused)."""
    path = folder / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock, f"unix://{path}"


async def test_docker_down_fails_fast_and_start_survives(
    make_manager: MakeManager, workspace: Path, tmp_path: Path
) -> None:
    sock, host = _dead_socket(tmp_path)
    try:
        manager = await make_manager(docker_host=host, pool_size=1)  # start() must not raise
        for _ in range(2):  # and every later call fails as fast
            started = time.perf_counter()
            with pytest.raises(OpenFoalError) as caught:
                await manager.acquire("s_down", OWNER, workspace)
            assert time.perf_counter() - started < 3.0
            assert caught.value.code is ErrorCode.SANDBOX_UNAVAILABLE
            assert caught.value.retryable
            assert "Docker is unavailable" in caught.value.message
            assert host.removeprefix("unix://") in caught.value.message
        assert manager.live == 0
        with pytest.raises(OpenFoalError) as caught:
            await manager.cleanup_orphans()
        assert caught.value.code is ErrorCode.SANDBOX_UNAVAILABLE
    finally:
        sock.close()


async def test_docker_silent_is_a_timeout_not_a_hang(
    make_manager: MakeManager, workspace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "silent.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen(8)  # connections are queued, never answered
    try:
        manager = await make_manager(docker_host=f"unix://{path}")
        started = time.perf_counter()
        with pytest.raises(OpenFoalError) as caught:
            await manager.acquire("s_silent", OWNER, workspace)
        assert time.perf_counter() - started < 8.0
        assert caught.value.code is ErrorCode.SANDBOX_UNAVAILABLE
        assert "Docker is unavailable" in caught.value.message
    finally:
        sock.close()


_SERVER = """
import asyncio, sys
from pathlib import Path
from openfoal_kernel.sandbox.host.manager import SandboxManager

async def main():
    instance, state, ws = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    manager = SandboxManager(instance_id=instance, state_dir=state, workspace=ws,
                             owner_label="tester", pool_size=0, memory="64m")
    await manager.start()
    handle = await manager.acquire("s_orphan", "tester", ws)
    print(handle.container_id, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_orphans_of_a_killed_server_are_removed(
    make_manager: MakeManager,
    docker_client: docker.DockerClient,
    workspace: Path,
    state_dir: Path,
    instance_ids: Callable[[], str],
) -> None:
    (workspace / "keep.txt").write_text("the user's file")
    # A live server instance sharing the state folder: its containers must stay.
    live = await make_manager()
    kept = await live.acquire("s_live", OWNER, workspace)

    dead_instance = instance_ids()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SERVER,
        dead_instance,
        str(state_dir),
        str(workspace),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        orphan = line.decode().strip()
        assert orphan and exists(docker_client, orphan), line
    finally:
        proc.kill()  # kill -9: no aclose, no cleanup
        await proc.wait()
    assert exists(docker_client, orphan)
    lock = state_dir / "instances" / f"{dead_instance}.lock"
    assert lock.exists()

    dead_dir = state_dir / "instances" / dead_instance
    fresh = await make_manager()  # start() removes the orphans
    assert not exists(docker_client, orphan)
    assert exists(docker_client, kept.container_id)
    assert not lock.exists()
    # Its files went too: the workspace mapping it made is unmounted, never recursed into.
    assert not dead_dir.exists()
    assert str(dead_dir) not in mount_table()
    assert (workspace / "keep.txt").read_text() == "the user's file"
    assert (state_dir / "instances" / f"{live.instance_id}.lock").exists()
    assert await fresh.cleanup_orphans() == 0
    assert exists(docker_client, kept.container_id)
    assert (await shell(kept, "echo alive")) == "alive\n"


async def test_orphan_check_ignores_other_state_folders(
    make_manager: MakeManager,
    docker_client: docker.DockerClient,
    workspace: Path,
    tmp_path: Path,
) -> None:
    # A server keeping its locks elsewhere (another user, another test) is not judged dead.
    other = await make_manager(state_dir=tmp_path / "elsewhere")
    theirs = await other.acquire("s_theirs", OWNER, workspace)
    mine = await make_manager()
    assert await mine.cleanup_orphans() == 0
    assert exists(docker_client, theirs.container_id)


async def test_aclose_and_cancelled_acquire_leave_nothing(
    make_manager: MakeManager, docker_client: docker.DockerClient, workspace: Path
) -> None:
    manager = await make_manager()
    turn = asyncio.create_task(manager.acquire("s_abort", OWNER, workspace))
    await asyncio.sleep(0.05)  # the container start is under way in a thread
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    await wait_until(
        lambda: not containers_of(docker_client, manager.instance_id), 30, "late start removed"
    )
    assert manager.live == 0

    # Closed while the pool is still being filled: nothing may appear afterwards.
    filling = await make_manager(pool_size=2)
    await filling.aclose()
    await asyncio.sleep(0.5)
    assert not containers_of(docker_client, filling.instance_id)
    with pytest.raises(OpenFoalError) as caught:
        await filling.acquire("s_late", OWNER, workspace)
    assert caught.value.code is ErrorCode.SANDBOX_UNAVAILABLE
