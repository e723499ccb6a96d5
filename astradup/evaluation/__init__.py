"""Metrics of a de-duplication run: reported pairs (``pairs.csv``) against the truth.

Table formats are described in :mod:`astradup.evaluation.io`. Definitions:

Pairs
    Unordered: every pair is rewritten so that ``a < b`` (string order) in both tables, with its
    segment columns swapped to match. A pair reported twice keeps its highest score; a truth pair
    listed twice keeps its first row. Self-pairs are dropped.

Positives
    Truth relation ``exact``, ``near`` or ``partial``. ``similar`` (same content, not a copy) and
    ``different`` are negatives, and so is every pair of corpus videos the truth does not list.

Corpus
    ``n_videos`` counts ``videos`` (the argument, else ``truth.attrs["videos"]`` from
    ``videos.csv``, else only the paths the two tables name, with a warning) plus any path the
    tables name outside that list. ``n_pairs_total = n_videos * (n_videos - 1) / 2`` and
    ``n_negative = n_pairs_total - n_positive``.

``micro_ap``
    Rank every reported pair by score, descending. ``AP = sum_k precision@k * [pair k is
    positive] / n_positive``, where ``n_positive`` counts every positive in the truth, so a positive
    missing from the pairs costs recall. Ties are ranked pessimistically: negatives before
    positives within equal scores.

``recall_at_p99``
    The highest recall over thresholds ``score >= t`` (``t`` = each distinct score, ties taken
    together) whose precision is ``>= 0.99``; 0 if none.

``precision``, ``recall``, ``f1``
    Of the duplicate class: truth positive vs predicted ``label`` ``exact`` or ``near``. A positive
    missing from the pairs is a false negative. 0 when the denominator is 0.

``fpr``, ``fp_per_1000``
    False positives of the duplicate class / ``n_negative``, and per 1000 corpus videos.

Confusion matrix
    4x4, index = truth class, columns = predicted label, both ordered ``exact, near, similar,
    different``. Truth ``partial`` counts as ``near``; unlisted pairs are ``different``; a truth pair
    missing from the pairs is predicted ``different``. Pairs named in neither table are added to
    (different, different), so the matrix sums to ``n_pairs_total``.

Per-transform recall
    For positive truth pairs, grouped by (transform, relation): ``n``, ``recalled`` (predicted
    ``exact``/``near``) and ``recall``.

``partial_recall``
    Duplicate-class recall over truth relation ``partial`` (NaN when there are none).

``mean_tiou``
    Mean temporal IoU over recalled positives whose truth has a segment: per video, the IoU of
    the true ``[start, end]`` and the reported one (seconds), averaged over the two videos. A
    reported pair without a segment scores 0. NaN when no pair qualifies.

Example:
    >>> import pandas as pd
    >>> truth = pd.DataFrame({"a": ["x", "x"], "b": ["y", "z"], "relation": ["exact", "similar"]})
    >>> pairs = pd.DataFrame({"a": ["y"], "b": ["x"], "score": [0.97], "label": ["exact"]})
    >>> result = evaluate(truth, pairs, videos=["x", "y", "z", "w"])
    >>> result.metrics["f1"], result.metrics["n_negative"]
    (1.0, 5)
"""

from __future__ import annotations

from astradup.evaluation.core import EvalResult, evaluate, join
from astradup.evaluation.io import (
    DUPLICATE_LABELS,
    POSITIVE_RELATIONS,
    RELATIONS,
    TableError,
    check_pairs,
    check_truth,
    load_pairs,
    load_truth,
)
from astradup.evaluation.metrics import (
    average_precision,
    precision_recall_curve,
    recall_at_precision,
)

__all__ = [
    "DUPLICATE_LABELS",
    "POSITIVE_RELATIONS",
    "RELATIONS",
    "EvalResult",
    "TableError",
    "average_precision",
    "check_pairs",
    "check_truth",
    "evaluate",
    "join",
    "load_pairs",
    "load_truth",
    "precision_recall_curve",
    "recall_at_precision",
]
