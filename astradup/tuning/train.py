"""Training the learned pair scorer on labelled pairs (``astradup train``).

The labelled pairs are a ``pairs.csv`` written by ``astradup match --min-score 0`` over a set
whose truth is known, e.g. one ``astradup synth --sources YOUR_CLIPS`` made from a user's own
clips. Each candidate pair's evidence (stored in its explanation) is one row; it is a copy when
the truth relates the two videos as exact, near or partial. The videos are split by source group
(:func:`astradup.tuning.split.split_by_group`); the model is fitted on one side and measured on
the other (those held-out metrics go into the model card), then refitted on every row unless
``refit=False``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train_pair_model` did: the model, its held-out metrics and where it went."""

    model: Any
    heldout: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_heldout: int = 0
    out: Path | None = None


def labelled_evidence(pairs: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The pairs' evidence (:func:`astradup.scoring.learned.evidence_table`) with ``a``, ``b``,
    ``relation`` and ``positive`` (exact, near or partial in the truth) per pair."""
    from astradup.evaluation.io import check_pairs
    from astradup.labels import POSITIVE_RELATIONS
    from astradup.scoring.learned import FEATURES, evidence_table

    p = check_pairs(pairs)
    if len(p) != len(pairs):
        raise ConfigError(f"pairs table changed length when checked ({len(pairs)} -> {len(p)} rows)")
    if "explanation" not in p.columns:
        raise ConfigError("pairs need the explanation column `astradup match` writes (it holds the evidence)")
    ev = evidence_table(p)
    if ev.isna().all(axis=1).all():
        raise ConfigError("no pair carries the learned scorer's evidence: run `astradup match --min-score 0` "
                          "with this version of AstraDup first")
    swap = p["a"].astype(str) > p["b"].astype(str)
    lo = np.where(swap, p["b"], p["a"])
    hi = np.where(swap, p["a"], p["b"])
    t = truth.copy()
    t.attrs = {}
    t_lo = np.where(t["a"].astype(str) > t["b"].astype(str), t["b"], t["a"])
    t_hi = np.where(t["a"].astype(str) > t["b"].astype(str), t["a"], t["b"])
    rel = pd.Series(t["relation"].to_numpy(), index=pd.MultiIndex.from_arrays([t_lo, t_hi]))
    rel = rel[~rel.index.duplicated(keep="first")]
    key = pd.MultiIndex.from_arrays([lo, hi])
    relation = rel.reindex(key).fillna("different").to_numpy()
    out = ev[list(FEATURES)].copy()
    out.insert(0, "a", lo)
    out.insert(1, "b", hi)
    out["relation"] = relation
    out["positive"] = np.isin(relation, POSITIVE_RELATIONS)
    return out.reset_index(drop=True)


def train_pair_model(
    pairs: pd.DataFrame,
    truth: pd.DataFrame,
    videos: list[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    holdout: float = 0.3,
    seed: int = 0,
    repeats: int = 1,
    refit: bool = True,
    name: str = "",
    training_data: str = "",
    config: AstradupConfig | None = None,
    **params: Any,
) -> TrainResult:
    """Fit a :class:`astradup.scoring.learned.PairModel` on labelled pairs.

    Args:
        pairs: pairs table from ``astradup match --min-score 0`` (with explanations).
        truth: its ground truth (``load_truth``; ``attrs["videos"]`` lists the corpus).
        videos: every corpus path (default: ``truth.attrs["videos"]``).
        out: folder to save the model and its card into (nothing saved when None).
        holdout: share of the videos (by source group) held out to measure the model; 0 skips it.
        repeats: hold-outs drawn (split seeds ``seed``, ``seed + 1``, ...); the operating point is the
            median of theirs, the card's held-out metrics are the first's.
        seed: split and model seed.
        refit: after measuring, fit again on every row (the saved model); else keep the fold's.
        name, training_data: recorded in the card.
        config: bands used for the held-out labels (default: the defaults).
        params: :class:`PairModel` parameters.
    """
    from astradup.scoring.learned import (
        FEATURES,
        OPERATING_MIN_RECALL,
        PairModel,
    )
    from astradup.tuning.split import split_by_group

    cfg = config or AstradupConfig()
    table = labelled_evidence(pairs, truth)
    if videos is None:
        videos = truth.attrs.get("videos") or sorted(set(table["a"]) | set(table["b"]) | set(truth["a"]) | set(truth["b"]))
    videos = list(videos)
    X, y = table[list(FEATURES)], table["positive"].to_numpy()
    heldout: dict[str, Any] = {}
    near_p: float | None = None
    op_precision: float | None = None
    n_tr, n_ho = len(table), 0
    if holdout > 0:
        splits = []
        for k in range(max(1, repeats)):  # each a grouped hold-out of its own; the first is the card's
            tr_v, ho_v = split_by_group(truth, videos, val_fraction=holdout, seed=seed + k)
            splits.append(_holdout_point(pairs, truth, table, set(tr_v), set(ho_v), cfg, PairModel(seed=seed, **params)))
        near_p, op_precision, m, n_ho_videos, n_tr, n_ho, model = splits[0]
        heldout = {k: float(m[k]) for k in ("micro_ap", "recall_at_p99", "precision", "recall", "fp_per_1000")}
        heldout.update(n_videos=n_ho_videos, split_seed=seed, holdout=holdout)
        if len(splits) > 1:
            # one hold-out's operating point swings with the material that lands in it (one recording
            # whose other moments look like copies can push it to p = 0.9999): the median of several
            points = [x for x in splits if x[0] is not None]
            near_p = float(np.median([x[0] for x in points])) if points else None
            if points:  # the precision the split nearest the median chose
                op_precision = min(points, key=lambda x: abs(x[0] - near_p))[1]
            heldout.update(repeats=len(splits), near_p_by_split=[x[0] for x in splits],
                           precision_by_split=[x[1] for x in splits], recall_by_split=[float(x[2]["recall"]) for x in splits])
        log.info("held-out metrics: %s", heldout)
    if refit or holdout <= 0:
        model = PairModel(seed=seed, **params).fit(X, y)
        n_tr = len(table)
    ref = X.median(numeric_only=True)
    model.card = {
        "name": name or (Path(out).name if out else "model"),
        "reference": {f: (None if pd.isna(ref.get(f)) else float(ref[f])) for f in FEATURES},
        "training": {"data": training_data, "n_pairs": n_tr, "n_positive": int(y.sum()) if refit else None,
                     "n_videos": len(videos), "seed": seed, "refit_on_all_rows": bool(refit or holdout <= 0)},
        "heldout": heldout,
        "bands_used_for_heldout_labels": {"exact": cfg.fusion.exact, "near": cfg.fusion.near, "similar": cfg.fusion.similar},
        # the probability from which the held-out pairs were `precision` pure: scored onto "near"
        "operating_point": {"near_p": near_p, "precision": op_precision, "min_recall": OPERATING_MIN_RECALL,
                            "measured_on": f"held-out videos of the training data ({holdout:.0%}, by source group"
                                           + (f"; median of {repeats} hold-outs)" if repeats > 1 else ")")},
    }
    saved = model.save(out) if out is not None else None
    return TrainResult(model, heldout, n_tr, n_ho, saved)


def _holdout_point(pairs: pd.DataFrame, truth: pd.DataFrame, table: pd.DataFrame, tr_set: set[str], ho_set: set[str],
                   cfg: AstradupConfig, fold: Any) -> tuple:
    """Fit ``fold`` on the pairs inside ``tr_set``, score those inside ``ho_set`` and pick the
    operating point there: the strictest precision whose held-out recall still reaches the floor.
    Returns (near_p, precision, held-out metrics, held-out videos, train pairs, held-out pairs, fold)."""
    from astradup.evaluation import evaluate
    from astradup.scoring.learned import (
        FEATURES,
        OPERATING_MIN_RECALL,
        OPERATING_PRECISIONS,
        held_back_by_evidence,
        learned_verdict,
        operating_point,
    )
    from astradup.scoring.pair import _exact_ok

    X, y = table[list(FEATURES)], table["positive"].to_numpy()
    on_tr = table["a"].isin(tr_set) & table["b"].isin(tr_set)
    on_ho = table["a"].isin(ho_set) & table["b"].isin(ho_set)
    fold.fit(X[on_tr], y[on_tr])
    p = fold.predict_proba(X[on_ho])[:, 1]
    ho_pairs = pairs.iloc[np.flatnonzero(on_ho.to_numpy())].copy()
    ex = _stats(ho_pairs)
    ok = _exact_ok(ex["hash_agreement"].to_numpy(), ex["coverage_a"].to_numpy(), ex["coverage_b"].to_numpy(),
                   ex["aligned"].to_numpy(), cfg)
    held = held_back_by_evidence(ex["segment_s"].to_numpy(), ex["min_duration_s"].to_numpy(), X[on_ho], cfg.match)
    ho_truth = truth[truth["a"].isin(ho_set) & truth["b"].isin(ho_set)]
    for op_precision in OPERATING_PRECISIONS:
        near_p = operating_point(p, y[on_ho.to_numpy()], op_precision)
        sc, lab = learned_verdict(p, ok, ex["aligned"].to_numpy(), cfg.fusion, held, near_p)
        m = evaluate(ho_truth, ho_pairs.assign(score=sc, label=lab), videos=sorted(ho_set)).metrics
        if m["recall"] >= OPERATING_MIN_RECALL:
            break
    return near_p, op_precision, m, len(ho_set), int(on_tr.sum()), int(on_ho.sum()), fold


def _stats(pairs: pd.DataFrame) -> pd.DataFrame:
    import json

    ex = pairs["explanation"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    vis = pd.DataFrame([e.get("visual", {}) for e in ex], index=pairs.index)
    out = pd.DataFrame(index=pairs.index)
    for c in ("hash_agreement", "coverage_a", "coverage_b", "aligned_frames", "segment_s", "min_duration_s"):
        out[c] = pd.to_numeric(vis.get(c, pd.Series(0.0, index=pairs.index)), errors="coerce").fillna(0.0)
    out["aligned"] = out["aligned_frames"] > 0
    return out
