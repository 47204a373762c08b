"""AuditService: redacted recording, durable record_now, query filters and paging, access."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from openfoal_kernel.protocol import AuditEntry, ErrorCode, OpenFoalError, utcnow
from openfoal_kernel.protocol.methods import AuditQueryParams
from openfoal_kernel.redact import MASK
from openfoal_server_ext.services.audit import DETAIL_STRING_LIMIT, AuditService
from openfoal_server_ext.store import StoreWorker

pytestmark = pytest.mark.asyncio

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _params(**kw: Any) -> AuditQueryParams:
    return AuditQueryParams.model_validate(kw)


async def _seed(worker: StoreWorker, rows: list[tuple[str, AuditEntry]]) -> None:
    for owner, entry in rows:
        worker.stage_audit(entry, owner)
    await worker.commit()


def _entry(n: int, at: datetime, **kw: Any) -> AuditEntry:
    base: dict[str, Any] = {
        "id": f"aud_{n:06d}",
        "at": at,
        "actor": "alice",
        "action": "tool.call",
        "resource": "tool:bash.exec",
        "traceId": f"trace{n % 3}",
    }
    return AuditEntry.model_validate({**base, **kw})


async def _all_pages(audit: AuditService, owner: str, **kw: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        res = (await audit.query(owner, _params(cursor=cursor, **kw))).wire()
        pages += 1
        ids += [e["id"] for e in res["items"]]
        cursor = res["nextCursor"]
        if cursor is None:
            return ids, pages


async def test_record_redacts_bounds_and_commits_within_the_window(
    audit: AuditService, worker: StoreWorker
) -> None:
    entry = audit.record(
        actor="alice",
        owner="alice",
        action="tool.call",
        resource="tool:http.request",
        trace_id="t1",
        session_id="s1",
        run_id="r1",
        detail={
            "args": {
                "url": "https://u:hunter2@db.example/x",
                "headers": {"Authorization": "Bearer abc.def.ghi"},
            },
            "content": "x" * (DETAIL_STRING_LIMIT + 10),
        },
    )
    assert entry.detail["args"]["url"] == f"https://u:{MASK}@db.example/x"
    assert entry.detail["args"]["headers"]["Authorization"] == MASK
    assert entry.detail["content"].endswith("[10 more characters not kept]")
    await asyncio.sleep(0.2)  # the worker's window is 20 ms
    stored = worker.store.audit_for_run("r1")
    assert [e.id for e in stored] == [entry.id] and stored[0].detail == entry.detail
    assert stored[0].sessionId == "s1" and stored[0].traceId == "t1"


async def test_record_now_is_durable_before_it_returns(
    audit: AuditService, worker: StoreWorker
) -> None:
    entry = await audit.record_now(
        actor="alice",
        owner="alice",
        action="gate.approved",
        resource="gate:g1",
        trace_id="t1",
        run_id="r9",
    )
    # read straight from the store, no commit in between
    assert [e.id for e in await worker.call(worker.store.audit_for_run, "r9")] == [entry.id]


async def test_query_filters(audit: AuditService, worker: StoreWorker) -> None:
    rows = [
        ("alice", _entry(1, NOW - timedelta(days=40), sessionId="s1", runId="r1")),
        (
            "alice",
            _entry(2, NOW - timedelta(days=3), sessionId="s1", runId="r1", action="tool.result"),
        ),
        (
            "alice",
            _entry(3, NOW - timedelta(hours=5), sessionId="s2", runId="r2", action="gate.approved"),
        ),
        ("alice", _entry(4, NOW - timedelta(minutes=5), sessionId="s2", runId="r3")),
        (
            "alice",
            _entry(
                5,
                NOW - timedelta(minutes=1),
                actor="system",
                action="policy.create",
                resource="policy:default",
            ),
        ),
        ("bob", _entry(6, NOW - timedelta(minutes=2), actor="bob", sessionId="s9", runId="r9")),
    ]
    await _seed(worker, rows)

    async def ids(**kw: Any) -> list[str]:
        res = (await audit.query("alice", _params(**kw))).wire()
        return [e["id"] for e in res["items"]]

    assert await ids() == ["aud_000005", "aud_000004", "aud_000003", "aud_000002", "aud_000001"]
    assert await ids(sessionId="s1") == ["aud_000002", "aud_000001"]
    assert await ids(runId="r2") == ["aud_000003"]
    assert await ids(traceId="trace1") == ["aud_000004", "aud_000001"]
    assert await ids(actor="system") == ["aud_000005"]
    assert await ids(action="tool.call") == ["aud_000004", "aud_000001"]
    assert await ids(**{"from": (NOW - timedelta(days=4)).isoformat()}) == [
        "aud_000005",
        "aud_000004",
        "aud_000003",
        "aud_000002",
    ]
    # from inclusive, to exclusive
    assert await ids(
        **{
            "from": (NOW - timedelta(hours=5)).isoformat(),
            "to": (NOW - timedelta(minutes=1)).isoformat(),
        }
    ) == ["aud_000004", "aud_000003"]
    # a time without a zone is UTC
    naive = (NOW - timedelta(days=4)).replace(tzinfo=None).isoformat()
    assert await ids(sessionId="s1", **{"from": naive}) == ["aud_000002"]
    assert await ids(sessionId="s9") == []  # bob's trail is not alice's
    assert await ids(sessionId="s2", action="tool.call", traceId="trace1") == ["aud_000004"]
    item = (await audit.query("alice", _params(runId="r2"))).wire()["items"][0]
    assert item == {
        "id": "aud_000003",
        "at": item["at"],
        "actor": "alice",
        "action": "gate.approved",
        "resource": "tool:bash.exec",
        "sessionId": "s2",
        "runId": "r2",
        "traceId": "trace0",
        "detail": {},
    }
    assert item["at"].endswith("Z")


async def test_cursor_pages_cover_everything_once_across_equal_times_and_probe_windows(
    audit: AuditService, worker: StoreWorker
) -> None:
    ages = [timedelta(seconds=30 * i) for i in range(30)]  # the last hour
    ages += [timedelta(hours=2 + i) for i in range(10)] + [
        timedelta(days=10 + i) for i in range(10)
    ]
    rows = [("alice", _entry(i, NOW - age, sessionId="s1")) for i, age in enumerate(ages)]
    # ten entries share one timestamp: the id breaks the tie
    rows += [
        ("alice", _entry(100 + i, NOW - timedelta(hours=3), sessionId="s1")) for i in range(10)
    ]
    rows += [("bob", _entry(200 + i, NOW - timedelta(minutes=i), actor="bob")) for i in range(20)]
    await _seed(worker, rows)
    alice = sorted(
        (e for owner, e in rows if owner == "alice"), key=lambda e: (e.at, e.id), reverse=True
    )
    expected = [e.id for e in alice]
    for limit in (1, 7, 50, 1000):
        got, pages = await _all_pages(audit, "alice", limit=limit, sessionId="s1")
        assert got == expected
        assert pages == max(1, -(-len(expected) // limit))
    cutoff = NOW - timedelta(hours=1)
    got, _ = await _all_pages(audit, "alice", limit=3, to=cutoff.isoformat())
    assert got == [e.id for e in alice if e.at < cutoff]


async def test_bad_cursor_and_window_are_invalid_requests(audit: AuditService) -> None:
    for cursor in (
        "not-base64!!",
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", 5]').decode(),
        base64.urlsafe_b64encode(b"{}").decode(),
    ):
        with pytest.raises(OpenFoalError) as err:
            await audit.query("alice", _params(cursor=cursor))
        assert err.value.code is ErrorCode.INVALID_REQUEST
    with pytest.raises(OpenFoalError) as err:
        await audit.query(
            "alice",
            _params(
                **{"from": utcnow().isoformat(), "to": (utcnow() - timedelta(days=1)).isoformat()}
            ),
        )
    assert err.value.code is ErrorCode.INVALID_REQUEST and "from is after to" in err.value.message
