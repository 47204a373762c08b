"""A real ``jupyter lab`` subprocess for the browser tests: loopback, token, temp dirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from openfoal_testing.plugin import free_port, log_tail, stop_group


class LabServer:
    """JupyterLab with the OpenFoal server extension, restartable on the same port."""

    def __init__(
        self,
        base: Path,
        env: dict[str, str],
        token: str = "openfoal-ui-token",
        args: list[str] | None = None,
    ) -> None:
        """``env`` and ``args`` are added to the server's environment and command line."""
        self.base = base
        self.root = base / "root"
        self.token = token
        self.port = free_port()
        self.env = env
        self.args = list(args or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "lab.log"

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def lab_url(self) -> str:
        """The lab page, with a reset workspace and the token that logs the browser in."""
        return f"{self.url}lab?reset&token={self.token}"

    def start(self, timeout: float = 90.0) -> LabServer:
        """Start ``jupyter lab`` and wait until the OpenFoal gateway answers."""
        dirs = {name: self.base / name for name in ("config", "data", "runtime", "settings", "ws")}
        for path in [self.root, *dirs.values()]:
            path.mkdir(parents=True, exist_ok=True)
        # Answer JupyterLab's "get notified about news?" prompt up front: no toast in the way.
        news = dirs["settings"] / "@jupyterlab/apputils-extension/notification.jupyterlab-settings"
        news.parent.mkdir(parents=True, exist_ok=True)
        news.write_text(json.dumps({"fetchNews": "false"}))
        env = {
            **os.environ,
            "JUPYTER_PLATFORM_DIRS": "1",
            # Isolated user dirs: no saved theme, workspace or config leaks in or out.
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["ws"]),
            **self.env,
        }
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *self.args,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{self.log()}")
            try:
                r = httpx.get(
                    self.url + "openfoal/api/openapi.json", headers=self.headers, timeout=2
                )
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the OpenFoal gateway did not answer in {timeout}s:\n{self.log()}")

    @property
    def headers(self) -> dict[str, str]:
        """Token authorization for REST calls."""
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a gateway method over REST and return its payload (raises on an error)."""
        r = httpx.post(
            self.url + f"openfoal/api/{method}", json=params or {}, headers=self.headers, timeout=30
        )
        r.raise_for_status()
        body = r.json()
        return body.get("payload", body) if isinstance(body, dict) else body

    def jupyter_api(self, path: str) -> Any:
        """GET a Jupyter REST path (``api/sessions``) and return the JSON."""
        r = httpx.get(self.url + path, headers=self.headers, timeout=30)
        r.raise_for_status()
        return json.loads(r.text)

    def log(self) -> str:
        """The server output so far (its tail)."""
        return log_tail(self.log_path)

    def stop(self) -> None:
        """Stop the server and its kernels (SIGTERM to the group, then SIGKILL)."""
        stop_group(self.proc, 20)

    def restart(self) -> LabServer:
        """Stop and start again on the same port, root and store, as after a server restart."""
        self.stop()
        return self.start()
