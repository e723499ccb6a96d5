"""benchmarks/baselines.py: the peers' matching checked against a brute-force oracle, and Meta's
vpdq run on real (tiny, generated) clips."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from benchmarks.baselines import (
    Frames,
    match_shares,
    pdq_style_pairs,
    pdqhash_frames,
    vpdq_frames,
    vpdq_pairs,
)
from tests.conftest import ffmpeg, make_video


def _random_frames(rng: np.random.Generator, n_videos: int = 6) -> dict[str, Frames]:
    base = rng.integers(0, 256, (4, 32), dtype=np.uint8)
    out = {}
    for v in range(n_videos):
        n = int(rng.integers(0, 6))
        picks = base[rng.integers(0, 4, n)].copy()
        # flip a random number of bits (0..60) in each hash, so distances straddle 31
        for h in picks:
            for bit in rng.choice(256, int(rng.integers(0, 60)), replace=False):
                h[bit // 8] ^= np.uint8(1 << (bit % 8))
        out[f"v{v}"] = Frames(picks, rng.integers(0, 101, n))
    return out


def _brute(frames, strict_below: int, min_quality: int):
    """vpdq's matchTwoHashBrute, frame by frame: shares of kept frames with a partner."""
    names = sorted(frames)
    share = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        qa = [h for h, q in zip(frames[a].hashes, frames[a].quality) if q >= min_quality]
        for j, b in enumerate(names):
            qb = [h for h, q in zip(frames[b].hashes, frames[b].quality) if q >= min_quality]
            if not qa or not qb:
                continue
            hits = 0
            for h in qa:
                dist = [int(np.unpackbits(h ^ g).sum()) for g in qb]
                hits += any(d < strict_below for d in dist)
            share[i, j] = hits / len(qa)
    return names, share


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_match_shares_equal_the_brute_force_oracle(seed):
    frames = _random_frames(np.random.default_rng(seed))
    for tol, quality in ((31, 50), (31, 0), (10, 0)):
        names, share = match_shares(frames, tol - 1, quality)
        _, oracle = _brute(frames, tol, quality)
        np.testing.assert_allclose(share, oracle)
    pairs = vpdq_pairs(frames)
    _, oracle = _brute(frames, 31, 50)
    for a, b, s in zip(pairs.a, pairs.b, pairs.score):
        i, j = names.index(a), names.index(b)
        assert s == pytest.approx(max(oracle[i, j], oracle[j, i]))
    style = pdq_style_pairs(frames)
    assert style.score.between(0, 1).all() and len(style) == len(names) * (len(names) - 1) // 2


def test_vpdq_distance_is_strict_and_low_quality_frames_are_dropped():
    h = np.zeros((1, 32), np.uint8)
    far = h.copy()
    far[0, :3] = 0xFF
    far[0, 3] = 0b1111111  # 31 bits set: distance 31
    near = far.copy()
    near[0, 3] = 0b111111  # distance 30
    frames = {"a": Frames(h, [100]), "b": Frames(far, [100]), "c": Frames(near, [100])}
    got = {(a, b): s for a, b, s in zip(*vpdq_pairs(frames)[["a", "b", "score"]].T.values)}
    assert got[("a", "b")] == 0.0 and got[("a", "c")] == 1.0  # below 31 matches, 31 does not
    style = {(a, b): s for a, b, s in zip(*pdq_style_pairs(frames)[["a", "b", "score"]].T.values)}
    assert style[("a", "b")] == 1.0  # the vPDQ-style baseline takes distance <= 31
    frames["c"] = Frames(near, [49])  # below vpdq's quality tolerance: never compared
    got = {(a, b): s for a, b, s in zip(*vpdq_pairs(frames)[["a", "b", "score"]].T.values)}
    assert got[("a", "c")] == 0.0


def test_meta_vpdq_on_two_tiny_clips(tmp_path):
    pytest.importorskip("vpdq", reason="Meta's vpdq is not installed (make bench-deps)")
    a = make_video(tmp_path / "a.mp4", "mandelbrot", seconds=4, w=128, h=96, seed=1)
    copy = tmp_path / "copy.mp4"  # a resized, re-encoded copy of a
    cmd = [ffmpeg(), "-v", "error", "-i", str(a), "-vf", "scale=192:144", "-crf", "30", str(copy)]
    subprocess.run(cmd, check=True)
    other = make_video(tmp_path / "other.mp4", "life", seconds=4, w=128, h=96, seed=7)
    frames = vpdq_frames([a, copy, other])
    assert all(len(f) == 4 for f in frames.values())  # one hash per second
    assert all((f.quality >= 0).all() and (f.quality <= 100).all() for f in frames.values())
    pairs = vpdq_pairs(frames).set_index(["a", "b"])
    assert pairs.loc[("a.mp4", "copy.mp4"), "score"] >= 0.5
    assert pairs.loc[("a.mp4", "other.mp4"), "score"] <= 0.25
    style = pdq_style_pairs(pdqhash_frames([a, copy, other])).set_index(["a", "b"])
    assert style.loc[("a.mp4", "copy.mp4"), "score"] > style.loc[("a.mp4", "other.mp4"), "score"]


def test_frame_hashes_are_cached_for_a_rerun(tmp_path):
    from benchmarks.accuracy import _cached_frames

    frames = _random_frames(np.random.default_rng(3))
    paths = [tmp_path / n for n in sorted(frames)]
    calls = []

    def hashing(ps):
        calls.append(ps)
        return frames

    first = _cached_frames(tmp_path / "f.npz", hashing, paths)
    again = _cached_frames(tmp_path / "f.npz", hashing, paths)
    assert len(calls) == 1
    for n in frames:
        np.testing.assert_array_equal(again[n].hashes, first[n].hashes)
        np.testing.assert_array_equal(again[n].quality, first[n].quality)
    _cached_frames(tmp_path / "f.npz", hashing, paths[:-1])  # another set: hashed again
    assert len(calls) == 2
