"""Sessions and runs already stored are updated in place; a rolled-back first write is redone
(both stores)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from openfoal_kernel.protocol import Session, utcnow
from openfoal_server_ext.store import EventRow, RunRow, Store, WriteBatch
from openfoal_testing.cloud import count_rows


def _bad_event() -> EventRow:
    bad = EventRow(session_id="s1", seq=1, event="x", payload={}, state_version=1, at=utcnow())
    bad.seq = "not a number"  # type: ignore[assignment]
    return bad


def test_updates_of_stored_rows_land(open_store: Callable[[], Store]) -> None:
    store = open_store()
    session = Session(id="s1", sessionKey="workspace:w/agent:a/main", owner="u")
    run = RunRow(
        id="r1", session_id="s1", owner="u", trace_id="t", status="accepted", created_at=utcnow()
    )
    store.write_batch(WriteBatch(sessions={"s1": session}, runs={"r1": run}))
    for status in ("running", "completed"):
        run.status = status
        store.write_batch(
            WriteBatch(
                sessions={"s1": session.model_copy(update={"title": status})}, runs={"r1": run}
            )
        )
    stored_run = store.get_run("r1")
    stored_session = store.get_session("s1")
    assert stored_run is not None and stored_run.status == "completed"
    assert stored_session is not None and stored_session.title == "completed"
    assert count_rows(store, "runs") == 1
    assert count_rows(store, "sessions") == 1
    store.close()


def test_a_first_write_rolled_back_is_written_again(
    open_store: Callable[[], Store], store_error: type[Exception]
) -> None:
    store = open_store()
    session = Session(id="s1", sessionKey="workspace:w/agent:a/main", owner="u")
    run = RunRow(
        id="r1", session_id="s1", owner="u", trace_id="t", status="accepted", created_at=utcnow()
    )
    with pytest.raises(store_error):
        store.write_batch(
            WriteBatch(sessions={"s1": session}, runs={"r1": run}, events=[_bad_event()])
        )
    run.status = "running"
    store.write_batch(WriteBatch(sessions={"s1": session}, runs={"r1": run}))
    stored = store.get_run("r1")
    assert stored is not None and stored.status == "running"
    assert store.get_session("s1") is not None
    store.close()


def test_sessions_loaded_at_start_are_updated_in_place(open_store: Callable[[], Store]) -> None:
    store = open_store()
    store.upsert_session(Session(id="s1", sessionKey="workspace:w/agent:a/main", owner="u"))
    store.close()
    store = open_store()
    (loaded,) = store.all_sessions()
    store.upsert_session(loaded.model_copy(update={"title": "renamed"}))
    again = store.get_session("s1")
    assert again is not None and again.title == "renamed"
    assert count_rows(store, "sessions") == 1
    store.close()


def test_a_new_run_is_inserted_and_a_failed_batch_retries_safely(
    open_store: Callable[[], Store], store_error: type[Exception]
) -> None:
    store = open_store()
    session = Session(id="s1", sessionKey="workspace:w/agent:a/main", owner="u")
    run = RunRow(
        id="r1",
        new=True,
        session_id="s1",
        owner="u",
        trace_id="t",
        status="accepted",
        created_at=utcnow(),
    )
    store.write_batch(WriteBatch(sessions={"s1": session}, runs={"r1": run}))
    # a batch that fails after the run's row: the retry must not trip on that row
    run.status = "running"
    with pytest.raises(store_error):
        store.write_batch(WriteBatch(runs={"r1": run}, events=[_bad_event()]))
    assert run.new is False
    store.write_batch(WriteBatch(runs={"r1": run}))
    stored = store.get_run("r1")
    assert stored is not None and stored.status == "running"
    # a run marked new whose id is stored already (never made by the services) is refused
    # loudly rather than silently replaced
    twin = RunRow(
        id="r1",
        new=True,
        session_id="s1",
        owner="u",
        trace_id="t",
        status="accepted",
        created_at=utcnow(),
    )
    store.close()
    store = open_store()  # as after a restart: the id is not known to be stored
    with pytest.raises(store_error):
        store.write_batch(WriteBatch(runs={"r1": twin}))
    store.close()
