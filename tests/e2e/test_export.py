"""``sessions.export`` end to end: a session that used every tool becomes a valid notebook that
re-runs in a plain Python kernel with the same outputs; the CLI writes the same file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from openfoal_kernel.client import GatewayClient, GatewayError
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


def _call(name: str, **arguments: Any) -> Reply:
    return Reply(steps=[ToolCallStep(name=name, arguments=arguments)])


def _text_of(outputs: list[dict[str, Any]]) -> str:
    """Everything a cell printed, as one text (streams and the last value)."""
    parts = []
    for out in outputs:
        if out["output_type"] == "stream":
            parts.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
        elif out["output_type"] == "execute_result":
            plain = out["data"]["text/plain"]
            plain = "".join(plain) if isinstance(plain, list) else plain
            parts.append(plain if plain.endswith("\n") else plain + "\n")
    return "".join(parts)


async def _wait_event(c: GatewayClient, name: str, timeout: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        e = await c.next_event(max(0.01, deadline - loop.time()))
        if e.get("event") == name:
            return e


async def _session_with_every_tool(
    server: ServerProcess, model, c: GatewayClient
) -> tuple[str, str]:
    policy = (await c.request("policy.get"))["policy"]
    await c.request(
        "policy.update",
        {"patch": {"tools": {"python.exec": "allow"}}, "expectedVersion": policy["version"]},
    )
    model.enqueue(
        _call("python.exec", code="print(6 * 7)"),
        _call("python.exec", code="x = 21 * 2\nx"),
        _call("file.write", path="hello.txt", content="hi there\n"),
        _call("file.read", path="hello.txt"),
        _call("bash.exec", command="cat hello.txt && echo bash-ok"),
        Reply(steps=[TextStep(text="All **done**.")]),
    )
    accepted = await c.request("agent.run", {"input": "use every tool please"})
    gates: list[dict[str, Any]] = []
    events = []
    async for e in c.run_events(accepted["runId"], timeout=90):
        events.append(e)
        if e["event"] == "policy-gate.requested":  # approve every gate the run raises
            gates.append(e["payload"]["gate"])
            await c.request(
                "policy-gate.resolve", {"gateId": gates[-1]["gateId"], "decision": "approve"}
            )
    assert events[-1]["event"] == "agent.completed", events[-1]
    assert [g["toolName"] for g in gates] == ["file.write", "bash.exec"], gates
    gate = gates[-1]
    return accepted["sessionId"], gate["gateId"]


async def test_export_validates_carries_provenance_and_reruns_the_same(
    shared_server: ServerProcess, model, tmp_path: Path
) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        sid, gate_id = await _session_with_every_tool(shared_server, model, c)
        res = await c.request("sessions.export", {"sessionId": sid})
        audit = await c.request("audit.query", {"sessionId": sid, "limit": 1000})
    nb = nbformat.from_dict(res["notebook"])
    nbformat.validate(nb)
    meta = nb.metadata["openfoal"]
    assert meta["sessionId"] == sid and res["filename"] == f"{sid}.ipynb"
    assert meta["model"] and meta["auditHash"] == res["auditHash"]
    assert meta["auditEntries"] == len(audit["items"])
    # the hash is reproducible from audit.query (docs/notebooks.md, "Provenance")
    digest = hashlib.sha256()
    for entry in reversed(audit["items"]):
        digest.update(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
    assert res["auditHash"] == "sha256:" + digest.hexdigest()

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    sources = [cell.source for cell in code]
    assert sources == [
        "print(6 * 7)",
        "x = 21 * 2\nx",
        "%%writefile hello.txt\nhi there\n",
        "%%bash\ncat hello.txt && echo bash-ok",
    ]
    audit_ids = {e["id"] for e in audit["items"]}
    for cell in code:
        m = cell.metadata["openfoal"]
        assert m["runId"] and m["traceId"] and m["toolCallId"] and m["status"] == "success"
        assert m["auditEntryId"] in audit_ids and isinstance(m["policyVersion"], int)
    markdown = [cell.source for cell in nb.cells if cell.cell_type == "markdown"]
    assert markdown[0] == "**User:** use every tool please"
    assert markdown[-1] == "**Assistant:** All **done**."
    assert any("file.read" in md and "hello.txt" in md for md in markdown)
    gate_note = next(md for md in markdown if gate_id in md)
    assert "approved" in gate_note and "bash.exec" in gate_note

    recorded = [_text_of(cell.outputs) for cell in code]
    assert recorded[0] == "42\n" and recorded[1] == "42\n"
    assert "bash-ok" in recorded[3]

    rerun_dir = tmp_path / "rerun"
    rerun_dir.mkdir()
    fresh = nbformat.from_dict(res["notebook"])
    await NotebookClient(
        fresh, kernel_name="python3", timeout=120, resources={"metadata": {"path": rerun_dir}}
    ).async_execute()
    again = [_text_of(cell.outputs) for cell in fresh.cells if cell.cell_type == "code"]
    # deterministic code: python and bash cells print exactly what was recorded
    assert [again[0], again[1], again[3]] == [recorded[0], recorded[1], recorded[3]]
    assert (rerun_dir / "hello.txt").read_text() == "hi there\n"


async def test_export_cli_writes_the_notebook_and_reports_bad_sessions(
    shared_server: ServerProcess, model, tmp_path: Path
) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        model.enqueue(Reply(steps=[TextStep(text="hello back")]))
        accepted, _ = await c.run("hello")
        with pytest.raises(GatewayError) as err:
            await c.request("sessions.export", {"sessionId": "ses_nope"})
        assert err.value.code.value == "NOT_FOUND"
        with pytest.raises(GatewayError) as err:
            await c.request("sessions.export", {})
        assert err.value.code.value == "INVALID_REQUEST"
    env = {**os.environ, "OPENFOAL_URL": shared_server.url, "JUPYTER_TOKEN": shared_server.token}
    out = tmp_path / "s.ipynb"
    cli = [sys.executable, "-m", "openfoal_kernel.cli", "export"]
    done = await asyncio.to_thread(
        subprocess.run,
        [*cli, accepted["sessionId"], "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    assert [c.source for c in nb.cells] == ["**User:** hello", "**Assistant:** hello back"]
    bad = await asyncio.to_thread(
        subprocess.run, [*cli, "ses_nope"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "NOT_FOUND" in bad.stderr
