"""A real JupyterHub for tests: DummyAuthenticator users, OpenFoal's cloud instance as a Hub
service backed by Postgres, and clients that log in through the Hub's own login form.

Enable with ``pytest_plugins = ["openfoal_testing.hub"]`` (it needs ``openfoal_testing.cloud``
and ``openfoal_testing.plugin`` too). The Hub needs ``configurable-http-proxy``, which
``scripts/install-hub.sh`` installs; a missing proxy fails the tests, never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from openfoal_kernel.scripted import ScriptedModelServer
from openfoal_server_ext.cloud_services import PrivatePostgres

from .plugin import free_port, log_tail, scripted_env, stop_group

#: The password every test user logs in with (DummyAuthenticator's shared password).
HUB_PASSWORD = "openfoal-hub-test"
#: Users and the groups that give them OpenFoal roles (dave is in none of them).
HUB_GROUPS = {
    "openfoal-members": ["alice", "bob", "carol"],
    "openfoal-approvers": ["carol"],
    "openfoal-admins": ["alice"],
}
HUB_USERS = ["alice", "bob", "carol", "dave"]
SERVICE = "openfoal"
#: Where ``scripts/install-hub.sh`` puts the proxy.
PROXY_DIR = Path(__file__).resolve().parent.parent / ".venv" / "hub-proxy"


def proxy_command() -> str:
    """The ``configurable-http-proxy`` executable (the project's install, else PATH)."""
    local = PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    found = shutil.which("configurable-http-proxy")
    if found is None:
        raise RuntimeError("configurable-http-proxy is missing: run scripts/install-hub.sh")
    return found


def hub_config(
    *,
    port: int,
    service_port: int,
    state_dir: Path,
    service_env: dict[str, str],
    password: str,
    python: str = sys.executable,
) -> str:
    """The text of a ``jupyterhub_config.py`` for a test Hub (``deploy/jupyterhub`` holds the
    deployment one; this one differs in ports, folders and the test users)."""
    bindir = str(Path(python).parent)
    settings = {
        "port": port,
        "hub_port": free_port(),
        "proxy_api_port": free_port(),
        "service_port": service_port,
        "state": str(state_dir),
        "proxy": proxy_command(),
        "singleuser": str(Path(bindir) / "jupyterhub-singleuser"),
        "service_env": service_env,
        "password": password,
        "users": HUB_USERS,
        "groups": HUB_GROUPS,
        "service": SERVICE,
    }
    return f"""\
import json
s = json.loads({json.dumps(json.dumps(settings))})
c = get_config()  # noqa
c.JupyterHub.bind_url = f"http://127.0.0.1:{{s['port']}}/"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = s["hub_port"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{{s['proxy_api_port']}}"
c.ConfigurableHTTPProxy.command = [s["proxy"]]
c.JupyterHub.db_url = f"sqlite:///{{s['state']}}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{{s['state']}}/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.pid_file = f"{{s['state']}}/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = s["password"]
c.Authenticator.allowed_users = set(s["users"])
c.JupyterHub.load_groups = {{name: {{"users": users}} for name, users in s["groups"].items()}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = s["state"] + "/home/{{username}}"
c.Spawner.cmd = [s["singleuser"]]
c.Spawner.args = ["--allow-root"]
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", f"access:services!service={{s['service']}}"]}},
]
c.JupyterHub.services = [
    {{
        "name": s["service"],
        "url": f"http://127.0.0.1:{{s['service_port']}}",
        "command": [
            s["singleuser"],
            "--allow-root",
            f"--ServerApp.root_dir={{s['state']}}/cloud",
            "--OpenFoalApp.role=cloud",
            "--OpenFoalApp.member_groups=openfoal-members",
            "--OpenFoalApp.approver_groups=openfoal-approvers",
            "--OpenFoalApp.admin_groups=openfoal-admins",
            "--SandboxManager.pool_size=0",
        ],
        "environment": s["service_env"],
        "oauth_no_confirm": True,
        "timeout": 180,
    }},
]
"""


class HubProcess:
    """A running JupyterHub with the OpenFoal cloud service."""

    def __init__(
        self,
        state_dir: Path,
        *,
        database_url: str,
        model_env: dict[str, str],
        password: str = HUB_PASSWORD,
    ) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.service_port = free_port()
        self.password = password
        self.log_path = state_dir / "jupyterhub.log"
        env = {
            **model_env,
            "OPENFOAL_DATABASE_URL": database_url,
            "JUPYTER_PLATFORM_DIRS": "1",
            "PATH": os.environ.get("PATH", ""),
        }
        self.config = hub_config(
            port=self.port,
            service_port=self.service_port,
            state_dir=state_dir,
            service_env=env,
            password=password,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.users: list[HubUser] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def service_url(self) -> str:
        """The cloud service's base URL, through the Hub's proxy."""
        return f"{self.url}services/{SERVICE}/"

    def start(self, timeout: float = 240) -> HubProcess:
        """Start the Hub (it starts the proxy and the service) and wait for the service."""
        (self.state_dir / "cloud").mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "jupyterhub_config.py"
        config.write_text(self.config)
        cmd = [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        probe: HubUser | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited early:\n{self.log()}")
            try:
                if probe is None:
                    probe = self.login("alice")
                r = probe.api("sessions.list", {"limit": 1})
                if r.headers.get("content-type", "").startswith("application/json"):
                    return self  # the gateway answers (what it answers is the tests' business)
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"the Hub's OpenFoal service did not answer in {timeout}s:\n{self.log()}"
        )

    def log(self) -> str:
        """The Hub's output (the proxy's and the service's included)."""
        return log_tail(self.log_path)

    def login(self, name: str, password: str | None = None) -> HubUser:
        """Log ``name`` in through the Hub's login form and get an API token for them."""
        user = HubUser(self, name)
        self.users.append(user)
        return user.login(password or self.password)

    def service_pids(self) -> list[int]:
        """The process ids of the running cloud service (the Hub's managed child)."""
        marker = f"--ServerApp.root_dir={self.state_dir}/cloud".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in argv:
                pids.append(int(entry.name))
        return pids

    def kill_service(self) -> int:
        """SIGKILL the cloud service, as a crash would; the Hub starts it again by itself
        (it notices within its service poll interval, 30 s). Return the killed pid."""
        pids = self.service_pids()
        if len(pids) != 1:
            raise RuntimeError(f"expected one cloud service process, found {pids}")
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def stop(self) -> None:
        """Stop the Hub, its proxy and its service; close the users' connections."""
        for user in self.users:
            user.http.close()
        stop_group(self.proc, 20)


def own_server_options(hub: HubAddress, user: HubUser) -> dict[str, Any]:
    """``server_factory`` keywords for ``user``'s own OpenFoal server wired to the cloud
    service: it pushes its outbox, routes its gates and pulls the team policy with the
    user's Hub API token, as a Hub-spawned single-user server would."""
    return {
        "env": {
            "OPENFOAL_CLOUD_URL": hub.service_url,
            "OPENFOAL_CLOUD_TOKEN": user.token,
        },
        "args": [
            f"--OpenFoalApp.server_owner={user.name}",
            "--SyncWorker.interval=0.2",
        ],
    }


class HubAddress(Protocol):
    """Where a Hub and its OpenFoal service answer."""

    @property
    def url(self) -> str: ...

    @property
    def service_url(self) -> str: ...


class HubUser:
    """One user's browser-like session with the Hub, and the token it obtained."""

    def __init__(self, hub: HubAddress, name: str) -> None:
        self.hub = hub
        self.name = name
        self.http = httpx.Client(base_url=hub.url, timeout=30, follow_redirects=False)
        self.token = ""

    def login(self, password: str) -> HubUser:
        """POST the Hub's login form (with its XSRF token), then ask the Hub for a token."""
        self.http.get("hub/login").raise_for_status()
        xsrf = self.http.cookies.get("_xsrf") or ""
        r = self.http.post(
            "hub/login",
            data={"username": self.name, "password": password, "_xsrf": xsrf},
        )
        if r.status_code != 302:
            raise PermissionError(f"the Hub refused to log {self.name} in ({r.status_code})")
        self.token = self.new_token()
        return self

    def new_token(self, expires_in: int | None = None) -> str:
        """A new API token of this user, made with their Hub login (cookie + XSRF)."""
        body: dict[str, Any] = {"note": f"openfoal test {uuid.uuid4().hex[:6]}"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        r = self.http.post(
            f"hub/api/users/{self.name}/tokens",
            json=body,
            headers={"X-XSRFToken": self.http.cookies.get("_xsrf") or ""},
        )
        r.raise_for_status()
        return str(r.json()["token"])

    def api(
        self, method: str, params: dict[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        """Call an OpenFoal method on the cloud service, as this user."""
        return httpx.post(
            f"{self.hub.service_url}openfoal/api/{method}",
            json=params or {},
            headers={"Authorization": f"token {token or self.token}"},
            timeout=60,
        )

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a method that must succeed; return its payload."""
        r = self.api(method, params)
        body = r.json()
        if not body.get("ok"):
            raise AssertionError(f"{self.name}: {method} failed: {r.status_code} {body}")
        return dict(body["payload"])


@pytest.fixture(scope="module")
def jupyterhub(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PrivatePostgres,
    scripted_model: ScriptedModelServer,
) -> Iterator[HubProcess]:
    """A JupyterHub per test module: users alice, bob, carol (approver), alice an admin,
    dave in no OpenFoal group, and the cloud service on a fresh Postgres database."""
    name = f"hub_{uuid.uuid4().hex[:10]}"
    url = postgres_server.create_database(name)
    hub = HubProcess(
        tmp_path_factory.mktemp("hub"), database_url=url, model_env=scripted_env(scripted_model)
    )
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()
        postgres_server.drop_database(name)
