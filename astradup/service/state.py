"""What one running server holds: a shared store connection and the loaded frame index.

The index is loaded once per server, in a background thread started with the app, and reloaded
(not per request) when a newer ``index`` run lands in the store or the index files beside it are
rewritten. The store connection is shared by requests (one DuckDB cursor each) and closed when
idle, so an ``astradup index`` run in another process can take DuckDB's write lock between
requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from astradup.config import AstradupConfig
from astradup.errors import AstradupError, StoreError
from astradup.service.settings import ServiceSettings
from astradup.store.store import Store

log = logging.getLogger(__name__)


class StoreAccess:
    """One DuckDB connection to the store, opened on demand and shared by threads (a cursor each).

    ``writable`` opens it read-write (for review decisions); otherwise read-only. The connection
    closes after ``linger`` seconds without users (:meth:`close_idle`).
    """

    def __init__(self, path, writable: bool = False, linger: float = 1.0):
        self.path = path
        self.writable = writable
        self.linger = linger
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._users = 0
        self._last = 0.0

    def acquire(self) -> Store:
        """A :class:`Store` on its own cursor of the shared connection; give it back with
        :meth:`release`.

        Raises:
            StoreError: the store is missing, damaged or locked by another process's writer.
        """
        with self._lock:
            if self._store is None:
                if not self.path.exists():
                    raise StoreError(f"{self.path}: store does not exist (run `astradup index` first)")
                self._store = Store(self.path, read_only=not self.writable).open()
            self._users += 1
            base = self._store
        cur = Store(self.path, read_only=not self.writable)
        try:
            cur._con = base.con.cursor()
        except Exception:
            self._done()
            raise
        return cur

    def release(self, cur: Store) -> None:
        try:
            cur.close()
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._users -= 1
            self._last = time.monotonic()

    @contextmanager
    def open(self) -> Iterator[Store]:
        """:meth:`acquire` and :meth:`release` as a context manager."""
        cur = self.acquire()
        try:
            yield cur
        finally:
            self.release(cur)

    def close_idle(self, force: bool = False) -> bool:
        """Close the connection when nobody uses it and it idled ``linger`` seconds (or ``force``)."""
        with self._lock:
            if self._store is None or self._users:
                return False
            if not force and time.monotonic() - self._last < self.linger:
                return False
            self._store.close()
            self._store = None
            return True


@dataclass
class IndexStatus:
    """Where the index stands, for ``/ready`` and ``/metrics``."""

    state: str = "starting"  # starting | loading | ready | failed
    reason: str = "the index is being loaded"
    stale: bool = False
    stale_reason: str = ""
    index_run: str | None = None
    n_videos_store: int = 0
    last_check: float = 0.0
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)


class AppState:
    """Everything one app holds (no module-level globals): settings, store access, config,
    the loaded :class:`~astradup.execution.query.QueryIndex`, its status, a query slot semaphore."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.access = StoreAccess(settings.store, writable=settings.allow_review, linger=settings.store_linger_seconds)
        self.config: AstradupConfig | None = settings.config
        self.index: Any = None
        self.status = IndexStatus()
        self.query_slots = threading.BoundedSemaphore(settings.max_concurrent_queries)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reload_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the index in a background thread, then watch for newer runs until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="astradup-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.access.close_idle(force=True)

    def _run(self) -> None:
        self.reload()
        while not self._stop.wait(min(self.settings.refresh_seconds, max(self.settings.store_linger_seconds, 0.2))):
            if time.monotonic() - self.status.last_check >= self.settings.refresh_seconds:
                self.refresh()
            self.access.close_idle()

    @property
    def ready(self) -> bool:
        return self.index is not None

    # -- loading -----------------------------------------------------------------------------------
    def effective_config(self, st: Store) -> AstradupConfig:
        from astradup.execution.query import store_config

        return self.settings.config or store_config(st) or AstradupConfig()

    def reload(self) -> None:
        """(Re)load the index; on failure keep the old one (if any) and say why."""
        from astradup.execution.query import QueryIndex

        with self._reload_lock:
            if self.index is None:
                self.status.state, self.status.reason = "loading", "the index is being loaded"
            try:
                with self.access.open() as st:
                    cfg = self.effective_config(st)
                    run = _last_index_run(st)
                    qi = QueryIndex.load(self.settings.store, cfg, st, refresh=True)
                    self._snapshot(st)
            except (AstradupError, OSError) as exc:
                log.warning("index not loaded: %s", exc)
                self.status.last_check = time.monotonic()
                if self.index is None:
                    self.status.state, self.status.reason = "failed", f"index not loaded: {exc}"
                else:
                    self.status.stale, self.status.stale_reason = True, f"a newer index could not be loaded: {exc}"
                return
            self.config, self.index = cfg, qi
            self.status.state, self.status.reason = "ready", ""
            self.status.stale, self.status.stale_reason = False, ""
            self.status.index_run = run
            self.status.last_check = time.monotonic()
            log.info("index %s: %d vectors of %d videos (%s, %.2f s)", qi.how, qi.n_vectors, qi.n_videos, qi.mode, qi.load_seconds)

    def refresh(self) -> None:
        """Reload when a newer index run landed or the index files changed; else note the time."""
        self.status.last_check = time.monotonic()
        if self.index is None:
            self.reload()
            return
        try:
            with self.access.open() as st:
                run = _last_index_run(st)
                self._snapshot(st)
                newer = run != self.status.index_run or self.index.is_stale(st)
        except AstradupError as exc:  # e.g. an index run holds the write lock right now
            log.info("store not readable right now (%s)", exc)
            return
        if newer or self.index.changed():
            self.status.stale = True
            self.status.stale_reason = f"index run {run} is newer than the loaded index; reloading"
            self.reload()

    def _snapshot(self, st: Store) -> None:
        from astradup.execution.run_metrics import last_runs

        self.status.n_videos_store = int(st.con.execute("SELECT count(*) FROM videos").fetchone()[0])
        self.status.runs = last_runs(st)


def _last_index_run(st: Store) -> str | None:
    row = st.con.execute(
        "SELECT run_id FROM runs WHERE kind = 'index' AND status = 'ok' ORDER BY started DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None
