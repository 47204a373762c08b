"""The Postgres store of a cloud instance: migrations, the store, its governance tables."""

from __future__ import annotations

from .migrations import MIGRATIONS, migrate
from .store import PostgresStore, StoreUnavailable

__all__ = ["MIGRATIONS", "PostgresStore", "StoreUnavailable", "migrate"]
