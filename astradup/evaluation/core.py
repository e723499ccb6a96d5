"""``evaluate``: join the truth and the pairs, then compute the metrics described in
:mod:`astradup.evaluation`."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astradup.evaluation.io import (
    DUPLICATE_LABELS,
    LABELS,
    MODALITY_COLUMNS,
    POSITIVE_RELATIONS,
    SEGMENT_COLUMNS,
    check_pairs,
    check_truth,
)
from astradup.evaluation.metrics import Ranking, interval_iou, ranking
from astradup.labels import NO_MATCH, RELATION_TO_LABEL

log = logging.getLogger(__name__)

#: Truth relation -> confusion-matrix class (partial copies count as near duplicates).
TRUTH_CLASS = RELATION_TO_LABEL
PR_CURVE_POINTS = 200


@dataclass
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes:
        metrics: scalar metrics (see :mod:`astradup.evaluation` for definitions); NaN where a
            metric has no pairs to average over.
        confusion: 4x4 counts, index = truth class, columns = predicted class, summing to
            ``n_videos choose 2``.
        per_transform: recall of each (transform, relation) among positive truth pairs.
        pr_curve: precision and recall of ``score >= threshold`` at every distinct score.
        joined: one row per pair in the truth or the pairs table.
    """

    metrics: dict[str, float | int]
    confusion: pd.DataFrame
    per_transform: pd.DataFrame
    pr_curve: pd.DataFrame
    joined: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: metrics (NaN -> None), confusion, per-transform recall and the PR
        curve thinned to at most 200 evenly spaced points (the first and last always kept)."""
        curve = self.pr_curve
        if len(curve) > PR_CURVE_POINTS:
            idx = np.unique(np.linspace(0, len(curve) - 1, PR_CURVE_POINTS).round().astype(int))
            curve = curve.iloc[idx]
        return {
            "metrics": {k: json_value(v) for k, v in self.metrics.items()},
            "confusion": {
                str(t): {str(p): int(self.confusion.loc[t, p]) for p in self.confusion.columns}
                for t in self.confusion.index
            },
            "per_transform": [
                {k: json_value(v) for k, v in row.items()} for row in self.per_transform.to_dict("records")
            ],
            "pr_curve": [{k: json_value(v) for k, v in row.items()} for row in curve.to_dict("records")],
        }

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def table(self) -> str:
        """Plain-text tables: the metrics, the confusion matrix and per-transform recall."""
        width = max(len(k) for k in self.metrics)
        lines = ["Metrics"]
        for k, v in self.metrics.items():
            shown = _fmt(v)
            lines.append(f"  {k:<{width}}  {shown:>12}")
        lines += ["", "Confusion (rows = truth, columns = predicted)"]
        lines += ["  " + line for line in self.confusion.to_string().splitlines()]
        if len(self.per_transform):
            pt = self.per_transform
            title = "Recall per transform (positive truth pairs)"
            combos = pt["transform"].astype(str).str.contains("+", regex=False)
            if combos.any() and (~combos).sum() >= 5 and len(pt) > 40:
                # many copy-vs-copy combinations: show single transforms; the report has the rest
                title += f"; {int(combos.sum())} combinations of two transforms omitted"
                pt = pt[~combos]
            lines += ["", title]
            pt = pt.assign(
                transform=pt["transform"].replace("", "-"),
                recall=pt["recall"].map("{:.3f}".format),
            )
            lines += ["  " + line for line in pt.to_string(index=False).splitlines()]
        return "\n".join(lines)


def _fmt(v: float | int) -> str:
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "n/a"
    return f"{v:.3e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"


def json_value(v: Any) -> Any:
    """``v`` as a plain JSON value: numpy scalars unwrapped, NaN as None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def join(truth: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per unordered pair in ``truth`` or ``pairs``, with ``a < b``.

    Duplicated pairs keep the highest score (pairs) or the first row (truth, with a warning when
    the relations disagree). Self-pairs are dropped with a warning. Columns: ``a, b, relation``
    (``"different"`` when not in the truth), ``truth_class, transform, group, label``
    (``"different"`` when not in the pairs), ``score`` (NaN when not in the pairs), ``confidence``
    and the modality scores where the pairs have them, ``true_*`` and ``pred_*`` segment columns,
    ``tiou``, ``in_truth, in_pairs, positive, pred_duplicate``.
    """
    t = check_truth(truth)
    p = check_pairs(pairs)
    t.attrs, p.attrs = {}, {}  # attrs are deep-copied by every pandas operation
    codes, uniques = pd.factorize(pd.concat([t["a"], t["b"], p["a"], p["b"]], ignore_index=True), sort=True)
    n = max(len(uniques), 1)
    nt, np_ = len(t), len(p)
    if nt and np_ and not np.intersect1d(codes[: 2 * nt], codes[2 * nt :]).size:
        log.warning("the truth and the pairs name no video in common (e.g. %r vs %r): are the paths "
                    "spelled the same way (relative to the same folder)?", t["a"].iloc[0], p["a"].iloc[0])
    t_key = _pair_key(t, codes[:nt], codes[nt : 2 * nt], n, "truth")
    p_key = _pair_key(p, codes[2 * nt : 2 * nt + np_], codes[2 * nt + np_ :], n, "pairs")

    t = t.assign(key=t_key)[t_key >= 0]
    dup = t["key"].duplicated(keep=False)
    if dup.any():
        conflicts = t[dup].groupby("key")["relation"].nunique().gt(1).sum()
        log.warning("truth lists %d pair(s) more than once (%d with different relations); the first row wins",
                    int(t[dup]["key"].nunique()), int(conflicts))
        t = t.drop_duplicates("key", keep="first")
    p = p.assign(key=p_key)[p_key >= 0]
    p = p.sort_values("score", ascending=False, kind="stable").drop_duplicates("key", keep="first")

    t_cols = ["key", "relation", "transform"] + [c for c in ("group",) if c in t.columns]
    tt = t[t_cols].assign(in_truth=True)
    for c in SEGMENT_COLUMNS:
        tt["true_" + c] = t[c].to_numpy() if c in t.columns else np.nan
    p_cols = ["key", "score", "label"] + [c for c in ("confidence", *MODALITY_COLUMNS) if c in p.columns]
    pp = p[p_cols].assign(in_pairs=True)
    for c in SEGMENT_COLUMNS:
        pp["pred_" + c] = p[c].to_numpy() if c in p.columns else np.nan

    j = tt.merge(pp, on="key", how="outer", sort=True)
    key = j.pop("key").to_numpy(dtype=np.int64)
    j["a"] = uniques.to_numpy()[key // n]
    j["b"] = uniques.to_numpy()[key % n]
    j["in_truth"] = j["in_truth"].notna()
    j["in_pairs"] = j["in_pairs"].notna()
    j["relation"] = j["relation"].fillna(NO_MATCH)
    j["transform"] = j["transform"].fillna("")
    j["truth_class"] = j["relation"].map(TRUTH_CLASS)
    j["label"] = j["label"].fillna(NO_MATCH)
    j["positive"] = j["relation"].isin(POSITIVE_RELATIONS).to_numpy()
    j["pred_duplicate"] = j["label"].isin(DUPLICATE_LABELS).to_numpy()
    j["tiou"] = pair_tiou(j)
    first = ["a", "b", "relation", "truth_class", "transform", "group", "label", "score", "confidence",
             *MODALITY_COLUMNS, "positive", "pred_duplicate", "in_truth", "in_pairs"]
    order = [c for c in first if c in j.columns] + [c for c in j.columns if c not in first]
    return j[order].reset_index(drop=True)


def _pair_key(df: pd.DataFrame, ca: np.ndarray, cb: np.ndarray, n: int, where: str) -> np.ndarray:
    """``lo * n + hi`` per row (codes sort like the paths, so lo is the smaller path); -1 for a
    self-pair. Swaps the segment columns of rows whose sides were swapped, in place."""
    swap = ca > cb
    if swap.any():
        for x, y in (("a_start", "b_start"), ("a_end", "b_end")):
            if x in df.columns and y in df.columns:
                xs, ys = df[x].to_numpy(copy=True), df[y].to_numpy(copy=True)
                df[x], df[y] = np.where(swap, ys, xs), np.where(swap, xs, ys)
    same = ca == cb
    if same.any():
        log.warning("%s: dropping %d self-pair(s) (a == b)", where, int(same.sum()))
    key = np.minimum(ca, cb).astype(np.int64) * n + np.maximum(ca, cb)
    return np.where(same, -1, key)


def pair_tiou(j: pd.DataFrame) -> np.ndarray:
    """Temporal IoU of the predicted vs the true copied range, averaged over the two videos.

    NaN where the truth has no segment; 0 where the truth has one and the prediction has none.
    """
    true = [j["true_" + c].to_numpy(dtype=np.float64) for c in SEGMENT_COLUMNS]
    pred = [j["pred_" + c].to_numpy(dtype=np.float64) for c in SEGMENT_COLUMNS]
    iou = (interval_iou(true[0], true[1], pred[0], pred[1]) + interval_iou(true[2], true[3], pred[2], pred[3])) / 2
    has_true = ~np.isnan(np.column_stack(true)).any(axis=1)
    return np.where(has_true, np.nan_to_num(iou, nan=0.0), np.nan)


def corpus_size(videos: Iterable[str] | None, joined: pd.DataFrame) -> int:
    """Number of videos in the corpus: ``videos`` plus any path the tables name outside it.

    Without ``videos`` the paths the tables name are all that is known, which under-counts
    videos that appear in no pair; a warning says so.
    """
    seen = pd.Index(pd.concat([joined["a"], joined["b"]]).unique())
    if videos is None:
        log.warning(
            "no video list given (videos= or videos.csv beside the truth); counting the %d videos "
            "named in the truth and pairs, so fpr and fp_per_1000 may be too high", len(seen)
        )
        return len(seen)
    known = pd.Index(pd.unique(np.asarray(list(videos), dtype=object)))
    extra = seen.difference(known)
    if len(extra):
        log.warning("%d video(s) in the truth or pairs are not in the video list, e.g. %r; counting them too",
                    len(extra), list(extra[:3]))
    return len(known) + len(extra)


def rank_pairs(j: pd.DataFrame) -> Ranking:
    """µAP and the precision-recall curve of the reported pairs in a joined table."""
    in_pairs = j["in_pairs"].to_numpy(dtype=bool)
    pos = j["positive"].to_numpy(dtype=bool)
    return ranking(j["score"].to_numpy(dtype=np.float64)[in_pairs], pos[in_pairs], int(pos.sum()))


def scalar_metrics(j: pd.DataFrame, n_videos: int, ranked: Ranking | None = None) -> dict[str, float | int]:
    """The scalar metrics of a joined table (see :mod:`astradup.evaluation`); ``ranked`` is
    :func:`rank_pairs` of ``j`` when the caller already has it."""
    ranked = rank_pairs(j) if ranked is None else ranked
    pos = j["positive"].to_numpy(dtype=bool)
    pred = j["pred_duplicate"].to_numpy(dtype=bool)
    n_pos = int(pos.sum())
    n_total = n_videos * (n_videos - 1) // 2
    n_neg = n_total - n_pos
    tp = int((pos & pred).sum())
    fp = int((~pos & pred).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / n_pos if n_pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    partial = (j["relation"] == "partial").to_numpy()
    tiou = j["tiou"].to_numpy(dtype=np.float64)
    tiou_rows = pos & pred & ~np.isnan(tiou)
    return {
        "micro_ap": ranked.average_precision,
        "recall_at_p99": ranked.recall_at_precision(0.99),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fp / n_neg if n_neg > 0 else 0.0,
        "fp_per_1000": 1000.0 * fp / n_videos if n_videos else 0.0,
        "partial_recall": float(pred[partial].mean()) if partial.any() else math.nan,
        "mean_tiou": float(tiou[tiou_rows].mean()) if tiou_rows.any() else math.nan,
        "n_videos": int(n_videos),
        "n_pairs_total": int(n_total),
        "n_positive": n_pos,
        "n_negative": int(n_neg),
        "n_pred_duplicate": int(pred.sum()),
    }


def confusion_matrix(j: pd.DataFrame, n_videos: int) -> pd.DataFrame:
    """4x4 counts (truth class x predicted label) that sum to ``n_videos choose 2``: pairs in
    neither table are added to (different, different)."""
    t = pd.Categorical(j["truth_class"], categories=LABELS).codes.astype(np.int64)
    p = pd.Categorical(j["label"], categories=LABELS).codes.astype(np.int64)
    counts = np.bincount(t * len(LABELS) + p, minlength=len(LABELS) ** 2).reshape(len(LABELS), len(LABELS))
    counts[-1, -1] += n_videos * (n_videos - 1) // 2 - len(j)
    return pd.DataFrame(
        counts, index=pd.Index(LABELS, name="truth"), columns=pd.Index(LABELS, name="predicted")
    )


def per_transform_recall(j: pd.DataFrame) -> pd.DataFrame:
    """Recall per (transform, relation) over the positive truth pairs."""
    pos = j[j["positive"]]
    out = (
        pos.groupby(["transform", "relation"], sort=True)["pred_duplicate"]
        .agg(n="size", recalled="sum")
        .reset_index()
    )
    out["n"] = out["n"].astype(np.int64)
    out["recalled"] = out["recalled"].astype(np.int64)
    out["recall"] = (out["recalled"] / out["n"]).astype(np.float64)
    return out


def evaluate(truth: pd.DataFrame, pairs: pd.DataFrame, videos: list[str] | None = None) -> EvalResult:
    """Score ``pairs`` (what a run reported) against ``truth`` (what is known).

    Args:
        truth: ground-truth table (see :mod:`astradup.evaluation.io`).
        pairs: reported pairs with ``score`` and ``label``.
        videos: every video path in the corpus; defaults to ``truth.attrs["videos"]`` (from
            ``videos.csv``), else the paths named in either table (with a warning).

    Example:
        >>> truth = pd.DataFrame({"a": ["x"], "b": ["y"], "relation": ["near"]})
        >>> pairs = pd.DataFrame({"a": ["y"], "b": ["x"], "score": [0.9], "label": ["near"]})
        >>> evaluate(truth, pairs, videos=["x", "y", "z"]).metrics["f1"]
        1.0
    """
    if videos is None:
        videos = truth.attrs.get("videos")
    j = join(truth, pairs)
    n_videos = corpus_size(videos, j)
    ranked = rank_pairs(j)
    curve = pd.DataFrame({"threshold": ranked.thresholds, "precision": ranked.precision, "recall": ranked.recall})
    return EvalResult(
        metrics=scalar_metrics(j, n_videos, ranked),
        confusion=confusion_matrix(j, n_videos),
        per_transform=per_transform_recall(j),
        pr_curve=curve,
        joined=j,
    )
