"""Learning from reviewers: their decisions as labelled pairs, merged with generated truth.

A ``duplicate`` decision becomes a positive pair (``partial`` when the model saw a partial copy,
``exact`` when it called the pair exact, ``near`` otherwise), a ``not-duplicate`` decision a
``different`` pair; ``skip`` says nothing. Where a reviewer and the generator disagree about a
pair, the reviewer wins: the person looked at the videos.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from astradup.store.decisions import decision_rows
from astradup.store.store import Store

TRUTH_COLUMNS = ["a", "b", "relation", "transform", "group"]


def decisions_as_truth(decisions: pd.DataFrame, standing_only: bool = True) -> pd.DataFrame:
    """Truth rows (a, b, relation, transform="reviewed", group empty) from a decisions table
    (:func:`astradup.review.decisions`); with ``standing_only``, decisions about files that have
    changed since are left out."""
    if not len(decisions):
        return pd.DataFrame(columns=TRUTH_COLUMNS)
    d = decisions[decisions["decision"].isin(["duplicate", "not-duplicate"])]
    if standing_only and "standing" in d:
        d = d[d["standing"].astype(bool)]
    dup = d["decision"] == "duplicate"
    partial = d["partial"].fillna(False).astype(bool) if "partial" in d else False
    exact = d["label"].fillna("").eq("exact") if "label" in d else False
    relation = np.where(~dup, "different", np.where(partial, "partial", np.where(exact, "exact", "near")))
    return pd.DataFrame({"a": d["a"].to_numpy(), "b": d["b"].to_numpy(), "relation": relation,
                         "transform": "reviewed", "group": None})


def merge_truth(truth: pd.DataFrame, reviewed: pd.DataFrame) -> pd.DataFrame:
    """``truth`` with ``reviewed`` rows added; a reviewed pair replaces the truth's row for the
    same two videos (either order). ``truth.attrs`` (videos, video groups) are kept."""
    if not len(reviewed):
        return truth
    keys = {frozenset(p) for p in zip(reviewed["a"], reviewed["b"])}
    keep = [frozenset(p) not in keys for p in zip(truth["a"], truth["b"])]
    out = pd.concat([truth[keep], reviewed.reindex(columns=truth.columns.union(reviewed.columns, sort=False))],
                    ignore_index=True)
    out.attrs = dict(truth.attrs)
    return out


def reviewed_truth(store: str, truth: pd.DataFrame) -> pd.DataFrame:
    """The store's standing decisions merged into ``truth`` (see :func:`merge_truth`)."""
    with Store(store, read_only=True) as st:
        d = decision_rows(st, latest=True)
    return merge_truth(truth, decisions_as_truth(d))
