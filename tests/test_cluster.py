"""Execution on a real Dask cluster started as separate processes, and fault tolerance.

A scheduler and two workers run on 127.0.0.1; ``astradup index --scheduler`` must give the same
store as an eager run, survive a worker killed with SIGKILL, and resume after the driver is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from astradup.execution import run_index, run_match
from astradup.store import Store
from tests.conftest import make_video
from tests.test_store_runner import _assert_same_features

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
BIN = Path(sys.executable).parent
CLI = [sys.executable, "-m", "astradup.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cluster_corpus")
    kinds = ["mandelbrot", "life", "cellauto", "testsrc2"]
    for i in range(12):
        make_video(d / f"v{i:02d}.mp4", kinds[i % 4], seconds=3, seed=i, vf=f"hue=h={i * 25}")
    return d


@pytest.fixture(scope="module")
def eager_store(corpus, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("eager") / "eager.duckdb"
    run_index(corpus, store, eager=True, progress=False)
    return store


@pytest.fixture()
def cluster(tmp_path):
    """``dask scheduler`` plus two ``dask worker`` processes on 127.0.0.1."""
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0", "--no-show"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    workers = []
    for i in range(2):
        w = subprocess.Popen([str(BIN / "dask"), "worker", addr, "--nthreads", "1", "--no-nanny", "--name", f"w{i}",
                              "--local-directory", str(tmp_path / f"w{i}")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers.append(w)
    from distributed import Client

    with Client(addr, timeout="30s") as c:
        c.wait_for_workers(2, timeout=60)
    yield addr, workers
    for p in workers + procs:
        if p.poll() is None:
            p.terminate()
    for p in workers + procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def test_index_through_scheduler_equals_eager(corpus, eager_store, cluster, tmp_path):
    addr, _ = cluster
    store = tmp_path / "c.duckdb"
    r = subprocess.run([*CLI, "index", str(corpus), "--store", str(store), "--scheduler", addr, "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "indexed          12" in r.stdout
    _assert_same_features(eager_store, store)


def test_worker_killed_mid_run(corpus, eager_store, cluster, tmp_path):
    addr, workers = cluster
    store = tmp_path / "k.duckdb"
    proc = subprocess.Popen([*CLI, "index", str(corpus), "--store", str(store), "--scheduler", addr, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)  # workers are busy loading models and extracting by now
    assert proc.poll() is None, "the run finished before the worker could be killed"
    os.kill(workers[0].pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    with Store(store, read_only=True) as st:
        v = st.videos()
        assert len(v) == 12 and v["path"].is_unique  # nothing missing, nothing twice
        dup = st.sql("SELECT video_id, idx, count(*) n FROM frames GROUP BY ALL HAVING n > 1")
        assert dup.empty
        assert st.failures().empty
    _assert_same_features(eager_store, store)


def test_driver_killed_mid_run_resumes(corpus, eager_store, tmp_path):
    store = tmp_path / "r.duckdb"
    proc = subprocess.Popen([*CLI, "index", str(corpus), "--store", str(store), "--eager", "--commit-every", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # the progress bar says how many videos are committed (here each on its own); kill the driver
    # outright mid-way
    import re

    done, buf = 0, b""
    os.set_blocking(proc.stderr.fileno(), False)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        chunk = proc.stderr.read() or b""
        buf = (buf + chunk)[-4000:]
        counts = [int(m) for m in re.findall(rb"\| *(\d+)/12 ", buf)]
        if counts and counts[-1] >= 3:
            done = counts[-1]
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert 0 < done < 12, f"could not catch the run mid-way ({done} videos)"
    resumed = run_index(corpus, store, eager=True, progress=False)
    assert resumed.n_skipped >= done - 1 and resumed.n_indexed + resumed.n_skipped == 12
    _assert_same_features(eager_store, store)
    p1 = run_match(eager_store, min_score=0.0, progress=False)
    p2 = run_match(store, min_score=0.0, progress=False)
    cols = ["a", "b", "label"]
    pd.testing.assert_frame_equal(p1[cols].reset_index(drop=True), p2[cols].reset_index(drop=True))
    assert (p1["score"] - p2["score"]).abs().max() < 1e-4


def _pairs(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["a", "b"]).reset_index(drop=True)


@pytest.fixture()
def small_chunks(monkeypatch):
    """Verification chunks of 4 pairs, so a dozen videos make many chunks and several in flight."""
    from astradup.execution import stages

    monkeypatch.setattr(stages, "VERIFY_PAIRS", 4)
    return stages


def test_match_through_scheduler_equals_eager(eager_store, cluster, small_chunks, tmp_path):
    addr, _ = cluster
    eager = run_match(eager_store, min_score=0.0, progress=False, eager=True, out=tmp_path / "eager.csv")
    assert len(eager) > 8  # enough candidates for several chunks
    dist = run_match(eager_store, min_score=0.0, progress=False, scheduler=addr)
    pd.testing.assert_frame_equal(_pairs(eager), _pairs(dist))
    # the CLI takes the same path, and writes the eager run's pairs.csv byte for byte (the workers
    # compute with one BLAS thread, the driver with more: the evidence must not depend on it)
    out = tmp_path / "pairs.csv"
    r = subprocess.run([*CLI, "match", "--store", str(eager_store), "--scheduler", addr, "--min-score", "0",
                        "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == (tmp_path / "eager.csv").read_bytes()


def test_match_survives_a_worker_killed_mid_run(eager_store, cluster, small_chunks):
    addr, workers = cluster
    eager = run_match(eager_store, min_score=0.0, progress=False, eager=True)
    assert len(eager) > 2 * small_chunks.VERIFY_PAIRS  # at least three chunks, so the kill lands mid-run
    feature_chunks = small_chunks.feature_chunks

    def chunks_then_kill(*args, **kwargs):
        for i, chunk in enumerate(feature_chunks(*args, **kwargs)):
            if i == 2:  # chunks 0-1 are on the workers now
                os.kill(workers[0].pid, signal.SIGKILL)
                workers[0].wait(timeout=30)
            yield chunk

    small_chunks.feature_chunks = chunks_then_kill
    try:
        dist = run_match(eager_store, min_score=0.0, progress=False, scheduler=addr)
    finally:
        small_chunks.feature_chunks = feature_chunks
    assert workers[0].poll() is not None
    pd.testing.assert_frame_equal(_pairs(eager), _pairs(dist))
