"""The query service over a real socket: every route, bad uploads, index reload, and metrics."""

from __future__ import annotations

import io
import os
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from PIL import Image

from astradup.service import ServiceSettings
from tests.conftest import HOSTILE_NAME, make_video
from tests.service_util import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(service_store):
    with LiveServer(ServiceSettings(store=service_store, max_upload_bytes=2_000_000, refresh_seconds=0.5)) as srv:
        yield srv


def uploads() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("astradup-upload-")}


def test_health_ready_and_library_routes(server):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    ready = httpx.get(server.url + "/ready").json()
    assert ready["ready"] and ready["index_videos"] == 3 and ready["index_mode"] == "full"
    assert not ready["review_enabled"]
    videos = httpx.get(server.url + "/videos").json()
    assert videos["total"] == 3 and {v["path"] for v in videos["videos"]} == {"src.mp4", "other.mp4", HOSTILE_NAME}
    pairs = httpx.get(server.url + "/pairs", params={"limit": 10}).json()
    top = pairs["pairs"][0]
    assert {top["a"], top["b"]} == {"src.mp4", HOSTILE_NAME} and top["label"] in ("exact", "near")
    assert httpx.get(server.url + "/pairs", params={"label": "different"}).json()["total"] == sum(
        p["label"] == "different" for p in pairs["pairs"])
    assert httpx.get(server.url + "/pairs", params={"label": "bogus"}).status_code == 400
    ex = httpx.get(server.url + f"/pairs/{top['a_id']}/{top['b_id']}").json()
    assert ex["score"] == pytest.approx(top["score"], abs=1e-6) and ex["top_frames"]
    assert ex["offset"] == pytest.approx(0.0, abs=0.6)
    r = httpx.get(server.url + ex["top_frames"][0]["thumb_a"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size[0] == 240
    assert httpx.get(server.url + "/thumb", params={"path": "/etc/passwd"}).status_code == 404
    assert httpx.get(server.url + "/pairs/1/999").status_code == 404


def test_query_upload_and_path(server, service_store):
    src = service_store.parent / "media" / "src.mp4"
    with open(src, "rb") as fh:
        r = httpx.post(server.url + "/query", files={"video": ("mine.mp4", fh, "video/mp4")}, timeout=600)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "mine.mp4"
    found = {m["path"]: m for m in body["matches"]}
    assert set(found) == {"src.mp4", HOSTILE_NAME}
    m = found["src.mp4"]
    assert m["label"] == "exact" and m["score"] > 0.95 and m["visual"] > 0.9
    assert m["segments"][0]["b_end"] > 3 and "weights" in m["explanation"]
    r = httpx.get(server.url + "/query", params={"path": str(src), "fast": "true"}, timeout=600)
    assert r.status_code == 200 and r.json()["fast"] and r.json()["matches"][0]["path"] in ("src.mp4", HOSTILE_NAME)
    raw = httpx.post(server.url + "/query", params={"filename": "raw.mp4"}, content=src.read_bytes(),
                     headers={"Content-Type": "video/mp4"}, timeout=600)
    assert raw.status_code == 200 and raw.json()["matches"]
    assert not uploads()


def test_bad_uploads_are_refused_and_the_server_stays_up(server):
    before = uploads()
    r = httpx.post(server.url + "/query", files={"video": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 415 and "notes.txt" in r.json()["detail"]
    r = httpx.post(server.url + "/query", files={"video": ("x.mp4", b"hello", "application/pdf")})
    assert r.status_code == 415
    r = httpx.post(server.url + "/query", files={"video": ("broken.mp4", b"\x00not a video" * 50, "video/mp4")})
    assert r.status_code == 422 and r.json()["detail"].startswith("broken.mp4:")
    assert "astradup-upload-" not in r.json()["detail"]
    # declared too large: refused from the header, before the body is read
    big = b"\x00" * 3_000_000
    r = httpx.post(server.url + "/query", files={"video": ("big.mp4", big, "video/mp4")})
    assert r.status_code == 413
    # too large without a Content-Length (chunked): refused while streaming

    def chunks():
        for _ in range(40):
            yield b"\x00" * 100_000

    r = httpx.post(server.url + "/query", params={"filename": "big.mp4"}, content=chunks(), headers={"Content-Type": "video/mp4"})
    assert r.status_code == 413
    assert httpx.get(server.url + "/health").status_code == 200
    assert uploads() == before


def test_client_disconnect_mid_upload_leaves_no_temp_file(server):
    before = uploads()
    host, port = "127.0.0.1", server.settings.port
    boundary = "xyzzy"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"half.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode()
    body_len = len(head) + 1_000_000
    with socket.create_connection((host, port)) as s:
        s.sendall((f"POST /query HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
                   f"Content-Length: {body_len}\r\n\r\n").encode() + head + b"\x00" * 300_000)
        deadline = time.monotonic() + 10
        while not (uploads() - before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uploads() - before, "the upload never reached a temporary file"
    deadline = time.monotonic() + 20
    while uploads() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert uploads() == before
    assert httpx.get(server.url + "/health").status_code == 200


def test_review_is_read_only_without_the_flag(server):
    r = httpx.post(server.url + "/decide", json={"a": "src.mp4", "b": HOSTILE_NAME, "decision": "duplicate"})
    assert r.status_code == 403 and "--allow-review" in r.json()["detail"]
    q = httpx.get(server.url + "/review/queue").json()
    assert not q["review_enabled"] and q["total"] >= 1


def test_metrics_parse_with_prometheus_parser(server):
    from prometheus_client.parser import text_string_to_metric_families

    httpx.get(server.url + "/health")
    text = httpx.get(server.url + "/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    reqs = [s for s in fams["astradup_http_requests"].samples
            if s.name.endswith("_total") and s.labels["route"] == "/health" and s.labels["status"] == "200"]
    assert reqs and reqs[0].value >= 1
    lat = [s for s in fams["astradup_http_request_duration_seconds"].samples
           if s.name.endswith("_count") and s.labels["route"] == "/health"]
    assert lat and lat[0].value >= 1
    assert fams["astradup_index_vectors"].samples[0].value > 0
    assert fams["astradup_index_ready"].samples[0].value == 1
    assert fams["astradup_library_videos"].samples[0].value == 3
    kinds = {s.labels["kind"]: s.value for s in fams["astradup_run_success"].samples}
    assert kinds == {"index": 1.0, "match": 1.0}
    stages = {s.labels["stage"] for s in fams["astradup_run_stage_seconds"].samples if s.labels["kind"] == "index"}
    assert {"decode", "embed"} <= stages


def test_ready_says_why_until_loaded(tmp_path):
    with LiveServer(ServiceSettings(store=tmp_path / "missing.duckdb"), wait_ready=False) as srv:
        deadline = time.monotonic() + 30
        while True:
            r = httpx.get(srv.url + "/ready")
            assert r.status_code == 503
            if "does not exist" in r.json()["reason"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert "does not exist" in r.json()["reason"]
        assert httpx.get(srv.url + "/health").status_code == 200
        assert httpx.post(srv.url + "/query", files={"video": ("a.mp4", b"x", "video/mp4")}).status_code == 503


def test_a_new_index_run_is_picked_up_without_a_restart(tmp_path, service_store):
    import shutil

    from astradup.errors import StoreError
    from astradup.execution import run_index

    media = tmp_path / "media"
    shutil.copytree(service_store.parent / "media", media)
    store = tmp_path / "lib.duckdb"
    run_index(media, store, eager=True, progress=False)
    with LiveServer(ServiceSettings(store=store, refresh_seconds=0.3, store_linger_seconds=0.1)) as srv:
        first = srv.until_ready()
        assert first["index_videos"] == 3
        make_video(media / "new.mp4", "cellauto", seconds=3, seed=3)
        for _ in range(50):  # the server holds the store only during requests and checks
            try:
                run_index(media, store, eager=True, progress=False)
                break
            except StoreError:
                time.sleep(0.2)
        deadline = time.monotonic() + 120
        while True:
            ready = httpx.get(srv.url + "/ready").json()
            if ready["index_videos"] == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert ready["index_videos"] == 4 and ready["index_run"] != first["index_run"] and not ready["stale"]


def test_settings_are_checked():
    from astradup.errors import ConfigError

    with pytest.raises(ConfigError, match="max_upload_bytes"):
        ServiceSettings(store=Path("x"), max_upload_bytes=0)
    with pytest.raises(ConfigError, match="port"):
        replace(ServiceSettings(store=Path("x")), port=0)
