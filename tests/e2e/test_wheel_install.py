"""The wheel on its own: built with ``python -m build``, installed into a fresh virtualenv with
nothing else, it imports, enables the server extension, installs the kernel spec and runs a
cloud-mode turn in the Docker sandbox.

Slow (a wheel build and a full install): marked ``wheel``. It needs the Docker engine and the
sandbox images; without them it fails, never skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess, scripted_env

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.docker,
    pytest.mark.wheel,
    pytest.mark.timeout(1800),  # the first test also builds and installs the wheel
]

ROOT = Path(__file__).resolve().parents[2]


def _run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> str:
    """Run a command; its output, or a failure that shows it."""
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    )
    return done.stdout + done.stderr


@pytest.fixture
def installed(tmp_path: Path) -> dict[str, Any]:
    """A fresh virtualenv with only the built wheel (and its dependencies) installed."""
    try:
        docker.from_env(timeout=30).images.get("openfoal/sandbox-shell:latest")
    except Exception as exc:
        pytest.fail(
            f"Docker or the sandbox images are missing ({exc}): run scripts/install-docker.sh "
            "and scripts/build-sandbox-images.sh",
            pytrace=False,
        )
    base = tmp_path / "wheel"
    dist, venv, home = base / "dist", base / "venv", base / "home"
    home.mkdir(parents=True)
    build_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        env=build_env | {"HOME": os.environ.get("HOME", str(home))},
    )
    (wheel,) = dist.glob("openfoal-*.whl")
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", str(wheel)], timeout=900)
    # the checks and the server see only the fresh install: a home of their own, its bin first
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    return {"python": python, "venv": venv, "env": env, "home": home}


def _check_registered(installed: dict[str, Any]) -> None:
    """The fresh install imports from itself and has registered its three parts."""
    env, venv = installed["env"], installed["venv"]
    where = _run(
        [
            installed["python"],
            "-c",
            "import openfoal_kernel, openfoal_server_ext, docker, zmq, prometheus_client;"
            "print(openfoal_server_ext.__file__)",
        ],
        env=env,
        cwd=installed["home"],  # not the checkout, whose packages would shadow the wheel's
    )
    assert where.strip().startswith(str(venv)), where
    extensions = _run([str(venv / "bin" / "jupyter"), "server", "extension", "list"], env=env)
    assert any(
        "openfoal_server_ext" in line and "enabled" in line for line in extensions.splitlines()
    )
    kernels = _run([str(venv / "bin" / "jupyter"), "kernelspec", "list"], env=env)
    assert any(
        line.split()[0] == "openfoal" and str(venv) in line for line in kernels.splitlines()[1:]
    ), kernels
    labext = _run([str(venv / "bin" / "jupyter"), "labextension", "list"], env=env)
    assert "openfoal" in labext and "enabled" in labext, labext


async def test_the_wheel_alone_registers_itself_and_runs_a_cloud_turn(
    installed: dict[str, Any], model: Any, tmp_path: Path
) -> None:
    _check_registered(installed)
    server = ServerProcess(
        tmp_path / "root",
        env={**installed["env"], **scripted_env(model)},
        python=installed["python"],
    )
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo from-$((6*7))"})]),
        Reply(steps=[TextStep(text="done")]),
    )
    try:
        server.start(timeout=120)
        async with GatewayClient(server.ws_url, token=server.token) as c:
            _, events = await c.run("run it in the sandbox", runtimeMode="cloud")
    finally:
        server.stop()
    by_name = {e["event"]: e["payload"] for e in events}
    assert by_name["agent.accepted"]["runtimeMode"] == "cloud", server.log()
    assert by_name["agent.tool_call"]["runtimeMode"] == "cloud"
    result = by_name["agent.tool_result"]
    assert result["status"] == "success", (result, server.log())
    assert result["output"].strip() == "from-42"
    assert "agent.completed" in by_name
