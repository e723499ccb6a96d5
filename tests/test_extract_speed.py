"""The short-clip speed-ups give the same features as the code they replaced.

Each restructured step is compared with the way it was done before (kept here as a reference):
swscale context per frame and FFmpeg's own decoder threads; the Python loops of the inset
detector; ``frames.max(axis=3)`` for the border box; and a whole video extracted both ways.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import astradup.features.preprocess as pp
import astradup.media.decode as dec
from astradup.config import AstradupConfig
from astradup.execution.extract import extract_video
from tests.conftest import make_video

# -- the way it was done before -------------------------------------------------------------------


def _old_longest_runs(mask: np.ndarray, gap: int = 3) -> np.ndarray:
    out = np.zeros(mask.shape[0], dtype=np.int64)
    for i, line in enumerate(mask):
        idx = np.flatnonzero(line)
        if len(idx):
            breaks = np.flatnonzero(np.diff(idx) > gap + 1)
            starts = np.concatenate([[idx[0]], idx[breaks + 1]])
            ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
            out[i] = int((ends - starts).max())
    return out


def _old_edges(step: np.ndarray, axis: int) -> np.ndarray:
    n = step.shape[axis]
    pad = np.pad(step, [(3, 3) if a == axis else (0, 0) for a in range(2)], mode="edge")
    near = np.maximum(np.take(pad, np.arange(n), axis=axis), np.take(pad, np.arange(6, 6 + n), axis=axis))
    return (step > pp.INSET_EDGE) & (step > pp.INSET_CONTRAST * np.maximum(near, 1.0))


def _old_inset_box(frames: np.ndarray, monkeypatch) -> tuple[int, int, int, int] | None:
    monkeypatch.setattr(pp, "_longest_runs", _old_longest_runs)
    try:
        f = np.asarray(frames, dtype=np.float32)
        if f.ndim != 4 or len(f) < 2:
            return None
        g = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
        sx, sy = np.abs(np.diff(g, axis=2)), np.abs(np.diff(g, axis=1))
        box = pp._box_from_edges(pp._dilate(_old_edges(sx.mean(axis=0), 1).T), pp._dilate(_old_edges(sy.mean(axis=0), 0)), g)
        if box is None:
            per_x = np.mean([pp._dilate(_old_edges(e, 1).T) for e in sx], axis=0) >= pp.INSET_FRAMES
            per_y = np.mean([pp._dilate(_old_edges(e, 0)) for e in sy], axis=0) >= pp.INSET_FRAMES
            box = pp._box_from_edges(per_x, per_y, g)
        return box
    finally:
        monkeypatch.undo()


def _old_way(monkeypatch) -> None:
    """Decode as before: a new swscale context per frame, FFmpeg's default decoder threads."""
    probe_mod = importlib.import_module("astradup.media.probe")  # the package's `probe` names the function
    monkeypatch.setattr(dec._Scaler, "__call__", lambda self, frame: frame.to_ndarray(width=self.size, height=self.size, format="rgb24"))
    monkeypatch.setattr(probe_mod, "decoder_threads", lambda: 0)


# -- inset detector and border box ----------------------------------------------------------------


def test_longest_runs_equal_the_loop():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        m = rng.random((int(rng.integers(0, 6)), int(rng.integers(0, 40)))) < rng.random()
        gap = int(rng.integers(0, 6))
        got, want = pp._longest_runs(m, gap), _old_longest_runs(m, gap)
        assert got.dtype == want.dtype and np.array_equal(got, want), (m, gap)


def _busy_pip(seed: int, n: int = 10, side: int = 160) -> np.ndarray:
    """A picture-in-picture whose surroundings are busy noise (the per-frame edge pass decides)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    top, bottom, left, right = 30 + seed, 110 + seed, 20, 120
    small = (rng.random((n, 4, 4, 3)) * 255).astype(np.uint8)
    frames[:, top:bottom, left:right] = np.repeat(np.repeat(small, 20, axis=1), 25, axis=2)
    return frames


def test_inset_box_and_border_box_equal_the_old_code(monkeypatch):
    from tests.test_inset import _pip, _smooth

    rng = np.random.default_rng(3)
    stacks = [_pip(s, b)[0] for s, b in [(0, (10, 80, 88, 152)), (1, (57, 126, 57, 127)), (5, (20, 120, 30, 130))]]
    stacks += [_busy_pip(s) for s in range(3)]
    stacks += [_smooth(rng, 8, 160, 160), np.zeros((8, 160, 160, 3), np.uint8)]
    boxed = _smooth(rng, 6, 160, 160)
    boxed[:, :16] = 0
    boxed[:, -16:] = 0
    stacks.append(boxed)
    found = 0
    for frames in stacks:
        want = _old_inset_box(frames, monkeypatch)
        assert pp._edge_box(pp.grey(frames)) == want  # the first two looks
        found += want is not None
    assert found >= 4  # the comparison covers boxes found by both passes, not only None


def test_border_box_brightest_channel_equals_max():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, 32, 48, 3), dtype=np.uint8)
    frames[:, :4] = rng.integers(0, 20, (5, 4, 48, 3), dtype=np.uint8)  # a dark bar
    want = frames.max(axis=3)
    got = np.maximum(np.maximum(frames[..., 0], frames[..., 1]), frames[..., 2])
    assert np.array_equal(got, want)
    assert pp.border_box(frames) == (4, 32, 0, 48)


# -- decoding and a whole video -------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 640x360 clip with B-frames and sound: the short-clip benchmark's kind of file."""
    return make_video(tmp_path_factory.mktemp("speed") / "clip.mp4", "mandelbrot", seconds=7.0, w=640, h=360, r=25,
                      seed=2, extra=["-bf", "2"])


@pytest.mark.parametrize("omp", ["1", None])
def test_decoding_gives_the_old_frames(clip, monkeypatch, omp):
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    new = dec.sample_frames(clip, 7.0, 4.0, 160)
    kf_new = dec.sample_keyframes(clip, 7.0, 160)
    with monkeypatch.context() as m:
        _old_way(m)
        old = dec.sample_frames(clip, 7.0, 4.0, 160)
        kf_old = dec.sample_keyframes(clip, 7.0, 160)
    assert len(new) == 28
    assert np.array_equal(new.timestamps, old.timestamps) and np.array_equal(new.frames, old.frames)
    assert (kf_new is None) == (kf_old is None)
    if kf_new is not None:
        assert np.array_equal(kf_new.frames, kf_old.frames)


def test_decoder_threads_follow_omp(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert dec.decoder_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert dec.decoder_threads() == 0
    monkeypatch.setenv("OMP_NUM_THREADS", "x")
    assert dec.decoder_threads() == 0


def test_a_video_extracted_the_old_and_the_new_way_has_equal_features(clip, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as in a Dask worker: one decoder thread now
    cfg = AstradupConfig()
    new = extract_video(str(clip), cfg)
    with monkeypatch.context() as m:
        _old_way(m)
        old = extract_video(str(clip), cfg)
    for name in ("timestamps", "phash", "phash_flip", "embeddings", "quality", "descriptor"):
        assert np.array_equal(getattr(new, name), getattr(old, name)), name
    assert new.info == old.info and new.decoder == old.decoder
    assert new.audio.status == old.audio.status == "ok"
    for name in ("fingerprint", "mfcc_mean", "mfcc_std", "rms"):
        assert np.array_equal(getattr(new.audio, name), getattr(old.audio, name)), name


def test_local_workers_keep_malloc_defaults_and_one_thread():
    from astradup.execution.cluster import local_cluster_config

    cfg = local_cluster_config()
    env = cfg["distributed.nanny.pre-spawn-environ"]
    assert "MALLOC_TRIM_THRESHOLD_" not in env
    assert str(env.get("OMP_NUM_THREADS")) == "1"
    assert cfg["distributed.worker.profile.interval"] == "100ms"


def test_local_cluster_workers_get_the_settings():
    import os

    import dask

    from astradup.execution.cluster import dask_client

    def seen():
        return (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS"),
                dask.config.get("distributed.worker.profile.interval"),
                dask.config.get("distributed.worker.memory.monitor-interval"))

    with dask_client(workers=1) as client:
        got = list(client.run(seen).values())
    assert got == [(None, "1", "100ms", "1s")]
