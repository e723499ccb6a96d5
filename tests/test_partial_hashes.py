"""Hash evidence for partial copies: the whole frame's hashes where the content box cuts, and
frames out of phase with the source.

A stretch of a letterboxed video quoted inside other footage (title cards, a longer video) is cut
to another box than its source, and a clip cut at an arbitrary moment is sampled between the
source's frames; both used to leave a true copy's hashes at chance.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace

import numpy as np
import pytest

from astradup.config import AstradupConfig
from astradup.features.video import VideoFeatures
from astradup.scoring.similarity import (
    common_rate,
    hash_agreement_at,
    hash_agreement_matrix,
    path_hash_agreement,
    visual_similarity,
)
from tests.conftest import SOURCES, ffmpeg


def _features(codes: np.ndarray, flip: np.ndarray, fps: float, full: tuple | None = None) -> VideoFeatures:
    n = len(codes)
    return VideoFeatures(path="/v.mp4", info={"duration": n / fps}, timestamps=(np.arange(n) + 0.5) / fps,
                         phash=codes, phash_flip=flip, content_box=None if full is None else (0.1, 0.9, 0.0, 1.0),
                         phash_full=None if full is None else full[0], phash_full_flip=None if full is None else full[1])


def _codes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 8), dtype=np.uint8)


def test_whole_frame_hashes_count_only_where_one_box_cuts():
    """Oracle: the agreement is the better of the boxes' and the whole frames' where exactly one
    side's box cuts, and the boxes' alone where neither or both do."""
    rng = np.random.default_rng(0)
    crop, whole, other = _codes(rng, 6), _codes(rng, 6), _codes(rng, 6)
    boxed = _features(crop, _codes(rng, 6), 2.0, full=(whole, _codes(rng, 6)))
    quote = _features(whole.copy(), _codes(rng, 6), 2.0)  # the whole frames, as a trailer shows them
    agree = hash_agreement_matrix(boxed, quote)
    assert np.allclose(np.diag(agree), 1.0)
    plain = hash_agreement_matrix(replace(boxed, phash_full=None, phash_full_flip=None), quote)
    assert np.diag(plain).max() < 0.8  # the boxes' hashes alone: chance
    assert (agree >= plain).all()
    rows, cols = np.array([0, 5, 2, 2]), np.array([0, 1, 2, 4])  # chosen pairs: the matrix's cells
    assert np.array_equal(hash_agreement_at(boxed, quote, rows, cols), agree[rows, cols])
    # both boxes cut: only the boxes are compared (two letterboxed videos would agree on their bars)
    boxed2 = _features(other, _codes(rng, 6), 2.0, full=(whole.copy(), _codes(rng, 6)))
    assert np.array_equal(hash_agreement_matrix(boxed, boxed2),
                          hash_agreement_matrix(replace(boxed, phash_full=None, phash_full_flip=None),
                                                replace(boxed2, phash_full=None, phash_full_flip=None)))


def test_path_agreement_finds_the_frame_thinning_set_aside():
    """A clip sampled twice as fast as its source, half a step out of phase: the frames thinning
    keeps miss the source's moments, the ones it sets aside hit them."""
    rng = np.random.default_rng(1)
    src = _codes(rng, 8)
    clip_codes = np.empty((16, 8), np.uint8)
    clip_codes[0::2] = _codes(rng, 8)  # kept by thinning: between the source's moments
    clip_codes[1::2] = src  # set aside: the source's moments
    a0, b0 = _features(clip_codes, _codes(rng, 16), 4.0), _features(src, _codes(rng, 8), 2.0)
    a, b = common_rate(a0, b0)
    assert a.n_frames == 8 and b is b0
    path = np.column_stack([np.arange(8), np.arange(8)])
    thinned = hash_agreement_matrix(a, b)[path[:, 0], path[:, 1]]
    best = path_hash_agreement(a0, b0, a, b, path)
    assert thinned.max() < 0.8 and np.allclose(best, 1.0)
    assert (best >= thinned).all()
    # four times the rate, 13 frames (thinned to 4: frames 0, 4, 8, 12): the source's moments
    # are two frames on, at the edge of the half step
    clip4 = _codes(rng, 13)
    src4 = clip4[[2, 6, 10]].copy()
    a4, b4 = _features(clip4, _codes(rng, 13), 4.0), _features(src4, _codes(rng, 3), 1.0)
    a4t, b4t = common_rate(a4, b4)
    assert a4t.n_frames == 4 and b4t is b4
    path3 = np.column_stack([np.arange(3), np.arange(3)])
    assert np.allclose(path_hash_agreement(a4, b4, a4t, b4t, path3), 1.0)
    # nothing thinned: the plain agreement
    assert np.array_equal(path_hash_agreement(b0, b0, b0, b0, path), hash_agreement_matrix(b0, b0)[path[:, 0], path[:, 1]])


def _run(cmd: list[str]) -> None:
    subprocess.run([ffmpeg(), "-v", "error", "-y", *cmd], check=True, capture_output=True)


@pytest.fixture(scope="module")
def letterboxed_and_quote(tmp_path_factory):
    """A letterboxed source (bars top and bottom) and a longer video holding 2.5 s of it between
    stretches of other full-frame footage (so that video's box is its whole frame)."""
    d = tmp_path_factory.mktemp("quote")
    src, trailer = d / "src.mp4", d / "trailer.mp4"
    pic = SOURCES["testsrc2"].format(w=96, h=48, r=12)
    _run(["-f", "lavfi", "-i", pic, "-t", "6", "-vf", "pad=96:72:0:12:black,format=yuv420p",
          "-c:v", "libx264", "-preset", "ultrafast", "-g", "24", str(src)])
    host = SOURCES["life"].format(w=96, h=72, r=12, seed=3)
    _run(["-i", str(src), "-f", "lavfi", "-i", host,
          "-filter_complex", "[1:v]trim=end=3,setpts=PTS-STARTPTS,split[h0][h1];[h0]trim=end=1.5[c0];"
          "[h1]trim=start=1.5,setpts=PTS-STARTPTS[c1];[0:v]trim=start=2:end=4.5,setpts=PTS-STARTPTS[q];"
          "[c0][q][c1]concat=n=3:v=1:a=0,format=yuv420p[v]",
          "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", str(trailer)])
    return src, trailer


def test_a_letterboxed_source_and_its_quote_agree_on_the_whole_frames(letterboxed_and_quote):
    from astradup.execution.extract import extract_video

    cfg = AstradupConfig()
    src, trailer = (extract_video(str(p), cfg) for p in letterboxed_and_quote)
    assert isinstance(src, VideoFeatures) and isinstance(trailer, VideoFeatures)
    assert src.content_box is not None and src.content_box[0] > 0.1  # the bars are cut ...
    assert src.phash_full is not None and src.phash_full.shape == src.phash.shape  # ... and the whole kept
    assert trailer.phash_full is None  # the other footage fills the bars: nothing to cut
    vis = visual_similarity(src, trailer, cfg.match, cfg.fusion)
    assert vis.alignment is not None
    assert vis.evidence["hash_hit"] >= 0.8
    bare = visual_similarity(replace(src, phash_full=None, phash_full_flip=None), trailer, cfg.match, cfg.fusion)
    assert bare.evidence["hash_path"] < vis.evidence["hash_path"] - 0.15


def test_a_stretch_measured_a_frame_short_of_min_segment_is_not_too_short():
    """A one-second quote sampled twice measures 0.96 s between the decoded frames' times: it is as
    long as ``match.min_segment`` (1 s) within the frame grid; a stretch of 0.9 s is not."""
    from astradup.scoring.learned import held_back_reasons
    from astradup.scoring.similarity import SEGMENT_SLACK, too_short

    m = AstradupConfig().match
    seg = np.array([0.96, 1.0 - SEGMENT_SLACK, 0.9, 0.5, 3.0])
    assert too_short(seg, np.full(5, 8.0), m).tolist() == [False, False, True, True, False]
    # a video under 1.25 s: 80 % of it is the bar
    assert too_short(np.array([0.7, 0.78]), np.array([1.0, 1.0]), m).tolist() == [True, False]
    ev = {"margin": np.full(5, 0.5), "standout": np.full(5, 0.1)}
    why = held_back_reasons(seg, np.full(5, 8.0), ev, m)
    assert [bool(w) for w in why] == [False, False, True, True, False]
