"""Array-level metrics: ranking (µAP, precision-recall curve) and temporal IoU.

Pure numpy over 1-D arrays, so they are cheap enough to call once per Optuna trial.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def _ranked(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels sorted by score (descending), negatives first within a tie."""
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(positive, dtype=bool)
    # lexsort's last key is the primary one: score descending, then positives after negatives
    order = np.lexsort((p, -s))
    return s[order], p[order]


class Ranking(NamedTuple):
    """Ranking metrics of one scored list; see :func:`ranking`."""

    average_precision: float
    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray

    def recall_at_precision(self, min_precision: float) -> float:
        """The highest recall at a threshold whose precision is >= ``min_precision`` (else 0)."""
        ok = self.precision >= min_precision
        return float(self.recall[ok].max()) if ok.any() else 0.0


def ranking(scores: np.ndarray, positive: np.ndarray, n_positive: int) -> Ranking:
    """Micro average precision and the precision-recall curve of a scored list, from one sort.

    ``scores`` and ``positive`` describe the predicted pairs only; ``n_positive`` counts every
    positive in the truth, so positives never predicted cost recall. Within a tie, negatives rank
    first (the pessimistic order).

    - ``average_precision = sum_k precision@k * positive_k / n_positive`` (0 if no positives);
    - the curve has one point per distinct score ``t`` (descending): precision and recall of
      ``score >= t``, ties taken together.
    """
    s, p = _ranked(scores, positive)
    if len(s) == 0:
        empty = np.empty(0)
        return Ranking(0.0, empty, empty, empty)
    tp = np.cumsum(p)
    k = np.arange(1, len(s) + 1)
    ap = float((tp / k)[p].sum() / n_positive) if n_positive > 0 else 0.0
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    precision = tp[last_of_tie] / k[last_of_tie]
    recall = tp[last_of_tie] / n_positive if n_positive > 0 else np.zeros(int(last_of_tie.sum()))
    return Ranking(ap, s[last_of_tie], precision, recall)


def average_precision(scores: np.ndarray, positive: np.ndarray, n_positive: int) -> float:
    """Micro average precision (see :func:`ranking`).

    >>> round(average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 3), 4)
    0.5556
    """
    return ranking(scores, positive, n_positive).average_precision


def precision_recall_curve(
    scores: np.ndarray, positive: np.ndarray, n_positive: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, precision, recall) at each distinct score, descending (see :func:`ranking`)."""
    r = ranking(scores, positive, n_positive)
    return r.thresholds, r.precision, r.recall


def recall_at_precision(
    scores: np.ndarray, positive: np.ndarray, n_positive: int, min_precision: float
) -> float:
    """The highest recall at any score threshold whose precision is >= ``min_precision`` (else 0)."""
    return ranking(scores, positive, n_positive).recall_at_precision(min_precision)


def interval_iou(s1: np.ndarray, e1: np.ndarray, s2: np.ndarray, e2: np.ndarray) -> np.ndarray:
    """IoU of intervals ``[s1, e1]`` and ``[s2, e2]`` (seconds); 0 when the union is empty,
    NaN where an end is NaN."""
    s1, e1, s2, e2 = (np.asarray(x, dtype=np.float64) for x in (s1, e1, s2, e2))
    inter = np.clip(np.minimum(e1, e2) - np.maximum(s1, s2), 0.0, None)
    union = np.clip(e1 - s1, 0.0, None) + np.clip(e2 - s2, 0.0, None) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.where(np.isnan(union), np.nan, 0.0))
