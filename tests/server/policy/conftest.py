"""Fixtures for the policy, audit and metrics tests: services on a real DuckDB file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from openfoal_server_ext.services.audit import AuditService
from openfoal_server_ext.services.hub import EventHub
from openfoal_server_ext.services.policy import PolicyService
from openfoal_server_ext.store import DuckDBStore, StoreWorker


@pytest_asyncio.fixture
async def worker(tmp_path: Path) -> AsyncIterator[StoreWorker]:
    """The single writer over a fresh DuckDB file (closed after the test)."""
    w = StoreWorker(DuckDBStore(tmp_path / "policy.duckdb"), window_s=0.02)
    yield w
    w.close()


@pytest_asyncio.fixture
async def hub(worker: StoreWorker) -> EventHub:
    """An event hub on the worker, started."""
    h = EventHub(worker)
    await h.start()
    return h


@pytest_asyncio.fixture
async def audit(worker: StoreWorker) -> AuditService:
    """The audit service."""
    return AuditService(worker)


@pytest_asyncio.fixture
async def policies(worker: StoreWorker, hub: EventHub, audit: AuditService) -> PolicyService:
    """The policy service, started (the default policy exists)."""
    p = PolicyService(worker, hub, audit)
    await p.start()
    return p
