"""The DuckDB feature store (one embedded file)."""

from astradup.store.rows import VideoRecord
from astradup.store.schema import SCHEMA_VERSION, TABLES
from astradup.store.store import Store

__all__ = ["SCHEMA_VERSION", "TABLES", "Store", "VideoRecord"]
