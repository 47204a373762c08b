"""Sync end to end: a cloud instance on real Postgres and SeaweedFS, user servers pushing to
it through a test proxy, all real subprocesses. Runs arrive once however the pushes are
failed, delayed, duplicated, replayed or reordered; the cloud answers the user's sessions and
audit from what was synced; bad pushes get structured errors; content refusals dead-letter.

Needs PostgreSQL and SeaweedFS; without them these tests fail, never skip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep
from openfoal_server_ext.store.postgres import PostgresStore
from openfoal_testing.plugin import ServerProcess, free_port
from openfoal_testing.sync_proxy import SyncProxy

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]

SYNC_TOKENS = "alice-sync=alice,bob-sync=bob"
FAST = ["--SyncWorker.interval=0.2", "--SyncWorker.timeout=2", "--SyncWorker.backoff_cap=1"]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """Poll until ``check()`` is truthy (generous: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def status(server: ServerProcess) -> dict[str, Any]:
    r = server.api("sync.status", {})
    assert r.status_code == 200, r.text
    return r.json()["payload"]  # type: ignore[no-any-return]


def act(server: ServerProcess, method: str, key: str, **params: Any) -> dict[str, Any]:
    r = server.api(method, {"idempotencyKey": key, **params})
    assert r.status_code == 200, r.text
    return r.json()["payload"]  # type: ignore[no-any-return]


@pytest.fixture
def cloud(server_factory: Any, postgres_url: str, object_store_url: str, tmp_path: Path) -> Any:
    return server_factory(
        root=tmp_path / "cloud",
        env={
            "OPENFOAL_ROLE": "cloud",
            "OPENFOAL_DATABASE_URL": postgres_url,
            "OPENFOAL_OBJECT_STORE_URL": object_store_url,
            "OPENFOAL_SYNC_TOKENS": SYNC_TOKENS,
        },
        args=["--OpenFoalApp.server_owner=alice", "--OpenFoalApp.start_pool=False"],
    )


@pytest.fixture
def proxy(cloud: ServerProcess) -> Iterator[SyncProxy]:
    p = SyncProxy(cloud.url)
    yield p
    p.close()


def user_server(server_factory: Any, root: Path, cloud_url: str, *extra: str) -> ServerProcess:
    return server_factory(  # type: ignore[no-any-return]
        root=root,
        env={"OPENFOAL_CLOUD_URL": cloud_url, "OPENFOAL_CLOUD_TOKEN": "alice-sync"},
        args=["--OpenFoalApp.server_owner=alice", "--OpenFoalApp.start_pool=False", *FAST, *extra],
    )


async def turn(server: ServerProcess, model: Any, text: str, **params: Any) -> dict[str, Any]:
    model.enqueue(Reply(steps=[TextStep(text=f"answer to {text}")]))
    async with GatewayClient(server.ws_url, token=server.token) as c:
        accepted, events = await c.run(text, **params)
    assert events[-1]["event"] == "agent.completed"
    return accepted


def cloud_rows(url: str, table: str) -> int:
    store = PostgresStore(url)
    try:
        with store.connection() as con:
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])
    finally:
        store.close()


@pytest.mark.timeout(300)
async def test_runs_arrive_once_through_failures_duplicates_and_replays(
    server_factory: Any,
    model: Any,
    cloud: ServerProcess,
    proxy: SyncProxy,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    proxy.mode = "fail500"
    local = user_server(server_factory, tmp_path / "a", proxy.url, "--SyncWorker.max_attempts=2")
    first = await turn(local, model, "hello")
    sid = first["sessionId"]
    # the cloud answers 500: retried with backoff, nothing lost locally
    wait_for(lambda: status(local)["state"] == "backoff" and proxy.answers.count(500) >= 2, "500s")
    st = status(local)
    assert st["pending"] > 0 and "500" in (st["lastError"] or "")
    got = local.api("sessions.get", {"sessionId": sid, "afterSeq": 0}).json()["payload"]
    local_events = [(e["seq"], e["event"]) for e in got["events"]]
    # duplicated on the way: each row once in the cloud
    proxy.mode = "duplicate"
    wait_for(lambda: status(local)["pending"] == 0, "the outbox to drain")
    wait_for(
        lambda: (
            local.api("sessions.get", {"sessionId": sid}).json()["payload"]["session"]["syncState"]
            == "synced"
        ),
        "the session to be synced",
    )
    remote = cloud.api("sessions.get", {"sessionId": sid, "afterSeq": 0, "includeMessages": True})
    assert remote.status_code == 200, remote.text
    body = remote.json()["payload"]
    assert [(e["seq"], e["event"]) for e in body["events"]][: len(local_events)] == local_events
    assert body["messages"][0]["content"] == "hello"
    assert sid in [s["id"] for s in cloud.api("sessions.list", {}).json()["payload"]["items"]]
    replay = cloud.api("audit.replay", {"runId": first["runId"]}).json()["payload"]
    assert "agent.completed" in [e.get("event") for e in replay["events"]]
    assert cloud.api("audit.query", {"runId": first["runId"]}).json()["payload"]["items"]
    # a timeout, then a second turn: it arrives too
    proxy.mode = "hang"
    await turn(local, model, "again", sessionId=sid)
    wait_for(lambda: status(local)["state"] == "backoff", "a timed-out push")
    proxy.mode = "pass"
    wait_for(lambda: status(local)["pending"] == 0, "the outbox to drain after the timeout")
    events_now = cloud_rows(postgres_url, "events")
    # every batch seen, replayed in reverse order: nothing inserted
    for path, raw, headers in reversed(list(proxy.seen)):
        r = proxy.forward(path, raw, headers)
        assert r.status_code == 200, r.text
        assert r.json()["payload"]["replayed"] is True
        # the same rows under a batch id never seen: nothing inserted either
        fresh = json.loads(raw)
        fresh["batchId"] = f"replay-{len(raw)}-{fresh['batchId']}"
        r = proxy.forward(path, json.dumps(fresh).encode(), headers)
        assert r.status_code == 200, r.text
        assert r.json()["payload"]["inserted"] == 0
    assert cloud_rows(postgres_url, "events") == events_now
    # bad input: another user's token, a malformed batch, an unknown schema version
    path, raw, headers = proxy.seen[0]
    r = proxy.forward(path, raw, {**headers, "Authorization": "token bob-sync"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    r = proxy.forward(path, b'{"batchId": "x"}', headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    r = proxy.forward(path, raw.replace(b'"schemaVersion":1', b'"schemaVersion":7'), headers)
    assert r.status_code == 400 and "schema version 7" in r.json()["error"]["message"]
    r = proxy.forward(path, raw, {"Content-Type": "application/json"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    # refused on content: dead-lettered after max_attempts, then retried once the cloud takes it
    proxy.mode = "refuse400"
    await turn(local, model, "third", sessionId=sid)
    dead = wait_for(lambda: status(local)["deadLetters"], "a dead letter")
    assert dead[0]["attempts"] == 2 and dead[0]["error"]
    proxy.mode = "pass"
    after = act(local, "sync.retry", "retry-1")
    assert after["deadLetters"] == []
    wait_for(lambda: status(local)["pending"] == 0, "the retried chunks")
    # discard drops dead letters from the outbox only: the local rows stay
    proxy.mode = "refuse400"
    await turn(local, model, "fourth", sessionId=sid)
    wait_for(lambda: status(local)["deadLetters"], "another dead letter")
    act(local, "sync.discard", "discard-1")
    assert status(local)["deadLetters"] == []
    got = local.api("sessions.get", {"sessionId": sid, "includeMessages": True}).json()
    assert "fourth" in [m.get("content") for m in got["payload"]["messages"]]
    # paused: local work goes on and queues; resumed: it arrives
    proxy.mode = "pass"
    paused = act(local, "sync.pause", "pause-1")
    assert paused["state"] == "paused"
    await turn(local, model, "while paused", sessionId=sid)
    assert status(local)["pending"] > 0 and status(local)["state"] == "paused"
    act(local, "sync.resume", "resume-1")
    wait_for(lambda: status(local)["pending"] == 0, "the outbox after resume")
    msgs = cloud.api("sessions.get", {"sessionId": sid, "includeMessages": True}).json()
    assert "while paused" in [m.get("content") for m in msgs["payload"]["messages"]]


def messages_of(server: ServerProcess, sid: str) -> list[str]:
    r = server.api("sessions.get", {"sessionId": sid, "includeMessages": True})
    assert r.status_code == 200, r.text
    return [m.get("content") or "" for m in r.json()["payload"]["messages"]]


def events_of(server: ServerProcess, sid: str) -> list[str]:
    r = server.api("sessions.get", {"sessionId": sid, "afterSeq": 0})
    assert r.status_code == 200, r.text
    return [e["event"] for e in r.json()["payload"]["events"]]


def audit_ids(server: ServerProcess, sid: str) -> set[str]:
    """Ids of a session's audit entries (resolutions apart: each side writes its own)."""
    r = server.api("audit.query", {"sessionId": sid, "limit": 500})
    assert r.status_code == 200, r.text
    return {e["id"] for e in r.json()["payload"]["items"] if e["action"] != "sync.resolve"}


def sync_state(server: ServerProcess, sid: str) -> str:
    r = server.api("sessions.get", {"sessionId": sid})
    assert r.status_code == 200, r.text
    return str(r.json()["payload"]["session"]["syncState"])


@pytest.mark.timeout(300)
async def test_a_copied_store_conflicts_and_each_resolution_does_what_it_says(
    server_factory: Any, model: Any, cloud: ServerProcess, postgres_url: str, tmp_path: Path
) -> None:
    a = user_server(server_factory, tmp_path / "a", cloud.url)
    sids = [(await turn(a, model, f"start {n}"))["sessionId"] for n in range(3)]
    wait_for(lambda: all(sync_state(a, s) == "synced" for s in sids), "the sessions to sync")
    # the store file is copied to a second machine of the same user
    a.stop()
    (tmp_path / "b" / ".openfoal").mkdir(parents=True)
    for name in ("openfoal.duckdb",):
        (tmp_path / "b" / ".openfoal" / name).write_bytes(
            (tmp_path / "a" / ".openfoal" / name).read_bytes()
        )
    a.port = free_port()
    a.start()
    b = user_server(server_factory, tmp_path / "b", cloud.url)
    # a goes on with each session (a mode switch: an event, no turn needed), then b does
    for n, sid in enumerate(sids):
        act(a, "runtime.setMode", f"mode-{n}", sessionId=sid, runtimeMode="cloud")
    wait_for(lambda: status(a)["pending"] == 0, "a's outbox to drain")
    b_runs = [
        (await turn(b, model, f"from b {n}", sessionId=sid))["runId"] for n, sid in enumerate(sids)
    ]
    conflicts = wait_for(lambda: len(status(b)["conflicts"]) == 3 and status(b)["conflicts"], "3")
    assert {c["sessionId"] for c in conflicts} == set(sids)
    assert all(sync_state(b, s) == "conflict" for s in sids)
    assert all(sync_state(cloud, s) == "conflict" for s in sids)
    # a, which pushed first and got no conflict back, learns of them from the cloud too
    wait_for(lambda: len(status(a)["conflicts"]) == 3, "a to learn of the conflicts")
    assert {c["sessionId"] for c in status(a)["conflicts"]} == set(sids)
    wait_for(lambda: all(sync_state(a, s) == "conflict" for s in sids), "a's sessions marked")
    # nothing overwritten: the cloud kept the history it had (a's)
    for n, sid in enumerate(sids):
        assert "runtime.mode_changed" in events_of(cloud, sid)
        assert f"from b {n}" not in messages_of(cloud, sid)
    keep_local, keep_cloud, fork = sids
    # keep_local: the cloud takes b's history
    done = act(b, "sync.resolve", "r-1", sessionId=keep_local, resolution="keep_local")
    assert done["session"]["syncState"] == "synced"
    assert "from b 0" in messages_of(cloud, keep_local)
    assert "runtime.mode_changed" not in events_of(cloud, keep_local)
    assert "from b 0" in messages_of(b, keep_local)
    # with it, b's rows the cloud held back during the conflict: its run and audit entries
    assert cloud_rows(postgres_url, f"runs WHERE id = '{b_runs[0]}'") == 1
    assert cloud_rows(postgres_url, f"audit WHERE run_id = '{b_runs[0]}'") >= 1
    assert audit_ids(b, keep_local) <= audit_ids(cloud, keep_local)
    # keep_cloud: b takes the cloud's history (a's)
    act(b, "sync.resolve", "r-2", sessionId=keep_cloud, resolution="keep_cloud")
    assert "runtime.mode_changed" in events_of(b, keep_cloud)
    assert "from b 1" not in messages_of(b, keep_cloud)
    assert events_of(b, keep_cloud) == events_of(cloud, keep_cloud)
    # fork: both kept, as two sessions, on both sides
    forked = act(b, "sync.resolve", "r-3", sessionId=fork, resolution="fork")["forked"]
    assert forked["id"] != fork
    assert "from b 2" not in messages_of(b, fork)
    assert events_of(b, fork) == events_of(cloud, fork)
    assert "from b 2" in messages_of(b, forked["id"])
    wait_for(lambda: status(b)["pending"] == 0, "b's outbox to drain")
    wait_for(
        lambda: cloud.api("sessions.get", {"sessionId": forked["id"]}).status_code == 200,
        "the fork in the cloud",
    )
    assert "from b 2" in messages_of(cloud, forked["id"])
    assert "runtime.mode_changed" in events_of(cloud, fork)
    assert status(b)["conflicts"] == []
    assert all(sync_state(cloud, s) == "synced" for s in sids)
    # a never resolved: the sessions whose kept history is a's own (keep_cloud, fork) settle
    # there by themselves; the one the cloud took from b stays in conflict, for a to resolve
    wait_for(
        lambda: sync_state(a, keep_cloud) == "synced" and sync_state(a, fork) == "synced",
        "a's settled conflicts to end",
    )
    assert sync_state(a, keep_local) == "conflict"
    assert [c["sessionId"] for c in status(a)["conflicts"]] == [keep_local]

    # each resolution is on record on both sides
    def resolutions(server: ServerProcess) -> list[dict[str, Any]]:
        r = server.api("audit.query", {"action": "sync.resolve"})
        return r.json()["payload"]["items"]  # type: ignore[no-any-return]

    assert sorted(e["detail"]["resolution"] for e in resolutions(b)) == [
        "fork",
        "keep_cloud",
        "keep_local",
    ]
    # the cloud holds its own three entries and, synced, b's three
    on_cloud = resolutions(cloud)
    assert len([e for e in on_cloud if e["detail"].get("side") == "cloud"]) == 3
    assert len(on_cloud) == 6


@pytest.mark.timeout(300)
async def test_kills_of_either_side_lose_nothing_and_duplicate_nothing(
    server_factory: Any,
    model: Any,
    cloud: ServerProcess,
    proxy: SyncProxy,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    local = user_server(server_factory, tmp_path / "a", proxy.url)
    sid = (await turn(local, model, "one"))["sessionId"]
    wait_for(lambda: status(local)["pending"] == 0, "the first sync")
    # the pushing server is killed with a batch in flight: the cloud took it, no ack came back
    proxy.mode = "slow"
    proxy.forwarded.clear()
    await turn(local, model, "two", sessionId=sid)
    assert proxy.forwarded.wait(60)
    local.kill()
    proxy.mode = "pass"
    local.port = free_port()
    local.start()
    wait_for(lambda: status(local)["pending"] == 0, "the outbox after the kill")
    # the cloud is killed and restarted while the user works
    cloud.kill()
    await turn(local, model, "three", sessionId=sid)
    wait_for(lambda: status(local)["state"] == "backoff", "pushes to a dead cloud")
    cloud.port = free_port()
    cloud.start()
    proxy.target = cloud.url
    wait_for(lambda: status(local)["pending"] == 0, "the outbox after the cloud's restart")
    # every row acked locally is in the cloud, each once
    got = local.api("sessions.get", {"sessionId": sid, "afterSeq": 0}).json()["payload"]
    seqs = [e["seq"] for e in got["events"]]
    remote = cloud.api("sessions.get", {"sessionId": sid, "afterSeq": 0}).json()["payload"]
    assert [e["seq"] for e in remote["events"]] == seqs
    assert messages_of(cloud, sid) == messages_of(local, sid)
    store = PostgresStore(postgres_url)
    try:
        with store.connection() as con:
            rows = con.execute(
                "SELECT count(*), count(DISTINCT (session_id, seq)) FROM events"
            ).fetchone()
    finally:
        store.close()
    assert rows is not None and rows[0] == rows[1] >= len(seqs)
