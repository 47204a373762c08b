"""``scripts/hub-demo.sh``: a Hub of alice, bob and carol on the deployment config, with the
cloud service on its own Postgres; users log in, alice's own server runs OpenFoal, and Ctrl-C
stops everything."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openfoal_testing.hub import HubUser
from openfoal_testing.plugin import free_port

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DemoHub:
    """The demo's addresses."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def service_url(self) -> str:
        return f"{self.url}services/openfoal/"


def _wait_for(what: str, check, timeout: float = 180):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(400)  # a Hub, Postgres, the service and one user's server, on 2 cores
def test_hub_demo_starts_logs_users_in_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "demo"
    env = {
        **os.environ,
        "OPENFOAL_HUB_PASSWORD": "demo-password",
        "OPENFOAL_HUB_STATE": str(state),
        "OPENFOAL_SERVICE_PORT": str(free_port()),
        "OPENFOAL_HUB_INTERNAL_PORT": str(free_port()),
        "OPENFOAL_HUB_PROXY_API_PORT": str(free_port()),
    }
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/hub-demo.sh", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = DemoHub(port)
    users: list[HubUser] = []
    try:

        def started() -> bool:
            assert proc.poll() is None, "hub-demo.sh exited"
            return f"at {hub.url}" in log.read_text()

        _wait_for("the demo's URL", started)
        alice = HubUser(hub, "alice")
        users.append(alice)
        alice.login("demo-password")
        _wait_for("the cloud service", lambda: alice.api("sessions.list").status_code == 200)
        bob, carol = HubUser(hub, "bob"), HubUser(hub, "carol")
        users += [bob, carol]
        bob.login("demo-password")
        carol.login("demo-password")
        # alice is the admin: she edits the team policy, bob may not
        version = alice.call("policy.get")["policy"]["version"]
        patch = {"patch": {"gateTimeoutSec": 300}, "expectedVersion": version}
        r = bob.api("policy.update", {**patch, "idempotencyKey": uuid.uuid4().hex})
        assert r.json()["error"]["code"] == "FORBIDDEN"
        alice.call("policy.update", {**patch, "idempotencyKey": uuid.uuid4().hex})
        # alice's own server runs OpenFoal, with the admin's (demo) model
        auth = {"Authorization": f"token {alice.token}"}
        r = httpx.post(f"{hub.url}hub/api/users/alice/server", headers=auth, timeout=60)
        assert r.status_code in (201, 202), r.text

        def own_server() -> bool:
            r = httpx.post(
                f"{hub.url}user/alice/openfoal/api/sessions.list",
                json={},
                headers=auth,
                timeout=30,
            )
            return r.status_code == 200

        _wait_for("alice's server", own_server)

        # it pulls the team policy alice changed above (its own says 900 s)
        def team_policy_in_force() -> bool:
            r = httpx.post(
                f"{hub.url}user/alice/openfoal/api/policy.get", json={}, headers=auth, timeout=30
            )
            return r.status_code == 200 and r.json()["payload"]["policy"]["gateTimeoutSec"] == 300

        _wait_for("the team policy on alice's server", team_policy_in_force, timeout=60)

        # it syncs to the cloud service with the Hub's token of the server: a session started
        # there is listed by the cloud for alice
        r = httpx.post(
            f"{hub.url}user/alice/openfoal/api/agent.run",
            json={"input": "/reset", "idempotencyKey": uuid.uuid4().hex},
            headers=auth,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        session_id = r.json()["payload"]["sessionId"]

        def synced() -> bool:
            ids = [s["id"] for s in alice.call("sessions.list")["items"]]
            return session_id in ids

        _wait_for("alice's session in the cloud", synced, timeout=120)
        r = httpx.post(
            f"{hub.url}user/alice/openfoal/api/sync.status", json={}, headers=auth, timeout=30
        )
        status = r.json()["payload"]
        assert status["state"] != "disabled" and status["deadLetters"] == [], status
    except BaseException:
        print(log.read_text()[-5000:])
        hub_log = state / "jupyterhub.log"
        print(hub_log.read_text()[-10000:] if hub_log.exists() else "(no Hub log)")
        raise
    finally:
        for user in users:
            user.http.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert "hub-demo: stopped" in log.read_text()
    with pytest.raises(httpx.HTTPError):
        httpx.get(hub.url + "hub/api/", timeout=5)
    pg = re.search(r"Postgres at postgresql://\S+@127\.0\.0\.1:(\d+)/", log.read_text())
    assert pg is not None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(pg[1])), 5):
        pass
