"""Scoring one candidate pair: modalities, fusion, band, and the explanation that goes with it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from astradup.config import AstradupConfig
from astradup.features.video import VideoFeatures
from astradup.scoring.fusion import Fused, band_labels, fuse
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
    fused = fuse({"visual": vis.score, "audio": aud, "metadata": meta}, cfg.fusion)
    if vis.score < 0.95 and fused.score >= cfg.fusion.exact:
        # "exact" is a claim about the pictures: audio and metadata may not lift a pair into it
        fused = Fused(min(fused.score, cfg.fusion.exact - 1e-6), band_labels(np.array([cfg.fusion.exact - 1e-6]), cfg.fusion)[0],
                      fused.confidence, fused.weights)
    al = vis.alignment
    partial = bool(
        al is not None
        and fused.label in ("exact", "near")
        and min(vis.coverage_a, vis.coverage_b) < cfg.match.partial_coverage
    )
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
        },
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
