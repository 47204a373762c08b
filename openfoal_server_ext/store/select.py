"""Which store a server opens: DuckDB for a local instance, Postgres for a cloud one."""

from __future__ import annotations

from pathlib import Path

from .base import Store
from .blobs import BlobStore
from .duckdb_store import DuckDBStore
from .outbox import OutboxTables
from .postgres import PostgresStore


class StoreSettingsError(ValueError):
    """The store settings contradict each other (the message says which to set)."""


def open_configured_store(
    *,
    store_class: type[Store] | None = None,
    role: str,
    database_url: str,
    object_store_url: str,
    db_path: Path,
) -> Store:
    """Open ``store_class``; by default Postgres (with the object store, if set) when
    ``database_url`` is set, else DuckDB.

    A cloud instance without a database URL is refused: it must not quietly keep its state
    in a local file. A store class of another kind is built with the DuckDB path. A cloud
    instance's store keeps no sync outbox (it pushes nowhere).
    """
    store = _open(store_class, role, database_url, object_store_url, db_path)
    if role == "cloud" and isinstance(store, OutboxTables):
        store.outbox_enabled = False
    return store


def _open(
    store_class: type[Store] | None,
    role: str,
    database_url: str,
    object_store_url: str,
    db_path: Path,
) -> Store:
    if store_class is None:
        store_class = PostgresStore if database_url else DuckDBStore
    if role == "cloud" and not database_url:
        raise StoreSettingsError(
            "OpenFoal: role is 'cloud' but no database is set: set c.OpenFoalApp.database_url "
            "or OPENFOAL_DATABASE_URL (postgresql://user@host:port/db)"
        )
    if not issubclass(store_class, PostgresStore):
        return store_class(db_path)  # type: ignore[call-arg]
    if not database_url:
        raise StoreSettingsError(
            "OpenFoal: the store class is PostgresStore but no database is set: set "
            "c.OpenFoalApp.database_url or OPENFOAL_DATABASE_URL"
        )
    blobs = BlobStore(object_store_url) if object_store_url else None
    if blobs is not None:
        blobs.ensure_bucket()
    return store_class(database_url, blobs=blobs)
