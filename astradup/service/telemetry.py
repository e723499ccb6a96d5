"""Prometheus metrics of one app: a registry of its own (never the process-wide default), request
counts and latency by route, and gauges read from the app state (index, library, last runs)."""

from __future__ import annotations

import time
from typing import Any

from astradup.execution.run_metrics import run_families

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class StateCollector:
    """Gauges of the index and the store, read from the :class:`AppState` at scrape time."""

    def __init__(self, state: Any):
        self.state = state

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        st = self.state
        qi = st.index
        ready = GaugeMetricFamily("astradup_index_ready", "1 when the frame index is loaded and queries are served.")
        ready.add_metric([], 1.0 if qi is not None else 0.0)
        stale = GaugeMetricFamily("astradup_index_stale", "1 when the store has a newer index run than the loaded index.")
        stale.add_metric([], 1.0 if st.status.stale else 0.0)
        vectors = GaugeMetricFamily("astradup_index_vectors", "Vectors in the loaded frame index.")
        indexed = GaugeMetricFamily("astradup_index_videos", "Videos in the loaded frame index.")
        load = GaugeMetricFamily("astradup_index_load_seconds", "Seconds the last index load took.")
        loaded = GaugeMetricFamily("astradup_index_loaded_timestamp_seconds", "When the index was loaded (UNIX time).")
        if qi is not None:
            vectors.add_metric([], qi.n_vectors)
            indexed.add_metric([], qi.n_videos)
            load.add_metric([], qi.load_seconds)
            loaded.add_metric([], qi.loaded_at)
        videos = GaugeMetricFamily("astradup_library_videos", "Videos in the store.")
        videos.add_metric([], st.status.n_videos_store)
        yield from (ready, stale, vectors, indexed, load, loaded, videos)
        yield from run_families(st.status.runs)


class Telemetry:
    """The app's registry with its request metrics, and an ASGI middleware that records them."""

    def __init__(self, state: Any):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("astradup_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("astradup_http_request_duration_seconds", "HTTP request latency by route.",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(StateCollector(state))  # type: ignore[arg-type]

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def middleware(self, app: Any) -> Any:
        telemetry = self

        async def asgi(scope, receive, send):
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            t0 = time.perf_counter()
            status = {"code": 500}

            async def send_wrapper(message):
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = scope.get("route")
                name = getattr(route, "path", None) or "unmatched"
                telemetry.requests.labels(name, scope.get("method", ""), str(status["code"])).inc()
                telemetry.latency.labels(name, scope.get("method", "")).observe(time.perf_counter() - t0)

        return asgi
