"""Fusion of per-modality similarities into one score, a class band and a confidence.

Rules (all monotone: raising one modality's similarity never lowers the fused score):

1. A missing modality (``None`` or NaN) is re-weighted away, never counted as zero.
2. ``score = max(mean_w(all present), mean_w(visual, metadata))``: a strong picture match stays a
   copy when the soundtrack was muted or replaced, and audio can lift a borderline picture match.
3. ``score <= visual + soundtrack_margin``: a shared soundtrack over different pictures never
   makes a duplicate.
4. Below ``exact`` unless ``visual >= 0.95``: audio and metadata cannot make pictures identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from astradup.config import FusionConfig
from astradup.labels import MODALITIES

SOUNDTRACK_MARGIN = 0.10
EXACT_VISUAL = 0.95  # the visual score a pair needs before it can be called "exact"


@dataclass(frozen=True)
class Fused:
    score: float
    label: str
    confidence: float
    weights: dict[str, float]


def _wmean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    present = ~np.isnan(values)
    w = np.where(present, weights, 0.0)
    total = w.sum(axis=1)
    num = (np.where(present, values, 0.0) * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, num / np.where(total > 0, total, 1.0), np.nan)


def fuse_arrays(
    visual: np.ndarray, audio: np.ndarray, metadata: np.ndarray, cfg: FusionConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised fusion: arrays of per-modality scores (NaN = missing) -> (score, label, confidence).

    Used both by ``match`` and by the Optuna tuner, so tuned configs score exactly as matching does.
    """
    vals = np.column_stack([visual, audio, metadata]).astype(np.float64)
    vals = np.clip(vals, 0.0, 1.0)
    w = np.array([cfg.visual, cfg.audio, cfg.metadata], dtype=np.float64)
    all_mean = _wmean(vals, w)
    no_audio = vals.copy()
    no_audio[:, 1] = np.nan
    va_mean = _wmean(no_audio, w)
    score = np.fmax(all_mean, va_mean)
    has_visual = ~np.isnan(vals[:, 0])
    cap = np.where(has_visual, vals[:, 0] + SOUNDTRACK_MARGIN, 1.0)
    score = np.minimum(np.nan_to_num(score, nan=0.0), cap)
    # "exact" is a claim about the pictures: audio and metadata may not lift a pair into it
    below = has_visual & (vals[:, 0] < EXACT_VISUAL)
    score = np.where(below, np.minimum(score, cfg.exact - 1e-6), score)
    score = np.clip(score, 0.0, 1.0)
    label = band_labels(score, cfg)
    # confidence: agreement between present modalities, shrunk when little weight is present
    present = ~np.isnan(vals)
    wp = np.where(present, w, 0.0)
    tot = wp.sum(axis=1)
    dev = (np.abs(np.where(present, vals, 0.0) - score[:, None]) * wp).sum(axis=1) / np.where(tot > 0, tot, 1.0)
    frac = tot / w.sum()
    conf = np.clip((1.0 - dev) * (0.5 + 0.5 * frac), 0.0, 1.0)
    return score, label, conf


def band_labels(score: np.ndarray, cfg: FusionConfig) -> np.ndarray:
    """Map fused scores to ``exact | near | similar | different`` with the config's bands."""
    s = np.asarray(score, dtype=np.float64)
    out = np.full(s.shape, "different", dtype=object)
    out[s >= cfg.similar] = "similar"
    out[s >= cfg.near] = "near"
    out[s >= cfg.exact] = "exact"
    return out


def fuse(scores: Mapping[str, float | None], cfg: FusionConfig | None = None) -> Fused:
    """Fuse one pair's modality scores, e.g. ``fuse({"visual": 0.9, "audio": None})``."""
    cfg = cfg or FusionConfig()
    unknown = set(scores) - set(MODALITIES)
    if unknown:
        from astradup.errors import ConfigError

        raise ConfigError(f"unknown modality {sorted(unknown)}; choose from {list(MODALITIES)}")
    arr = [np.array([np.nan if scores.get(m) is None else float(scores[m])]) for m in MODALITIES]  # type: ignore[arg-type]
    s, lab, conf = fuse_arrays(arr[0], arr[1], arr[2], cfg)
    raw = {m: getattr(cfg, m) for m in MODALITIES if scores.get(m) is not None and not np.isnan(float(scores[m]))}  # type: ignore[arg-type]
    tot = sum(raw.values()) or 1.0
    return Fused(float(s[0]), str(lab[0]), float(conf[0]), {k: v / tot for k, v in raw.items()})
