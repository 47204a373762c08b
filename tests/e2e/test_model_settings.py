"""The console's model settings: model.get / model.update / model.test on a real server.

The server starts with no model in its environment; the settings saved through the gateway
land in a 0600 file of its Jupyter config dir, never come back with the key, and drive runs.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio

SECRET = "sk-console-secret-1234567890"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "jupyter-config"


@pytest.fixture
def bare_server(server_factory: Any, config_dir: Path) -> ServerProcess:
    """A server with no model configured, its Jupyter config dir in the test's folder."""
    server: ServerProcess = server_factory(
        env={
            "OPENFOAL_MODEL": "",
            "OPENAI_BASE_URL": "",
            "OPENAI_API_KEY": "",
            "JUPYTER_CONFIG_DIR": str(config_dir),
        }
    )
    return server


def _payload(server: ServerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    res = server.api(method, params)
    body = res.json()
    assert res.status_code == 200 and body["ok"], body
    return body["payload"]  # type: ignore[no-any-return]


def _error(server: ServerProcess, method: str, params: dict[str, Any], code: str) -> str:
    res = server.api(method, params)
    body = res.json()
    assert body["ok"] is False, body
    err = body["error"]
    assert err["code"] == code and err["message"] and len(err["traceId"]) == 32
    return str(err["message"])


async def test_nothing_set_means_no_model(bare_server: ServerProcess, config_dir: Path) -> None:
    got = _payload(bare_server, "model.get", {})
    assert got == {"saved": None, "active": None, "source": "none", "canEdit": True}
    assert not (config_dir / "openfoal" / "model.json").exists()
    paths = httpx.get(
        bare_server.url + "openfoal/api/openapi.json",
        headers={"Authorization": f"token {bare_server.token}"},
    ).json()["paths"]
    for method in ("model.get", "model.update", "model.test"):
        assert f"/openfoal/api/{method}" in paths
    # the chat's first message answers with the no-model error the first-run choice reads
    async with GatewayClient(bare_server.ws_url, token=bare_server.token) as c:
        _, events = await c.run("hello")
    failed = [e for e in events if e["event"] == "agent.failed"]
    assert failed and failed[0]["payload"]["error"]["code"] == "MODEL_UNAVAILABLE"
    assert "no model is configured" in failed[0]["payload"]["error"]["message"].lower()


async def test_bad_input_is_refused_and_saves_nothing(
    bare_server: ServerProcess, config_dir: Path
) -> None:
    good = {"idempotencyKey": "k", "provider": "openai", "model": "gpt-4.1-mini"}
    assert "idempotencyKey" in _error(
        bare_server,
        "model.update",
        {k: v for k, v in good.items() if k != "idempotencyKey"},
        "INVALID_REQUEST",
    )
    assert "provider" in _error(
        bare_server,
        "model.update",
        {**good, "idempotencyKey": "k1", "provider": "acme"},
        "INVALID_REQUEST",
    )
    assert "baseUrl" in _error(
        bare_server,
        "model.update",
        {**good, "idempotencyKey": "k2", "baseUrl": "ftp://x"},
        "INVALID_REQUEST",
    )
    assert "model" in _error(
        bare_server,
        "model.update",
        {**good, "idempotencyKey": "k3", "model": "two words"},
        "INVALID_REQUEST",
    )
    assert "model" in _error(
        bare_server,
        "model.update",
        {"idempotencyKey": "k4", "provider": "openai"},
        "INVALID_REQUEST",
    )
    res = bare_server.api("model.update", headers={"Content-Type": "application/json"})
    assert res.json()["ok"] is False
    assert "provider" in _error(bare_server, "model.test", {"provider": "acme"}, "INVALID_REQUEST")
    assert "nothing to test" in _error(bare_server, "model.test", {}, "INVALID_REQUEST")
    assert not (config_dir / "openfoal").exists()
    assert _payload(bare_server, "model.get", {})["saved"] is None


async def test_saved_key_stays_on_the_server_and_drives_runs(
    bare_server: ServerProcess, config_dir: Path, model: ScriptedModelServer
) -> None:
    saved = bare_server.api(
        "model.update",
        {
            "idempotencyKey": "save-1",
            "provider": "openai",
            "model": "scripted",
            "baseUrl": model.openai_base_url,
            "apiKey": SECRET,
        },
    )
    assert SECRET not in saved.text
    body = saved.json()["payload"]
    assert body["saved"]["hasKey"] is True and body["saved"]["model"] == "scripted"
    assert body["active"] == "openai:scripted" and body["source"] == "saved"
    path = config_dir / "openfoal" / "model.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["apiKey"] == SECRET
    got = bare_server.api("model.get", {})
    assert SECRET not in got.text and got.json()["payload"]["saved"]["hasKey"] is True

    # a save without a key keeps the saved one
    again = _payload(
        bare_server,
        "model.update",
        {
            "idempotencyKey": "save-2",
            "provider": "openai",
            "model": "scripted",
            "baseUrl": model.openai_base_url,
        },
    )
    assert again["saved"]["hasKey"] is True
    assert json.loads(path.read_text())["apiKey"] == SECRET

    # a new run uses the saved model, URL and key
    model.enqueue(Reply(steps=[TextStep(text="saved settings work")]))
    async with GatewayClient(bare_server.ws_url, token=bare_server.token) as c:
        _, events = await c.run("hello")
    assert events[-1]["event"] == "agent.completed", events[-1]
    assert events[0]["payload"]["model"] == "openai:scripted"
    text = "".join(e["payload"]["delta"] for e in events if e["event"] == "agent.delta")
    assert text == "saved settings work"
    headers = {k.lower(): v for k, v in model.requests[-1].headers.items()}
    assert headers.get("authorization") == f"Bearer {SECRET}"

    # the change is on the audit trail, without the key
    audit = bare_server.api("audit.query", {"action": "model.update"})
    assert SECRET not in audit.text
    assert len(audit.json()["payload"]["items"]) == 2

    # clearing the key forgets it
    cleared = _payload(
        bare_server,
        "model.update",
        {"idempotencyKey": "save-3", "provider": "openai", "model": "scripted", "clearKey": True},
    )
    assert cleared["saved"]["hasKey"] is False
    assert json.loads(path.read_text())["apiKey"] is None


async def test_model_test_calls_the_provider_once(
    bare_server: ServerProcess, model: ScriptedModelServer
) -> None:
    model.enqueue(Reply(steps=[TextStep(text="ok")]))
    before = len(model.requests)
    res = bare_server.api(
        "model.test",
        {
            "provider": "openai",
            "model": "scripted",
            "baseUrl": model.openai_base_url,
            "apiKey": SECRET,
        },
    )
    assert SECRET not in res.text
    got = res.json()["payload"]
    assert got["ok"] is True and got["model"] == "openai:scripted" and got["reply"] == "ok"
    assert got["error"] is None and got["latencyMs"] >= 0
    assert len(model.requests) == before + 1
    # nothing was saved by a test
    assert _payload(bare_server, "model.get", {})["saved"] is None


async def test_model_test_reports_a_refused_key_and_a_dead_server(
    bare_server: ServerProcess,
) -> None:
    with ScriptedModelServer(api_key="the-right-key") as guarded:
        got = _payload(
            bare_server,
            "model.test",
            {
                "provider": "openai",
                "model": "scripted",
                "baseUrl": guarded.openai_base_url,
                "apiKey": "a-wrong-key",
            },
        )
        dead_url = guarded.openai_base_url
    assert got["ok"] is False and got["error"]["code"] == "MODEL_UNAVAILABLE"
    assert got["error"]["status"] == 401 and got["error"]["message"]
    assert "a-wrong-key" not in json.dumps(got)
    down = _payload(
        bare_server,
        "model.test",
        {"provider": "openai", "model": "scripted", "baseUrl": dead_url, "apiKey": "x"},
    )
    assert down["ok"] is False and down["error"]["code"] == "MODEL_UNAVAILABLE"
    assert down["error"]["message"]


async def test_config_wins_over_saved_settings(
    server_factory: Any, tmp_path: Path, model: ScriptedModelServer
) -> None:
    server: ServerProcess = server_factory(
        env={"JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}, root=tmp_path / "root2"
    )
    _payload(
        server,
        "model.update",
        {"idempotencyKey": "s", "provider": "anthropic", "model": "claude-x", "apiKey": SECRET},
    )
    got = _payload(server, "model.get", {})
    assert got["active"] == "openai:scripted" and got["source"] == "config"
    assert got["saved"]["provider"] == "anthropic"
