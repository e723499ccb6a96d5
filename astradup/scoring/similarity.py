"""Per-modality similarities between two videos, each in [0, 1] or ``None`` when missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike

from astradup.config import FusionConfig, MatchConfig
from astradup.features.audio import ITEM_SECONDS, AudioFeatures
from astradup.features.metadata import Metadata
from astradup.features.phash import hamming_matrix
from astradup.features.video import VideoFeatures
from astradup.scoring.alignment import Alignment, align_any
from astradup.scoring.geometry import probe_cells


@dataclass
class VisualResult:
    score: float
    alignment: Alignment | None
    path_sim: float
    hash_agreement: float
    coverage_a: float
    coverage_b: float
    background: float
    evidence: dict[str, float] = field(default_factory=dict)
    #: (time in a, time in b) of a few informative cells spread along the path, for the
    #: geometric check (:mod:`astradup.scoring.geometry`); empty when nothing aligned
    probes: list[tuple[float, float]] = field(default_factory=list)


def hash_agreement_matrix(a: VideoFeatures, b: VideoFeatures) -> np.ndarray:
    """1 - Hamming/bits between frames, taking the better of b against a and a-mirrored.

    Where one video's content box cuts part of its frame (``phash_full``) and the other's is the
    whole frame, the whole frames' hashes are compared too and the better agreement counts: a
    letterboxed source and a trailer that quotes it (its title cards fill the bars, so its box is
    the whole frame) agree only there. Where both boxes cut, only the boxes are compared: a
    letterboxed copy agrees with its source inside them, and two unrelated letterboxed videos
    would agree on their bars."""
    return _agreement(a, b, hamming_matrix)


def hash_agreement_at(a: VideoFeatures, b: VideoFeatures, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``hash_agreement_matrix(a, b)[rows, cols]`` without the matrix (frame pairs along a path)."""
    return _agreement(a, b, lambda x, y: np.bitwise_count(np.bitwise_xor(x[rows], y[cols])).sum(axis=1, dtype=np.int32))


def _agreement(a: VideoFeatures, b: VideoFeatures, ham: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """1 - Hamming/bits by :func:`hash_agreement_matrix`'s rule, with ``ham`` the distance of two
    hash arrays (every pair of rows, or chosen pairs)."""
    bits = a.phash.shape[1] * 8
    d = np.minimum(ham(a.phash, b.phash), ham(a.phash_flip, b.phash))
    if (a.phash_full is None) != (b.phash_full is None):
        fa, ffa = _whole(a)
        fb, _ = _whole(b)
        d = np.minimum(d, np.minimum(ham(fa, fb), ham(ffa, fb)))
    return 1.0 - d / bits


def _whole(v: VideoFeatures) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of ``v``'s whole frames (and mirrored): ``phash_full`` where its box cuts, else ``phash``."""
    if v.phash_full is not None and v.phash_full_flip is not None:
        return v.phash_full, v.phash_full_flip
    return v.phash, v.phash_flip


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


def _emb64(v: VideoFeatures) -> np.ndarray:
    """A video's frame embeddings in float64: float32 products and sums round their last bits
    differently with the BLAS thread count and the arrays' memory alignment, so the driver and a
    Dask worker would write the same pair's evidence a digit apart (in float64 the difference
    stays far below the digits kept)."""
    return np.asarray(v.embeddings, dtype=np.float64)


def frame_similarity(a: VideoFeatures, b: VideoFeatures) -> np.ndarray:
    """Frame-to-frame similarity: the better of the embedding cosine and the hash similarity.

    Embeddings carry crops, overlays and mirror images; hashes carry photometric changes (grey,
    colour, blur, noise, low bit rate) that move ImageNet features. Without embeddings, hashes only.
    """
    hs = hash_similarity(a, b)
    if a.embeddings is not None and b.embeddings is not None and len(a.embeddings) and len(b.embeddings):
        return np.maximum(_emb64(a) @ _emb64(b).T, hs)
    return hs


def informative_frames(v: VideoFeatures, min_quality: float) -> np.ndarray:
    """True for frames that can be evidence of a copy: their hash has structure and their picture
    detail (:func:`astradup.features.quality.frame_quality`) reaches ``min_quality``. A frame of
    unknown quality (NaN, or a store indexed before quality existed) counts as informative."""
    ok = informative_hashes(v.phash)
    if v.quality is not None and len(v.quality) == len(ok):
        ok = ok & ~(np.asarray(v.quality, dtype=np.float64) < min_quality)
    return ok


def gated_similarity(a: VideoFeatures, b: VideoFeatures, m: MatchConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`frame_similarity` with low-information frames made neutral for the alignment.

    A cell involving a frame that is not informative (:func:`informative_frames`) is lowered to
    ``m.frame_threshold``: a path may pass through it (a fade inside a copy) but gains nothing
    from it, and the trimmed path never starts or ends on it.

    Returns:
        (gated matrix, informative mask of a, informative mask of b).
    """
    sim = frame_similarity(a, b)
    ia, ib = informative_frames(a, m.min_quality), informative_frames(b, m.min_quality)
    gate = ~(ia[:, None] & ib[None, :])
    if gate.any():
        sim = np.where(gate, np.minimum(sim, m.frame_threshold), sim)
    return sim, ia, ib


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
    short = too_short(segment, min_duration, m)
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


#: How far (seconds) an aligned stretch may measure under ``match.min_segment`` and still count as
#: that long. A stretch is measured between sampled frames' timestamps, and each is the time of the
#: decoded frame nearest its sampling target: two frames half a second apart at 25 frames a second
#: can measure 0.92-1.08 s. A trailer's quote sampled twice (a one-second stretch) measured 0.96 s
#: and was held back as too short while its hashes agreed on every frame.
SEGMENT_SLACK = 0.05


def too_short(segment: ArrayLike, min_duration: ArrayLike, m: MatchConfig) -> np.ndarray:
    """True where the aligned stretch is shorter than ``m.min_segment`` (or 80 % of the shorter
    video), allowing :data:`SEGMENT_SLACK` for the frame grid."""
    seg = np.asarray(segment, np.float64)
    return seg + SEGMENT_SLACK < np.minimum(m.min_segment, 0.8 * np.asarray(min_duration, np.float64))


def half_step(ts: np.ndarray) -> float:
    """Half the median step between sample times (0.5 s with fewer than two)."""
    return float(np.median(np.diff(ts)) / 2) if len(ts) > 1 else 0.5


def _thin(v: VideoFeatures, k: int) -> VideoFeatures:
    """Every ``k``-th frame of ``v`` (the same video sampled ``k`` times more sparsely)."""
    sl = slice(0, None, k)
    return replace(
        v, timestamps=v.timestamps[sl], phash=v.phash[sl], phash_flip=v.phash_flip[sl],
        phash_full=None if v.phash_full is None else v.phash_full[sl],
        phash_full_flip=None if v.phash_full_flip is None else v.phash_full_flip[sl],
        embeddings=None if v.embeddings is None else v.embeddings[sl],
        quality=None if v.quality is None or len(v.quality) != v.n_frames else v.quality[sl])


def common_rate(a: VideoFeatures, b: VideoFeatures) -> tuple[VideoFeatures, VideoFeatures]:
    """The two videos on one frame grid: a short video sampled 2 or 4 times faster than the other
    (``sampling.min_frames``) is thinned to the other's rate, so the alignment's diagonals are
    equal time steps on both sides. Very sparse sides (keyframe queries) are left to the offset
    alignment (:func:`astradup.scoring.alignment.align_any`)."""
    ka, kb = thinning(a, b)
    return (_thin(a, ka) if ka > 1 else a), (_thin(b, kb) if kb > 1 else b)


def thinning(a: VideoFeatures, b: VideoFeatures) -> tuple[int, int]:
    """How :func:`common_rate` thins each video: every ``k``-th frame kept (1: all of them)."""
    sa, sb = 2 * half_step(a.timestamps), 2 * half_step(b.timestamps)
    if a.n_frames < 2 or b.n_frames < 2 or max(sa, sb) >= 2.0:
        return 1, 1
    k = int(round(max(sa, sb) / min(sa, sb)))
    if k < 2:
        return 1, 1
    return (k, 1) if sa < sb else (1, k)


def path_hash_agreement(a0: VideoFeatures, b0: VideoFeatures, a: VideoFeatures, b: VideoFeatures,
                        path: np.ndarray) -> np.ndarray:
    """Hash agreement of each aligned frame pair (``path`` indexes ``a`` and ``b``, the videos as
    :func:`common_rate` left them), where a side was thinned, the best of its original frames
    within half a step of the kept one.

    A clip cut from a video at an arbitrary moment is sampled out of phase with it: its frames
    fall up to half a step between the source's, and on moving pictures the hashes of frames a
    quarter of a second apart already disagree. Where the clip is sampled faster (a short video,
    ``sampling.min_frames``), the frames thinning set aside include one nearer the source's moment.
    """
    i, j = path[:, 0], path[:, 1]
    ka, kb = thinning(a0, b0)
    if ka == 1 and kb == 1:
        return hash_agreement_at(a, b, i, j)
    n, m = a0.n_frames, b0.n_frames
    best = np.full(len(i), -np.inf)
    for da in range(-(ka // 2), ka // 2 + 1):
        for db in range(-(kb // 2), kb // 2 + 1):
            r, c = i * ka + da, j * kb + db  # the thinned frame i is original frame i * ka
            ok = (r >= 0) & (r < n) & (c >= 0) & (c < m)
            best = np.where(ok, np.maximum(best, hash_agreement_at(a0, b0, np.clip(r, 0, n - 1), np.clip(c, 0, m - 1))), best)
    return best


def visual_similarity(a: VideoFeatures, b: VideoFeatures, m: MatchConfig, bands: FusionConfig | None = None) -> VisualResult:
    """Align the two videos and turn the aligned path into a visual score (see
    :func:`visual_from_stats`; ``bands`` is the fusion config whose bands it maps onto).

    Low-information frames are gated first (:func:`gated_similarity`). ``evidence`` holds the
    statistics the learned pair scorer reads (:func:`path_evidence`). Videos sampled at different
    rates are compared on a common grid first (:func:`common_rate`).
    """
    a0, b0 = a, b
    a, b = common_rate(a, b)
    sim, ia, ib = gated_similarity(a, b, m)
    ha, hb = half_step(a.timestamps), half_step(b.timestamps)
    al = align_any(sim, a.timestamps, b.timestamps, m.frame_threshold, m.gap, ha, hb, a.duration or None, b.duration or None)
    min_dur = min(a.duration, b.duration)
    if al is None:
        bg = float(np.median(sim)) if sim.size else 0.0
        best = float(sim.max()) if sim.size else 0.0
        score = visual_from_stats(best, bg, 0.0, 0.0, 0.0, 0.0, min_dur, False, m, bands)
        return VisualResult(float(score), None, best, 0.0, 0.0, 0.0, bg, path_evidence(a, b, sim, None, ia, ib))
    agree = path_hash_agreement(a0, b0, a, b, al.path)
    hash_agree = float(agree.mean())
    cov_a = min((al.a_end - al.a_start) / max(a.duration, 1e-9), 1.0)
    cov_b = min((al.b_end - al.b_start) / max(b.duration, 1e-9), 1.0)
    seg = min(al.a_end - al.a_start, al.b_end - al.b_start)
    score = visual_from_stats(al.path_sim, al.background, hash_agree, cov_a, cov_b, seg, min_dur, True, m, bands)
    cells = probe_cells(al.path, ia[al.path[:, 0]] & ib[al.path[:, 1]])
    probes = [(float(a.timestamps[i]), float(b.timestamps[j])) for i, j in cells]
    return VisualResult(float(score), al, al.path_sim, hash_agree, cov_a, cov_b, al.background,
                        path_evidence(a, b, sim, al, ia, ib, agree), probes)


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def path_evidence(a: VideoFeatures, b: VideoFeatures, sim: np.ndarray, al: Alignment | None,
                  ia: np.ndarray, ib: np.ndarray, path_agree: np.ndarray | None = None) -> dict[str, float]:
    """Statistics of the aligned path that tell a copy from look-alike content (pure; NaN where a
    statistic does not apply). All similarities are per frame pair along the path.

    - ``emb_path``, ``emb_bg``: mean embedding cosine on the path, and its median over the matrix
      (same subject, not the same pixels: high for both in a different edit of one shoot).
    - ``hash_path``, ``hash_bg``: the same for pHash agreement (1 - Hamming/bits; 0.5 is chance).
    - ``hash_hit``: share of path frames whose hashes agree on >= 80 % of bits (same pixels).
      Both read ``path_agree`` where given (:func:`path_hash_agreement`: out-of-phase frames).
    - ``emb_hash_gap``: ``emb_path - (2 * hash_path - 1)``: embeddings agree, hashes do not.
    - ``standout``: mean over path frames of how far the matched cell beats the best cell of its
      row and column more than two frames away (a copy's frames match their own moment, a static
      or repetitive look-alike matches everything equally).
    - ``informative``: share of path frames informative on both sides (quality and hash gates).
    - ``quality_path``: mean of the lower of the two frames' quality on the path (NaN: unknown).
    - ``best_cell``: the matrix's highest cell (gated); ``path_min``: the path's weakest cell.
    - ``resid_path``: mean cosine, along the path, of each frame's embedding minus the mean
      embedding of its side's path frames: what changes from moment to moment. A copy changes
      as its source does; another stretch of the same static shot (a tree in the wind, a desktop)
      looks the same on average but moves differently. ``resid_norm``: the smaller side's mean
      residual length (near 0 for a still picture, where ``resid_path`` is noise).
    - ``spread``: the smaller side's mean distance of a frame's embedding from its whole video's
      mean (how much the video changes at all; a still shot stays near 0.1 whatever the rate).
    """
    nan = float("nan")
    out = {k: nan for k in ("emb_path", "emb_bg", "hash_path", "hash_bg", "hash_hit", "emb_hash_gap",
                            "standout", "informative", "quality_path", "best_cell", "path_min", "resid_path", "resid_norm", "spread")}
    if sim.size == 0:
        return out
    agree = hash_agreement_matrix(a, b)
    has_emb = a.embeddings is not None and b.embeddings is not None and len(a.embeddings) and len(b.embeddings)
    ea, eb = (_emb64(a), _emb64(b)) if has_emb else (None, None)
    emb = (ea @ eb.T) if ea is not None and eb is not None else None
    out["best_cell"] = float(sim.max())
    out["hash_bg"] = float(np.median(agree))
    if emb is not None:
        out["emb_bg"] = float(np.median(emb))
        out["spread"] = float(min(np.linalg.norm(e - e.mean(axis=0), axis=1).mean()
                                  for e in (ea, eb) if e is not None))
    if al is None or al.length == 0:
        return out
    i, j = al.path[:, 0], al.path[:, 1]
    on_path = agree[i, j] if path_agree is None else np.asarray(path_agree, np.float64)
    out["hash_path"] = float(on_path.mean())
    out["hash_hit"] = float((on_path >= 0.8).mean())
    if emb is not None:
        out["emb_path"] = float(emb[i, j].mean())
        out["emb_hash_gap"] = out["emb_path"] - (2 * out["hash_path"] - 1)
        if al.length >= 3:
            ra = ea[i] - ea[i].mean(axis=0)  # type: ignore[index]
            rb = eb[j] - eb[j].mean(axis=0)  # type: ignore[index]
            na_, nb_ = np.linalg.norm(ra, axis=1), np.linalg.norm(rb, axis=1)
            out["resid_path"] = float(((ra * rb).sum(axis=1) / np.maximum(na_ * nb_, 1e-12)).mean())
            out["resid_norm"] = float(min(na_.mean(), nb_.mean()))
    out["path_min"] = float(sim[i, j].min())
    na, nb = sim.shape
    cols, rows = np.arange(nb), np.arange(na)
    stand = []
    for r, c in zip(i.tolist(), j.tolist()):
        far_r = sim[r, np.abs(cols - c) > 2]
        far_c = sim[np.abs(rows - r) > 2, c]
        rival = max(far_r.max() if far_r.size else -1.0, far_c.max() if far_c.size else -1.0)
        stand.append(sim[r, c] - rival if rival > -1.0 else nan)
    out["standout"] = _nanmean(np.asarray(stand))
    out["informative"] = float((ia[i] & ib[j]).mean())
    if a.quality is not None and b.quality is not None and len(a.quality) == na and len(b.quality) == nb:
        out["quality_path"] = _nanmean(np.minimum(np.asarray(a.quality, np.float64)[i], np.asarray(b.quality, np.float64)[j]))
    return out


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
