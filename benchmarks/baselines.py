"""The peers AstraDup is measured against in ``benchmarks/accuracy.py``, each scoring every pair.

vPDQ-style (pdqhash)
    pdqhash of every frame kept at 1 fps (PyAV decode), a bag of frame hashes per video; a frame
    matches when a frame of the other video is within Hamming distance 31; the pair score is the
    mean of the two videos' matched-frame shares. No quality filter.

Meta vpdq 0.2.5 (PyPI ``vpdq``, Meta's ThreatExchange)
    Its own hashing: ``vpdq.computeHash(path, seconds_per_hash=1)`` (libav decode, one PDQ hash
    and quality score per second). Its own matching, as ``matchTwoHashBrute`` in the package's
    C++ (``cpp/vpdq/cpp/hashing/matchTwoHash.cpp``): frames with quality below the quality
    tolerance (50) are dropped; a frame matches when a kept frame of the other video is at
    Hamming distance *below* the distance tolerance (31); the query and compared match
    percentages are the shares of each video's kept frames that match. Its README declares a
    match when the compared percentage reaches P_c with the query threshold P_q = 0 %: on
    unordered pairs either video can be the compared one, so the pair score is the larger of the
    two percentages (0..1), and the fitted threshold plays P_c. A video with no frame of quality
    50 or more matches nothing (score 0).

Install: ``make bench-deps`` (Debian's libav*-dev, pkg-config, cmake, g++, then ``pip install
.[bench]``, which builds vpdq from source).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

VPDQ_DISTANCE = 31  # vpdq's distance tolerance: a match is a Hamming distance below it
VPDQ_QUALITY = 50  # vpdq's quality tolerance: frames below it are not compared
PDQ_STYLE_RADIUS = 31  # the vPDQ-style baseline: a match is a Hamming distance at most this


class Frames:
    """One video's frame hashes: ``hashes`` (n, 32) uint8 (256 bits each), ``quality`` (n,)."""

    def __init__(self, hashes: np.ndarray, quality: np.ndarray) -> None:
        self.hashes = np.asarray(hashes, dtype=np.uint8).reshape(-1, 32)
        self.quality = np.asarray(quality, dtype=np.int32).reshape(-1)

    def __len__(self) -> int:
        return len(self.hashes)

    def kept(self, min_quality: int) -> np.ndarray:
        return self.hashes[self.quality >= min_quality]


def pdqhash_frames(paths: list[Path]) -> dict[str, Frames]:
    """vPDQ-style hashing: pdqhash of the first frame of every second (PyAV), by file name."""
    import av
    import pdqhash

    out = {}
    for p in paths:
        hs, qs = [], []
        try:
            with av.open(str(p)) as c:
                vs = c.streams.video[0]
                vs.thread_type = "AUTO"
                nxt = 0.0
                for fr in c.decode(vs):
                    t = float(fr.pts * vs.time_base) if fr.pts is not None else nxt
                    if t + 1e-6 >= nxt:
                        bits, q = pdqhash.compute(fr.to_ndarray(format="rgb24"))
                        hs.append(np.packbits(bits.astype(bool)))
                        qs.append(int(q))
                        nxt += 1.0
        except Exception as exc:  # noqa: BLE001 - the baseline skips what it cannot read
            log.warning("vPDQ-style baseline: %s: %s", p.name, exc)
        out[p.name] = Frames(np.array(hs, dtype=np.uint8), np.array(qs))
    return out


def vpdq_frames(paths: list[Path], seconds_per_hash: float = 1.0) -> dict[str, Frames]:
    """Meta vpdq's own hashing (``vpdq.computeHash``), by file name."""
    import vpdq

    out = {}
    for p in paths:
        try:
            feats = vpdq.computeHash(str(p), seconds_per_hash=seconds_per_hash, thread_count=1)
        except Exception as exc:  # noqa: BLE001 - the baseline skips what it cannot read
            log.warning("vpdq: %s: %s", p.name, exc)
            feats = []
        hashes = np.array([np.frombuffer(bytes.fromhex(f.hex), np.uint8) for f in feats])
        out[p.name] = Frames(hashes.reshape(-1, 32), np.array([f.quality for f in feats]))
    return out


def match_shares(
    frames: dict[str, Frames], max_distance: int, min_quality: int = 0
) -> tuple[list[str], np.ndarray]:
    """``share[i, j]``: the fraction of video i's kept frames with a kept frame of video j within
    ``max_distance`` bits (inclusive). Videos with no kept frame get a row and column of zeros."""
    names = sorted(frames)
    kept = [frames[n].kept(min_quality) for n in names]
    counts = np.array([len(k) for k in kept])
    share = np.zeros((len(names), len(names)))
    have = np.flatnonzero(counts)
    if not len(have):
        return names, share
    allh = np.concatenate([kept[i] for i in have])
    starts = np.concatenate([[0], np.cumsum(counts[have])[:-1]])
    matched = np.zeros((len(allh), len(have)), dtype=bool)
    for s in range(0, len(allh), 512):
        d = np.bitwise_count(allh[s : s + 512, None, :] ^ allh[None, :, :]).sum(axis=2)
        matched[s : s + 512] = np.logical_or.reduceat(d <= max_distance, starts, axis=1)
    per_video = np.add.reduceat(matched, starts, axis=0) / counts[have][:, None]
    share[np.ix_(have, have)] = per_video
    return names, share


def _pairs(names: list[str], score: np.ndarray, **extra: np.ndarray) -> pd.DataFrame:
    i, j = np.triu_indices(len(names), k=1)
    cols = {"a": np.array(names)[i], "b": np.array(names)[j], "score": score[i, j]}
    return pd.DataFrame(cols | {k: v[i, j] for k, v in extra.items()})


def pdq_style_pairs(frames: dict[str, Frames], radius: int = PDQ_STYLE_RADIUS) -> pd.DataFrame:
    """Every pair with its vPDQ-style score: the mean of both matched-frame shares."""
    names, share = match_shares(frames, radius)
    return _pairs(names, (share + share.T) / 2)


def vpdq_pairs(
    frames: dict[str, Frames],
    distance_tolerance: int = VPDQ_DISTANCE,
    quality_tolerance: int = VPDQ_QUALITY,
) -> pd.DataFrame:
    """Every pair with vpdq's match percentages (``a_match``: share of a's kept frames matched in
    b; ``b_match`` the other way, both 0..1) and its score, the larger of the two."""
    names, share = match_shares(frames, distance_tolerance - 1, quality_tolerance)
    return _pairs(names, np.maximum(share, share.T), a_match=share, b_match=share.T)


def fit_threshold(pairs: pd.DataFrame, truth: pd.DataFrame, videos: list[str]) -> float:
    """The score threshold with the best F1 (pairs at or above it called duplicates)."""
    from astradup.evaluation import evaluate

    best, best_f1 = 0.5, -1.0
    for th in np.linspace(0.05, 0.95, 37):
        p = pairs.assign(label=np.where(pairs["score"] >= th, "near", "different"))
        f1 = evaluate(truth, p, videos=videos).metrics["f1"]
        if f1 > best_f1:
            best, best_f1 = th, f1
    return float(best)


def label(pairs: pd.DataFrame, threshold: float) -> pd.DataFrame:
    return pairs.assign(label=np.where(pairs["score"] >= threshold, "near", "different"))
