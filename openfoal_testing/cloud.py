"""Pytest fixtures of the cloud store: a private Postgres and SeaweedFS for the test session,
and ``open_store``, parametrized over both store implementations.

Enable with ``pytest_plugins = ["openfoal_testing.cloud"]``. A missing Postgres
or SeaweedFS fails the tests that need it (:class:`ServiceUnavailable`), never skips them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest

from openfoal_server_ext.cloud_services import PrivateObjectStore, PrivatePostgres
from openfoal_server_ext.store import DuckDBStore, Store
from openfoal_server_ext.store.blobs import BlobStore, BlobStoreError
from openfoal_server_ext.store.postgres import PostgresStore

#: The bucket the test object store serves (each test gets its own prefix in it).
TEST_BUCKET = "openfoal-test"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server for the test session."""
    server = PrivatePostgres().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PrivatePostgres) -> Iterator[str]:
    """The URL of a fresh, empty database (dropped after the test)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def object_store() -> Iterator[PrivateObjectStore]:
    """A private SeaweedFS S3 server for the test session, with ``AWS_*`` pointing at it."""
    server = PrivateObjectStore().start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", server.endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "openfoal")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "openfoal")
        mp.setenv("AWS_REGION", "us-east-1")
        _bucket_takes_writes(BlobStore(f"s3://{TEST_BUCKET}"))
        yield server
    server.stop()


def _bucket_takes_writes(blobs: BlobStore, timeout_s: float = 120) -> None:
    """Create the bucket and wait until it stores an object: SeaweedFS grows the volumes of a
    new bucket lazily and answers InternalError to the first writes while it does."""
    blobs.ensure_bucket()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            blobs.put("probe", b"ready")
            return
        except BlobStoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def object_store_url(object_store: PrivateObjectStore) -> str:
    """``s3://bucket/prefix`` of a prefix of the test bucket no other test uses."""
    return f"s3://{TEST_BUCKET}/{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["duckdb", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store implementation a contract test runs against."""
    return str(request.param)


@pytest.fixture
def open_store(
    store_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Store]]:
    """Opens the store under test, on the same database every call (to test reopening)."""
    opened: list[Store] = []
    if store_kind == "duckdb":
        path = tmp_path / "store.duckdb"

        def make() -> Store:
            return DuckDBStore(path)

    else:
        url = request.getfixturevalue("postgres_url")

        def make() -> Store:
            return PostgresStore(url)

    def tracked() -> Store:
        store = make()
        opened.append(store)
        return store

    yield tracked
    for store in opened:
        if isinstance(store, PostgresStore):
            store.close()  # closing twice is harmless for a pool; DuckDB is closed by tests


@pytest.fixture
def store_error(store_kind: str) -> type[Exception]:
    """The error the store under test raises for a row its database refuses."""
    return duckdb.Error if store_kind == "duckdb" else psycopg.Error


def count_rows(store: Store, table: str) -> int:
    """How many rows a table of either store holds."""
    if isinstance(store, DuckDBStore):
        row = store.con.execute(f"SELECT count(*) FROM {table}").fetchone()
    else:
        assert isinstance(store, PostgresStore)
        with store.connection() as con:
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])
