"""A query is extracted with every core, and its features are those ``astradup index`` stores.

The split decode (:class:`astradup.media.decode.PyAVDecoder` with ``segments``) is compared with
the one-pass decode on files that split and files that cannot; the whole query extraction is
compared with what an index run wrote to the store for the same file.
"""

from __future__ import annotations

import numpy as np
import pytest

import astradup.media.decode as dec
from astradup.config import AstradupConfig
from astradup.execution import run_index
from astradup.execution.extract import extract_video
from astradup.execution.query import extract_query, query_threads
from astradup.store import Store
from astradup.store.rows import as_stored
from tests.conftest import make_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 12 s clip with B-frames and a keyframe every second (it splits), and one with a single
    keyframe (it cannot)."""
    d = tmp_path_factory.mktemp("query-extract")
    lib = d / "lib"
    many = make_video(lib / "many.mp4", "mandelbrot", seconds=12.0, w=320, h=180, r=25, seed=4, extra=["-bf", "3"])
    one = make_video(d / "one.mp4", "mandelbrot", seconds=6.0, w=160, h=96, r=25, seed=5,
                     extra=["-bf", "2", "-g", "1000", "-sc_threshold", "0"])
    return many, one


def _stretches(monkeypatch) -> list[int]:
    """Count the stretches decoded (a test of the split path must see the split happen)."""
    real, seen = dec.PyAVDecoder._stretch, []
    monkeypatch.setattr(dec.PyAVDecoder, "_stretch", lambda self, *a: seen.append(1) or real(self, *a))
    return seen


@pytest.mark.parametrize("segments", [2, 3, 5])
@pytest.mark.parametrize("fps", [1.0, 4.0, 25.0])  # 25: neighbouring targets share frames
def test_split_decoding_gives_the_one_pass_frames(clips, monkeypatch, segments, fps):
    many, _ = clips
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    want = dec.sample_frames(many, 12.0, fps, 160)
    seen = _stretches(monkeypatch)
    got = dec.sample_frames(many, 12.0, fps, 160, segments=segments)
    assert len(seen) == segments  # split, not the one-pass fallback
    assert len(got) == len(want) >= 12
    assert np.array_equal(got.timestamps, want.timestamps) and np.array_equal(got.frames, want.frames)
    assert got.backend == want.backend == "pyav"


def test_an_overstated_duration_gives_the_one_pass_frames(clips, monkeypatch):
    many, _ = clips
    want = dec.sample_frames(many, 14.0, 1.0, 160)  # two targets past the end of the stream
    seen = _stretches(monkeypatch)
    got = dec.sample_frames(many, 14.0, 1.0, 160, segments=2)
    assert len(seen) == 2
    assert np.array_equal(got.timestamps, want.timestamps) and np.array_equal(got.frames, want.frames)


def test_a_file_with_one_keyframe_is_decoded_in_one_pass(clips, monkeypatch):
    _, one = clips
    want = dec.sample_frames(one, 6.0, 2.0, 160)
    seen = _stretches(monkeypatch)
    got = dec.sample_frames(one, 6.0, 2.0, 160, segments=2)
    assert seen == []
    assert np.array_equal(got.timestamps, want.timestamps) and np.array_equal(got.frames, want.frames)


def test_a_failing_stretch_falls_back_to_one_pass(clips, monkeypatch):
    many, _ = clips
    want = dec.sample_frames(many, 12.0, 1.0, 160)

    def broken(self, path, key_pts, *a):
        if key_pts is not None:
            raise dec.DecodeError(path, "simulated")
        return real(self, path, key_pts, *a)

    real = dec.PyAVDecoder._stretch
    monkeypatch.setattr(dec.PyAVDecoder, "_stretch", broken)
    got = dec.sample_frames(many, 12.0, 1.0, 160, segments=2)
    assert np.array_equal(got.timestamps, want.timestamps) and np.array_equal(got.frames, want.frames)


def test_query_threads_follow_omp(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert query_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert query_threads() >= 1


def _assert_same(a, b) -> None:
    for name in ("timestamps", "phash", "phash_flip", "embeddings", "quality", "descriptor"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and np.array_equal(x, y), name
    assert a.audio.status == b.audio.status == "ok"
    for name in ("fingerprint", "mfcc_mean", "mfcc_std", "rms"):
        assert np.array_equal(getattr(a.audio, name), getattr(b.audio, name)), name


def test_a_query_has_the_features_an_index_run_stores(clips, tmp_path, monkeypatch):
    many, _ = clips
    cfg = AstradupConfig()
    store = tmp_path / "s.duckdb"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as in a Dask worker
    assert run_index(many.parent, store, cfg, eager=True, progress=False).n_indexed == 1
    one_thread = as_stored(extract_video(str(many), cfg))  # embeddings kept to the store's decimals
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("astradup.execution.query.query_threads", lambda: 3)  # split even on a small machine
    seen = _stretches(monkeypatch)
    query = extract_query(many, cfg)
    assert len(seen) == 3
    _assert_same(query, one_thread)
    assert query.info == one_thread.info and query.decoder == one_thread.decoder
    with Store(store, read_only=True) as st:
        (stored,) = st.load_features().values()
    for name in ("timestamps", "phash", "phash_flip", "embeddings", "quality", "descriptor"):
        x, y = getattr(query, name), getattr(stored, name)
        assert x.shape == y.shape and np.array_equal(x.astype(y.dtype), y), name
    assert np.array_equal(query.audio.fingerprint, stored.audio.fingerprint)
