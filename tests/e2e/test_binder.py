"""``binder/``: in a fresh virtualenv, ``requirements.txt`` and ``postBuild`` give a JupyterLab
with the OpenFoal chat on the demo model, as Binder would build it.

The project is installed from this checkout (pip's configured local package index serves the
dependencies); the lab extension already built in the checkout is reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from openfoal_testing.plugin import ServerProcess

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], *, env: dict[str, str], timeout: float = 800) -> None:
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"


def test_binder_postbuild_opens_lab_with_the_chat_on_the_demo_model(tmp_path: Path) -> None:
    venv, home = tmp_path / "venv", tmp_path / "home"
    home.mkdir()
    _run([sys.executable, "-m", "venv", str(venv)], env=dict(os.environ))
    bindir = venv / "bin"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "OPENFOAL"))},
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "HOME": str(home),
        "VIRTUAL_ENV": str(venv),
        "JUPYTER_PLATFORM_DIRS": "1",
        # one Jupyter config dir for postBuild and the server, as on Binder (the user's)
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
    }
    _run(
        [str(bindir / "python"), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"],
        env=env,
    )
    _run(["bash", "binder/postBuild"], env=env, timeout=300)

    server = ServerProcess(tmp_path / "root", env=env, python=str(bindir / "python"))
    try:
        server.start(timeout=120)
        lab = httpx.get(server.url + "lab", params={"token": server.token}, timeout=60)
        assert lab.status_code == 200 and "openfoal" in lab.text  # the chat's extension loads
        accepted = server.api("agent.run", {"input": "hello", "idempotencyKey": uuid.uuid4().hex})
        sid = accepted.json()["payload"]["sessionId"]
        # the demo tours the tools; its shell command waits at a gate, which we approve
        deadline = time.monotonic() + 240
        events: list[dict] = []
        while time.monotonic() < deadline:
            got = server.api("sessions.get", {"sessionId": sid, "afterSeq": 0, "limit": 1000})
            events = got.json()["payload"]["events"]
            if any(e["event"] in ("agent.completed", "agent.failed") for e in events):
                break
            for gate in server.api("policy-gate.list", {"status": "pending"}).json()["payload"][
                "items"
            ]:
                server.api(
                    "policy-gate.resolve",
                    {
                        "gateId": gate["gateId"],
                        "decision": "approve",
                        "idempotencyKey": gate["gateId"],
                    },
                )
            time.sleep(0.5)
        ended = [e["event"] for e in events if e["event"] in ("agent.completed", "agent.failed")]
        failed = [e["payload"] for e in events if e["event"] == "agent.failed"]
        assert ended == ["agent.completed"], failed or events[-3:]
        text = "".join(e["payload"].get("delta", "") for e in events)
        assert "[demo model]" in text
    except BaseException:
        print(server.log())
        raise
    finally:
        server.stop()
