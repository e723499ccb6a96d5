"""Per-modality similarities between two videos, each in [0, 1] or ``None`` when missing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from astradup.config import FusionConfig, MatchConfig
from astradup.features.audio import ITEM_SECONDS, AudioFeatures
from astradup.features.metadata import Metadata
from astradup.features.phash import hamming_matrix
from astradup.features.video import VideoFeatures
from astradup.scoring.alignment import Alignment, align_any


@dataclass
class VisualResult:
    score: float
    alignment: Alignment | None
    path_sim: float
    hash_agreement: float
    coverage_a: float
    coverage_b: float
    background: float


def hash_agreement_matrix(a: VideoFeatures, b: VideoFeatures) -> np.ndarray:
    """1 - Hamming/bits between frames, taking the better of b against a and a-mirrored."""
    bits = a.phash.shape[1] * 8
    ham = np.minimum(hamming_matrix(a.phash, b.phash), hamming_matrix(a.phash_flip, b.phash))
    return 1.0 - ham / bits


def informative_hashes(codes: np.ndarray, slack: float = 0.25) -> np.ndarray:
    """True for hashes of frames with structure. pHash thresholds at the median, so a real frame
    sets about half of its bits; flat frames (black, fades, solid colour) set far fewer and would
    collide across unrelated videos."""
    bits = codes.shape[1] * 8 if codes.ndim == 2 and codes.shape[1] else 1
    ones = np.bitwise_count(codes).sum(axis=1) if len(codes) else np.zeros(0)
    return np.abs(ones / bits - 0.5) <= slack


def hash_similarity(a: VideoFeatures, b: VideoFeatures) -> np.ndarray:
    """Hash-based frame similarity rescaled so unrelated frames (~50 % agreement) score 0 and
    identical ones 1; pairs involving an uninformative (flat) frame score 0."""
    s = np.clip(2.0 * hash_agreement_matrix(a, b) - 1.0, 0.0, 1.0)
    ok = informative_hashes(a.phash)[:, None] & informative_hashes(b.phash)[None, :]
    return np.where(ok, s, 0.0)


def frame_similarity(a: VideoFeatures, b: VideoFeatures) -> np.ndarray:
    """Frame-to-frame similarity: the better of the embedding cosine and the hash similarity.

    Embeddings carry crops, overlays and mirror images; hashes carry photometric changes (grey,
    colour, blur, noise, low bit rate) that move ImageNet features. Without embeddings, hashes only.
    """
    hs = hash_similarity(a, b)
    if a.embeddings is not None and b.embeddings is not None and len(a.embeddings) and len(b.embeddings):
        return np.maximum(a.embeddings @ b.embeddings.T, hs)
    return hs


BAND_EPS = 1e-6  # "below a band" means this far under its lower bound
UNALIGNED_CAP = 0.5  # most a pair with no aligned path can score (and never "similar")


def band_knots(f: FusionConfig) -> tuple[float, float, float]:
    """The visual scores the ``q_*`` knots map to: the config's similar, near and exact bands."""
    return f.similar, f.near, f.exact


def flat_cap(f: FusionConfig, margin: float = 0.10) -> float:
    """Visual ceiling of a path that does not stand out from its background: half a soundtrack
    margin under "near", so pictures alone cannot make it a copy but an agreeing soundtrack can
    (fusion caps the score at visual + ``margin``)."""
    return max(0.0, f.near - margin / 2)


def visual_from_stats(
    path_sim: ArrayLike,
    background: ArrayLike,
    hash_agree: ArrayLike,
    coverage_a: ArrayLike,
    coverage_b: ArrayLike,
    segment: ArrayLike,
    min_duration: ArrayLike,
    aligned: ArrayLike,
    m: MatchConfig,
    bands: FusionConfig | None = None,
) -> np.ndarray:
    """The visual score from alignment statistics (vectorised; used by matching and tuning).

    Every band this function maps onto or caps at is read from ``bands`` (the fusion config), so a
    tuned band moves the visual score with it. The aligned path's mean similarity maps through the
    ``q_*`` knots to 0 / similar / near / exact / 1.0 (piecewise linear). Caps: half a soundtrack
    margin below "near" when the path does not stand out from the matrix's background by
    ``distinct_margin`` (``partial_margin`` for a path covering only part of a video, where a
    stretch of repetitive content in two segments of one long recording is the usual impostor:
    other moments look the same, so only audio agreement can make it a copy); below "near" when
    it is shorter than ``min_segment``; below "exact" unless the hashes agree and both videos are
    covered; at most 0.5 (and below "similar") when nothing aligned (``aligned`` false;
    ``path_sim`` is then the best single frame pair).
    """
    f = bands or FusionConfig()
    sim_b, near_b, exact_b = band_knots(f)
    q = np.asarray(path_sim, dtype=np.float64)
    # knots and bands may coincide (e.g. near == exact); np.interp needs increasing x only
    score = np.interp(q, [m.q_low, m.q_similar, m.q_near, m.q_exact, 1.0], [0.0, sim_b, near_b, exact_b, 1.0])
    short = np.asarray(segment) < np.minimum(m.min_segment, 0.8 * np.asarray(min_duration))
    partial = np.minimum(coverage_a, coverage_b) < m.partial_coverage
    flat = q - np.asarray(background) < np.where(partial, m.partial_margin, m.distinct_margin)
    score = np.where(short, np.minimum(score, near_b - BAND_EPS), score)
    # a path no better than the rest of the matrix: static or repetitive content, where other
    # moments of the same material look the same; pictures alone cannot call it a copy
    score = np.where(flat, np.minimum(score, flat_cap(f)), score)
    exact_ok = (np.asarray(hash_agree) >= m.exact_hash) & (np.minimum(coverage_a, coverage_b) >= m.exact_coverage)
    score = np.where(exact_ok, score, np.minimum(score, exact_b - BAND_EPS))
    unaligned = min(UNALIGNED_CAP, sim_b - BAND_EPS)
    return np.clip(np.where(np.asarray(aligned, dtype=bool), score, np.minimum(score, unaligned)), 0.0, 1.0)


def _half_step(ts: np.ndarray) -> float:
    return float(np.median(np.diff(ts)) / 2) if len(ts) > 1 else 0.5


def visual_similarity(a: VideoFeatures, b: VideoFeatures, m: MatchConfig, bands: FusionConfig | None = None) -> VisualResult:
    """Align the two videos and turn the aligned path into a visual score (see
    :func:`visual_from_stats`; ``bands`` is the fusion config whose bands it maps onto)."""
    sim = frame_similarity(a, b)
    ha, hb = _half_step(a.timestamps), _half_step(b.timestamps)
    al = align_any(sim, a.timestamps, b.timestamps, m.frame_threshold, m.gap, ha, hb, a.duration or None, b.duration or None)
    min_dur = min(a.duration, b.duration)
    if al is None:
        bg = float(np.median(sim)) if sim.size else 0.0
        best = float(sim.max()) if sim.size else 0.0
        score = visual_from_stats(best, bg, 0.0, 0.0, 0.0, 0.0, min_dur, False, m, bands)
        return VisualResult(float(score), None, best, 0.0, 0.0, 0.0, bg)
    agree = hash_agreement_matrix(a, b)[al.path[:, 0], al.path[:, 1]]
    hash_agree = float(agree.mean())
    cov_a = min((al.a_end - al.a_start) / max(a.duration, 1e-9), 1.0)
    cov_b = min((al.b_end - al.b_start) / max(b.duration, 1e-9), 1.0)
    seg = min(al.a_end - al.a_start, al.b_end - al.b_start)
    score = visual_from_stats(al.path_sim, al.background, hash_agree, cov_a, cov_b, seg, min_dur, True, m, bands)
    return VisualResult(float(score), al, al.path_sim, hash_agree, cov_a, cov_b, al.background)


def audio_similarity(a: AudioFeatures | None, b: AudioFeatures | None, window: int = 40, min_items: int = 8) -> tuple[float | None, float | None]:
    """Chromaprint similarity by offset search; ``(None, None)`` when either side lacks audio.

    The shorter fingerprint is cut into windows of ``window`` items (~5 s); each window's best
    offset in the longer one gives a bit error rate (BER). The score is the median over windows
    of ``(0.45 - BER) / 0.35`` clipped to [0, 1], so a clip inside a longer track is found and a
    small speed change only costs a little. Returns (score, offset of b relative to a, seconds).
    """
    if a is None or b is None or a.status != "ok" or b.status != "ok":
        return None, None
    fa, fb = a.fingerprint, b.fingerprint
    if len(fa) < min_items or len(fb) < min_items:
        return None, None
    swap = len(fa) > len(fb)
    x, y = (fb, fa) if swap else (fa, fb)
    w = min(window, len(x))
    n_win = max(1, len(x) // w)
    slide = np.lib.stride_tricks.sliding_window_view(y, w)  # (n_off, w)
    sims, offs = [], []
    for k in range(n_win):
        xw = x[k * w : (k + 1) * w]
        errs = np.bitwise_count(np.bitwise_xor(slide, xw[None, :])).sum(axis=1)
        o = int(np.argmin(errs))
        ber = errs[o] / (w * 32)
        sims.append(float(np.clip((0.45 - ber) / 0.35, 0.0, 1.0)))
        offs.append(o - k * w)
    score = float(np.median(sims))
    offset = float(np.median(offs)) * ITEM_SECONDS * (-1 if swap else 1)
    return score, offset


_META = Metadata()


def metadata_similarity(a: VideoFeatures, b: VideoFeatures) -> float | None:
    s = _META.similarity(_META.extract(a.info), _META.extract(b.info))
    return None if np.isnan(s) else s
