"""Scoring one candidate pair: modalities, fusion, band, and the explanation that goes with it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.features.video import VideoFeatures
from astradup.labels import DUPLICATE_LABELS
from astradup.scoring.fusion import fuse, fuse_arrays
from astradup.scoring.similarity import audio_similarity, metadata_similarity, visual_similarity


@dataclass
class PairScore:
    """One verified pair (the row written to pairs.csv)."""

    score: float
    label: str
    confidence: float
    visual: float | None
    audio: float | None
    metadata: float | None
    a_start: float | None
    a_end: float | None
    b_start: float | None
    b_end: float | None
    partial: bool
    explanation: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d["explanation"] = json.dumps(self.explanation, separators=(",", ":"))
        return d


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def score_pair(a: VideoFeatures, b: VideoFeatures, cfg: AstradupConfig) -> PairScore:
    """Compare two videos on every modality and fuse: a pure function of their features."""
    vis = visual_similarity(a, b, cfg.match)
    aud, offset = audio_similarity(a.audio, b.audio)
    meta = metadata_similarity(a, b)
    al = vis.alignment
    is_partial = al is not None and min(vis.coverage_a, vis.coverage_b) < cfg.match.partial_coverage
    if is_partial:
        meta = None  # durations of a clip and its source differ by design: not evidence either way
    fused = fuse({"visual": vis.score, "audio": aud, "metadata": meta}, cfg.fusion)
    partial = bool(is_partial and fused.label in DUPLICATE_LABELS)
    band = {"exact": cfg.fusion.exact, "near": cfg.fusion.near, "similar": cfg.fusion.similar}.get(fused.label)
    explanation = {
        "weights": {k: round(v, 4) for k, v in fused.weights.items()},
        "weighted_sum": _r(fused.score),
        "band": fused.label,
        "band_threshold": band,
        "visual": {
            "path_sim": _r(vis.path_sim),
            "background": _r(vis.background),
            "hash_agreement": _r(vis.hash_agreement),
            "coverage_a": _r(vis.coverage_a),
            "coverage_b": _r(vis.coverage_b),
            "aligned_frames": 0 if al is None else al.length,
            "segment_s": 0.0 if al is None else _r(min(al.a_end - al.a_start, al.b_end - al.b_start), 3),
            "min_duration_s": _r(min(a.duration, b.duration), 3),
        },
        "metadata_raw": _r(metadata_similarity(a, b)),
        "audio": {
            "status_a": a.audio.status if a.audio else "disabled",
            "status_b": b.audio.status if b.audio else "disabled",
            "offset_s": _r(offset, 2),
        },
        "top_frames": [] if al is None else [[_r(ta, 2), _r(tb, 2), _r(s)] for ta, tb, s in al.top_frames],
    }
    return PairScore(
        score=round(fused.score, 6),
        label=fused.label,
        confidence=round(fused.confidence, 4),
        visual=_r(vis.score),
        audio=_r(aud),
        metadata=_r(meta),
        a_start=_r(al.a_start, 3) if al else None,
        a_end=_r(al.a_end, 3) if al else None,
        b_start=_r(al.b_start, 3) if al else None,
        b_end=_r(al.b_end, 3) if al else None,
        partial=partial,
        explanation=explanation,
    )


def rescore_pairs(pairs: pd.DataFrame, cfg: AstradupConfig) -> pd.DataFrame:
    """Recompute visual, metadata, score, label and partial from the explanations' statistics.

    Vectorised and exact for every ``match.*`` field that does not change the alignment itself
    (the ``q_*`` knots, ``exact_hash``, ``exact_coverage``, ``distinct_margin``, ``min_segment``,
    ``partial_coverage``) and for all of ``fusion``, so Optuna can tune them without re-matching.
    """
    from astradup.scoring.similarity import visual_from_stats

    ex = pairs["explanation"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    vis = pd.DataFrame([e.get("visual", {}) for e in ex], index=pairs.index)
    get = lambda c, d=0.0: pd.to_numeric(vis.get(c, pd.Series(d, index=pairs.index)), errors="coerce").fillna(d).to_numpy()  # noqa: E731
    aligned = get("aligned_frames") > 0
    cov_a, cov_b = get("coverage_a"), get("coverage_b")
    visual = visual_from_stats(get("path_sim"), get("background"), get("hash_agreement"), cov_a, cov_b,
                               get("segment_s"), get("min_duration_s", 1.0), aligned, cfg.match)
    meta_raw = pd.to_numeric(pd.Series([e.get("metadata_raw") for e in ex], index=pairs.index), errors="coerce").to_numpy(dtype=float)
    is_partial = aligned & (np.minimum(cov_a, cov_b) < cfg.match.partial_coverage)
    meta = np.where(is_partial, np.nan, meta_raw)
    out = pairs.copy()
    out["visual"] = np.round(visual, 4)
    out["metadata"] = meta
    audio = pd.to_numeric(out["audio"], errors="coerce").to_numpy(dtype=float)
    score, label, conf = fuse_arrays(out["visual"].to_numpy(dtype=float), audio, meta, cfg.fusion)
    out["score"], out["label"], out["confidence"] = score, label, conf
    out["partial"] = is_partial & np.isin(label, DUPLICATE_LABELS)
    return out
