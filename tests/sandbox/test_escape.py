"""The hardening escape suite: what code in the sandbox tries, and how each attempt fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import pytest_asyncio
from conftest import Sandbox, container_pids, start_sandbox

from openfoal_kernel.executors.base import CommandResult
from openfoal_kernel.protocol.errors import ErrorCode, OpenFoalError
from openfoal_kernel.sandbox.client.executor import DockerExecutor
from openfoal_kernel.sandbox.host.mounts import WorkspaceMounts

pytestmark = pytest.mark.docker

StartScratch = Callable[..., Awaitable[tuple[Sandbox, DockerExecutor]]]


async def sh(ex: DockerExecutor, command: str, *, timeout_s: float = 10.0) -> CommandResult:
    """Run ``command`` in the sandbox."""
    return await ex.run_command(command, timeout_s=timeout_s, max_output_bytes=64 * 1024)


@pytest_asyncio.fixture
async def scratch(
    docker_client: docker.DockerClient, tmp_path: Path
) -> AsyncIterator[StartScratch]:
    """Start a sandbox of its own for a test that damages it (removed afterwards)."""
    made: list[tuple[Sandbox, DockerExecutor, WorkspaceMounts]] = []

    async def start(**limits: Any) -> tuple[Sandbox, DockerExecutor]:
        ws = tmp_path / f"ws{len(made)}"
        ws.mkdir()
        sandbox, mounts = await asyncio.to_thread(
            start_sandbox, docker_client, ws.resolve(), tmp_path / "state", **limits
        )
        ex = DockerExecutor(sandbox.handle)
        made.append((sandbox, ex, mounts))
        return sandbox, ex

    yield start
    for sandbox, ex, mounts in made:
        await ex.aclose()
        try:
            docker_client.api.remove_container(sandbox.container_id, force=True)
        except docker.errors.NotFound:
            pass
        mounts.release()


def status_fields(text: str) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict."""
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in text.splitlines())}


@pytest.mark.asyncio
async def test_root_filesystem_is_read_only(executor: DockerExecutor) -> None:
    for target in ("/escape", "/etc/escape", "/usr/bin/escape", "/var/escape"):
        res = await sh(executor, f"echo x > {target}")
        assert res.exit_code != 0 and "Read-only file system" in res.stderr, (target, res)
    res = await sh(executor, "echo ok > w && echo ok > /tmp/t && cat /workspace/w /tmp/t")
    assert (res.exit_code, res.stdout) == (0, "ok\nok\n")


@pytest.mark.asyncio
async def test_no_capabilities_and_no_new_privileges(executor: DockerExecutor) -> None:
    shell = status_fields((await sh(executor, "cat /proc/self/status")).stdout)
    code = "print(open('/proc/self/status').read())"
    out = await executor.run_python(code, timeout_s=10, max_output_bytes=65536)
    repl = status_fields(out.text)
    for fields in (shell, repl):
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(fields[cap], 16) == 0, (cap, fields[cap])
        assert fields["NoNewPrivs"] == "1"
        assert fields["Uid"].split()[0] != "0"
        assert int(fields["Seccomp"]) > 0  # the engine's default seccomp profile is on


@pytest.mark.asyncio
async def test_privilege_escalation_fails(executor: DockerExecutor) -> None:
    # setuid binaries are present in the image, but no-new-privileges makes them powerless.
    setuid = (await sh(executor, "find / -xdev -perm -4000 -type f 2>/dev/null")).stdout.split()
    assert "/usr/bin/su" in setuid
    attempts = {
        "su": "su -c id root < /dev/null",
        "setuid mount": "mount -t tmpfs none /tmp",
        "unshare -r": "unshare -r id -u",
        "unshare -U": "unshare -U id -u",
        "chroot": "chroot / id -u",
        "setuid(0)": "python3 -c 'import os; os.setuid(0)'",
        "raw socket": "python3 -c 'import socket as s; s.socket(s.AF_PACKET, s.SOCK_RAW)'",
        "engine socket": "test -e /var/run/docker.sock || test -e /run/docker.sock",
        "kernel knob": "echo 1 > /proc/sys/kernel/sysrq",
    }
    for name, command in attempts.items():
        res = await sh(executor, command)
        assert res.exit_code != 0, (name, res)
        assert "uid=0" not in res.stdout and res.stdout.strip() != "0", (name, res)
    assert (await sh(executor, "id -u")).stdout.strip() != "0"


@pytest.mark.asyncio
async def test_no_network_by_default(executor: DockerExecutor) -> None:
    res = await sh(executor, "ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1")
    assert res.stdout.split() == ["lo", "lo"]
    probe = (
        "import socket, sys\n"
        "for fam, typ, addr in [(socket.AF_INET, socket.SOCK_STREAM, ('1.1.1.1', 53)),"
        " (socket.AF_INET, socket.SOCK_STREAM, ('172.17.0.1', 2375)),"
        " (socket.AF_INET, socket.SOCK_DGRAM, ('8.8.8.8', 53)),"
        " (socket.AF_INET6, socket.SOCK_STREAM, ('2606:4700:4700::1111', 53))]:\n"
        "    s = socket.socket(fam, typ); s.settimeout(2)\n"
        "    try:\n"
        "        s.connect(addr) if typ == socket.SOCK_STREAM else s.sendto(b'x', addr)\n"
        "        print('REACHED', addr)\n"
        "    except OSError as e:\n"
        "        print('refused', addr, e.errno)\n"
    )
    out = await executor.run_python(probe, timeout_s=15, max_output_bytes=65536)
    assert out.status == "ok" and "REACHED" not in out.text, out.text
    assert out.text.count("refused") == 4
    lookup = await sh(executor, "getent hosts openfoal-probe.example.com")
    assert lookup.exit_code != 0 and lookup.stdout == ""


@pytest.mark.asyncio
async def test_fork_bomb_is_held_at_the_pids_limit(
    scratch: StartScratch, docker_client: docker.DockerClient
) -> None:
    pids = 48
    sandbox, ex = await scratch(pids=pids)
    bomb = asyncio.create_task(sh(ex, "bomb() { bomb | bomb & }; bomb; sleep 60", timeout_s=3.0))
    peak = 0
    while not bomb.done():
        try:
            top = await asyncio.to_thread(container_pids, docker_client, sandbox.container_id)
            count = len(top)
        except docker.errors.APIError:
            count = 0  # the container is being restarted
        peak = max(peak, count)
        await asyncio.sleep(0.2)
    res = bomb.result()
    assert res.timed_out and res.exit_code == -1
    assert pids // 2 < peak <= pids, peak  # it did fill the limit, and went no further
    # The host and the engine are fine, and so is the sandbox.
    host = await asyncio.create_subprocess_exec("true")
    assert await host.wait() == 0
    assert docker_client.ping()
    after = await sh(ex, "echo alive; ls /workspace")
    assert after.stdout.startswith("alive\n")
    assert len(container_pids(docker_client, sandbox.container_id)) < 8


@pytest.mark.asyncio
async def test_memory_balloon_is_killed(scratch: StartScratch) -> None:
    _, ex = await scratch(memory="96m")
    balloon = "b = []\nwhile True: b.append(bytearray(16 * 1024 * 1024))"
    res = await sh(ex, f"python3 -c '{balloon}'", timeout_s=30)
    assert res.exit_code == 137 and not res.timed_out, res  # SIGKILL by the OOM killer
    await ex.run_python("kept = 1", timeout_s=10, max_output_bytes=1000)
    with pytest.raises(OpenFoalError) as info:
        await ex.run_python(balloon, timeout_s=30, max_output_bytes=1000)
    assert info.value.code == ErrorCode.TOOL_EXEC_FAILED
    assert "out of memory" in info.value.message and "96m" in info.value.message
    again = await ex.run_python("'kept' in globals(), 6 * 7", timeout_s=10, max_output_bytes=99)
    assert again.text == "(False, 42)\n"
    assert (await sh(ex, "echo alive")).stdout == "alive\n"
