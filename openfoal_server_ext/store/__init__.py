"""Persistence: the store interface, the DuckDB store, and the single writer thread."""

from __future__ import annotations

from .base import EventRow, IdempotencyRow, MessageRow, RunRow, Store, WriteBatch
from .duckdb_store import DuckDBStore
from .worker import StoreWorker

__all__ = [
    "DuckDBStore",
    "EventRow",
    "IdempotencyRow",
    "MessageRow",
    "RunRow",
    "Store",
    "StoreWorker",
    "WriteBatch",
]
