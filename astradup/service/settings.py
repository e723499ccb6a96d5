"""The service's settings: one frozen dataclass, the single source of truth for ``astradup serve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from astradup.config import AstradupConfig
from astradup.errors import ConfigError


@dataclass(frozen=True)
class ServiceSettings:
    """How ``astradup serve`` runs.

    Attributes:
        store: the DuckDB store to serve (read-only unless ``allow_review``).
        host, port: where uvicorn listens; 127.0.0.1 unless told otherwise (put a proxy with
            authentication in front before opening it to a network).
        allow_review: enable ``POST /decide`` (the review page's keys); otherwise it answers 403.
        config: the AstraDup config queries are extracted with; None uses the config of the
            store's last index run, so queries are embedded by the model the library was.
        max_upload_bytes: largest accepted upload; a larger one is refused with 413.
        max_concurrent_queries: queries extracted at once; the rest wait their turn.
        refresh_seconds: how often the server checks for a newer index run or index files.
        store_linger_seconds: the store connection is closed after this long without requests,
            so an ``astradup index`` run in another process can take the write lock.
        top, min_score: defaults of ``/query``.
    """

    store: Path
    host: str = "127.0.0.1"
    port: int = 8000
    allow_review: bool = False
    config: AstradupConfig | None = None
    max_upload_bytes: int = 512 * 1024 * 1024
    max_concurrent_queries: int = 2
    refresh_seconds: float = 5.0
    store_linger_seconds: float = 1.0
    top: int = 10
    min_score: float = 0.5

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1:
            raise ConfigError(f"max_upload_bytes must be >= 1, but got {self.max_upload_bytes}")
        if self.max_concurrent_queries < 1:
            raise ConfigError(f"max_concurrent_queries must be >= 1, but got {self.max_concurrent_queries}")
        if not self.refresh_seconds > 0:
            raise ConfigError(f"refresh_seconds must be > 0, but got {self.refresh_seconds}")
        if self.store_linger_seconds < 0:
            raise ConfigError(f"store_linger_seconds must be >= 0, but got {self.store_linger_seconds}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be in 1..65535, but got {self.port}")
