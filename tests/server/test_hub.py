"""The event hub: gapless seq, commit-before-announce for non-deltas, per-session order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openfoal_server_ext.services.hub import EventHub
from openfoal_server_ext.store import DuckDBStore, StoreWorker

pytestmark = pytest.mark.asyncio


async def test_order_and_durability(tmp_path: Path) -> None:
    worker = StoreWorker(DuckDBStore(tmp_path / "h.duckdb"), window_s=0.05)
    hub = EventHub(worker)
    await hub.start()
    seen: list[tuple[int, str, bool]] = []

    def sub(frame: dict) -> None:
        # when a non-delta is delivered, it must already be in the store
        committed = any(
            e.seq == frame["seq"] for e in worker.store.get_events("s", after_seq=0, limit=100)
        )
        seen.append((frame["seq"], frame["event"], committed))

    hub.subscribe_session("s", sub)
    futures = [hub.publish("s", "agent.accepted", {}, run_id="r", trace_id="t")]
    futures += [
        hub.publish("s", "agent.delta", {"delta": str(i)}, run_id="r", trace_id="t")
        for i in range(5)
    ]
    futures.append(
        hub.publish("s", "agent.completed", {"status": "completed"}, run_id="r", trace_id="t")
    )
    await asyncio.gather(*futures)
    assert [s for s, _, _ in seen] == list(range(1, 8))  # delivered in seq order
    assert all(committed for _, event, committed in seen if event != "agent.delta")
    await worker.commit()
    worker.close()

    worker2 = StoreWorker(DuckDBStore(tmp_path / "h.duckdb"))
    hub2 = EventHub(worker2)
    await hub2.start()
    assert hub2.last_seq("s") == 7 and hub2.state_version == 7
    frame = await hub2.publish("s", "session.updated", {})
    assert frame["seq"] == 8 and frame["stateVersion"] == 8
    worker2.close()


async def test_owner_subscribers_get_non_deltas_only(tmp_path: Path) -> None:
    worker = StoreWorker(DuckDBStore(tmp_path / "h.duckdb"))
    hub = EventHub(worker)
    await hub.start()
    hub.set_owner("s", "alice")
    got: list[str] = []
    hub.subscribe_owner("alice", lambda f: got.append(f["event"]))
    await hub.publish("s", "agent.delta", {"delta": "x"})
    await hub.publish("s", "session.updated", {})
    assert got == ["session.updated"]
    worker.close()
