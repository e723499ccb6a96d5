"""Metadata features and their similarity: duration, frame rate, resolution, aspect and file size,
each compared with a tolerance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from astradup.features.base import Extractor

FIELDS = ("duration", "fps", "width", "height", "aspect", "file_size")


@dataclass(frozen=True)
class Tolerances:
    """Relative differences that still count as equal (full credit), and where credit ends."""

    duration: tuple[float, float] = (0.02, 0.5)
    fps: tuple[float, float] = (0.01, 0.5)
    aspect: tuple[float, float] = (0.02, 0.4)
    pixels: tuple[float, float] = (0.05, 0.9)
    file_size: tuple[float, float] = (0.10, 0.95)


def _credit(a: float, b: float, tol: tuple[float, float]) -> float:
    if not (a > 0 and b > 0):
        return float("nan")
    rel = abs(a - b) / max(a, b)
    lo, hi = tol
    return float(np.clip((hi - rel) / (hi - lo), 0.0, 1.0))


class Metadata(Extractor):
    """Picks the compared fields from a probe record (``MediaInfo.to_dict()``)."""

    name = "metadata"
    modality = "metadata"

    def __init__(self, tolerances: Tolerances | None = None):
        self.tolerances = tolerances or Tolerances()

    def extract(self, info: Mapping) -> dict[str, float]:
        return {
            "duration": float(info.get("duration") or 0.0),
            "fps": float(info.get("avg_fps") or info.get("fps") or 0.0),
            "width": float(info.get("width") or 0),
            "height": float(info.get("height") or 0),
            "aspect": float(info.get("display_aspect") or info.get("aspect") or 0.0),
            "file_size": float(info.get("file_size") or 0),
        }

    def similarity(self, a: Mapping, b: Mapping) -> float:
        """Weighted mean credit in [0, 1]; NaN when nothing is comparable."""
        t = self.tolerances
        parts = [
            (0.4, _credit(a["duration"], b["duration"], t.duration)),
            (0.2, _credit(a["aspect"], b["aspect"], t.aspect)),
            (0.15, _credit(a["fps"], b["fps"], t.fps)),
            (0.15, _credit(a["width"] * a["height"], b["width"] * b["height"], t.pixels)),
            (0.1, _credit(a["file_size"], b["file_size"], t.file_size)),
        ]
        w = np.array([p[0] for p in parts])
        v = np.array([p[1] for p in parts])
        ok = ~np.isnan(v)
        return float((w[ok] * v[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")
