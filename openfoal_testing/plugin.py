"""Pytest fixtures for OpenFoal: a scripted model and real Jupyter servers with the gateway.

Enable with ``pytest_plugins = ["openfoal_testing.plugin"]``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openfoal_kernel.scripted import ScriptedModelServer

SCRIPTED_MODEL = "openai:scripted"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, chars: int = 20000) -> str:
    """The end of a server's output file ('' before it exists)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


def stop_group(proc: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """Stop a server and its kernels: SIGTERM to its process group, SIGKILL after ``grace_s``."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class ServerProcess:
    """A ``jupyter server`` subprocess with OpenFoal enabled, on loopback with a token."""

    def __init__(
        self,
        root: Path,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        token: str = "openfoal-test-token",
        python: str = sys.executable,
    ) -> None:
        self.root = root
        self.python = python  # the interpreter (and so the install) the server runs from
        self.token = token
        self.port = free_port()
        self.extra_env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/openfoal/ws"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start and wait until the gateway answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "JUPYTER_PLATFORM_DIRS": "1",
            # the user's own Jupyter config (a model saved from the console) stays out
            "JUPYTER_CONFIG_DIR": str(self.root.parent / "jupyter-config"),
            **self.extra_env,
        }
        cmd = [
            self.python,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            # no pre-started sandbox per test server (the sandbox tests cover the pool)
            "--SandboxManager.pool_size=0",
            *self.args,
        ]
        with open(self.log_path, "ab") as log:
            # run in the root, so no package in the current folder shadows the installed one
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited early:\n{self.log()}")
            try:
                # a method call answers once the gateway has loaded its state
                r = httpx.post(
                    self.url + "openfoal/api/sessions.list",
                    json={"limit": 1},
                    headers={"Authorization": f"token {self.token}"},
                    timeout=5,
                )
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"jupyter server did not answer in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """The server's output so far."""
        return log_tail(self.log_path)

    def api(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        """POST a method to the REST surface."""
        return httpx.post(
            self.url + f"openfoal/api/{method}",
            json=params or {},
            headers={"Authorization": f"token {self.token}", **kw.pop("headers", {})},
            timeout=kw.pop("timeout", 30),
            **kw,
        )

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL)."""
        stop_group(self.proc, 15)

    def kill(self) -> None:
        """SIGKILL the server alone (its kernels are orphaned, as after a crash), then reap them."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(10)
        # the kernels shared the server's process group: clean them up as an OS would
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def restart(self) -> ServerProcess:
        """Stop and start again on a new port, same root and store."""
        self.stop()
        self.port = free_port()
        return self.start()


@pytest.fixture(scope="session")
def scripted_model() -> Iterator[ScriptedModelServer]:
    """A scripted model server on loopback, shared by the session; reset per test."""
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model(scripted_model: ScriptedModelServer) -> ScriptedModelServer:
    """The scripted model, emptied of previous tests' scripts and requests."""
    scripted_model.reset()
    return scripted_model


#: Server arguments that lift every rate limit (for tests that send many frames on purpose).
UNLIMITED_RATES = [f"--OpenFoalApp.rate_limits={c}=0" for c in ("read", "write", "run")]


def scripted_env(model_server: ScriptedModelServer) -> dict[str, str]:
    """Environment pointing OpenFoal at the scripted model."""
    return {
        "OPENFOAL_MODEL": SCRIPTED_MODEL,
        "OPENAI_BASE_URL": model_server.openai_base_url,
        "OPENAI_API_KEY": "sk-scripted",
        "OPENFOAL_FALLBACK_MODELS": "",
    }


@contextlib.contextmanager
def module_server(
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
    name: str,
    args: list[str],
) -> Iterator[ServerProcess]:
    """A started server of one test module's own, wired to the scripted model (for a module
    fixture that needs other settings than ``shared_server``); stopped on exit."""
    server = ServerProcess(
        tmp_path_factory.mktemp(name) / "root", env=scripted_env(scripted_model), args=args
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server_factory(tmp_path: Path, scripted_model: ScriptedModelServer) -> Iterator[Any]:
    """Start servers wired to the scripted model; all are stopped at the end of the test."""
    started: list[ServerProcess] = []

    def make(
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        root: Path | None = None,
        start: bool = True,
    ) -> ServerProcess:
        server = ServerProcess(
            root or tmp_path / "root",
            env={**scripted_env(scripted_model), **(env or {})},
            args=args,
        )
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, scripted_model: ScriptedModelServer
) -> Iterator[ServerProcess]:
    """One server per test module (faster); tests must not depend on its prior state."""
    root = tmp_path_factory.mktemp("shared") / "root"
    server = ServerProcess(root, env=scripted_env(scripted_model)).start()
    yield server
    server.stop()
