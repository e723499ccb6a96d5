"""Tuning (Optuna): fusion weights and bands, or any config field, on a grouped train split.

Example::

    from astradup.evaluation import load_pairs, load_truth
    from astradup.tuning import tune

    truth = load_truth("data/demo/ground_truth.csv")     # videos.csv beside it gives the corpus
    result = tune(load_pairs("data/demo/pairs.csv"), truth, n_trials=100, storage="data/demo/study.db")
    print(result.val_metrics["f1"], "vs default", result.default_val_metrics["f1"])
    result.write_config("tuned.yaml")

See :mod:`astradup.tuning.tune` for objectives and constraints, :mod:`astradup.tuning.space` for
search spaces and :mod:`astradup.tuning.split` for the split. Studies persist in SQLite when
``storage`` is given, so they can be resumed and opened with ``optuna-dashboard sqlite:///...``.
"""

from __future__ import annotations

from astradup.tuning.space import DEFAULT_SEARCH_SPACE, SearchSpace, default_search_space
from astradup.tuning.split import split_by_group, video_groups
from astradup.tuning.tune import (
    OBJECTIVES,
    TuneResult,
    best_trial,
    default_storage,
    refuse,
    storage_url,
    tune,
)

__all__ = [
    "DEFAULT_SEARCH_SPACE",
    "OBJECTIVES",
    "SearchSpace",
    "TuneResult",
    "best_trial",
    "default_search_space",
    "default_storage",
    "refuse",
    "split_by_group",
    "storage_url",
    "tune",
    "video_groups",
]
