"""Which store a server opens: DuckDB for a local instance, Postgres for a cloud one."""

from __future__ import annotations

from pathlib import Path

from .base import Store
from .blobs import BlobStore
from .duckdb_store import DuckDBStore
from .postgres import PostgresStore


class StoreSettingsError(ValueError):
    """The store settings contradict each other (the message says which to set)."""


def open_configured_store(
    *, role: str, database_url: str, object_store_url: str, db_path: Path
) -> Store:
    """Postgres (with the object store, if set) when ``database_url`` is set, else DuckDB.

    A cloud instance without a database URL is refused: it must not quietly keep its state
    in a local file.
    """
    if role == "cloud" and not database_url:
        raise StoreSettingsError(
            "OpenFoal: role is 'cloud' but no database is set: set c.OpenFoalApp.database_url "
            "or OPENFOAL_DATABASE_URL (postgresql://user@host:port/db)"
        )
    if not database_url:
        return DuckDBStore(db_path)
    blobs = BlobStore(object_store_url) if object_store_url else None
    if blobs is not None:
        blobs.ensure_bucket()
    return PostgresStore(database_url, blobs=blobs)
