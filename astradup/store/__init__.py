"""The DuckDB feature store (one embedded file)."""

from astradup.store.schema import SCHEMA_VERSION, TABLES
from astradup.store.store import Store, VideoRecord

__all__ = ["SCHEMA_VERSION", "TABLES", "Store", "VideoRecord"]
