"""Persistence: the store interface, the DuckDB store, and the single writer thread."""

from __future__ import annotations

from .base import (
    AuditRow,
    EventRow,
    IdempotencyRow,
    MessageRow,
    RunRow,
    Store,
    ToolRunRow,
    WriteBatch,
)
from .duckdb_store import DuckDBStore
from .worker import StoreWorker

__all__ = [
    "AuditRow",
    "DuckDBStore",
    "EventRow",
    "IdempotencyRow",
    "MessageRow",
    "RunRow",
    "Store",
    "StoreWorker",
    "ToolRunRow",
    "WriteBatch",
]
