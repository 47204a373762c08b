"""Fixtures for the policy, audit and metrics tests: services on each real store (a DuckDB file,
a Postgres database)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest_asyncio

from openfoal_server_ext.services.audit import AuditService
from openfoal_server_ext.services.hub import EventHub
from openfoal_server_ext.services.policy import PolicyService
from openfoal_server_ext.store import Store, StoreWorker


@pytest_asyncio.fixture
async def worker(open_store: Callable[[], Store]) -> AsyncIterator[StoreWorker]:
    """The single writer over a fresh store (closed after the test)."""
    w = StoreWorker(open_store(), window_s=0.02)
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
