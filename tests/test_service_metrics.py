"""Run metrics: the textfile beside the store, a push to a Pushgateway (a tiny local HTTP server
that records the request), and Dask's performance report when Dask ran."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from astradup.errors import ConfigError
from astradup.execution.run_metrics import default_metrics_file, export_run_metrics
from astradup.store import Store
from tests.conftest import make_video


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_index_and_match_write_the_textfile(service_store):
    path = default_metrics_file(service_store)
    fams = families(path.read_text())
    assert {s.labels["kind"] for s in fams["astradup_run_success"].samples} == {"index", "match"}
    files = {s.labels["kind"]: s.value for s in fams["astradup_run_files"].samples}
    assert files == {"index": 3.0, "match": 3.0}
    assert {s.labels["kind"] for s in fams["astradup_run_duration_seconds"].samples} == {"index", "match"}
    with Store(service_store, read_only=True) as st:
        runs = st.runs()
    ended = max(runs[runs["kind"] == "match"]["ended"]).timestamp()
    got = [s.value for s in fams["astradup_run_ended_timestamp_seconds"].samples if s.labels["kind"] == "match"][0]
    assert got == pytest.approx(ended, abs=1.0)


class _Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def do_PUT(self):  # noqa: N802 - http.server's naming
        n = int(self.headers.get("Content-Length", 0))
        self.seen.append((self.command, self.path, self.rfile.read(n).decode()))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args):
        pass


def test_push_to_a_pushgateway(service_store, tmp_path):
    _Recorder.seen = []
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        with Store(service_store, read_only=True) as st:
            out = export_run_metrics(st, "match", tmp_path / "m.prom", pushgateway=url)
    finally:
        httpd.shutdown()
    assert out.read_text().count("astradup_run_success") >= 3
    assert len(_Recorder.seen) == 1
    method, path, body = _Recorder.seen[0]
    assert method == "PUT" and path.startswith("/metrics/job/astradup_match/store/lib.duckdb")
    assert {s.labels["kind"] for s in families(body)["astradup_run_success"].samples} == {"index", "match"}
    with Store(service_store, read_only=True) as st, pytest.raises(ConfigError, match="http"):
        export_run_metrics(st, "match", tmp_path / "m.prom", pushgateway="ftp://nowhere")


@pytest.mark.slow
@pytest.mark.cluster
def test_dask_index_run_saves_a_performance_report(tmp_path):
    from astradup.config import AstradupConfig
    from astradup.execution import run_index

    make_video(tmp_path / "media" / "a.mp4", "mandelbrot", seconds=2, seed=1, audio=False)
    cfg = AstradupConfig().replace(**{"features.audio": False})
    s = run_index(tmp_path / "media", tmp_path / "s.duckdb", cfg, workers=1, progress=False,
                  metrics_file=tmp_path / "node" / "astradup.prom")
    assert s.n_indexed == 1 and s.performance_report
    html = open(s.performance_report, encoding="utf-8").read()
    assert "Dask Performance Report" in html
    assert (tmp_path / "node" / "astradup.prom").exists() and s.metrics_file == str(tmp_path / "node" / "astradup.prom")
