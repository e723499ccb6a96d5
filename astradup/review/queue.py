"""The review queue: the latest match run's pairs that still need a person, most valuable first.

A decision is worth what it settles: how unsure the scorer is about the pair times the bytes at
stake (the smaller file, which is what removing one copy gives back). Uncertainty is 1 at the
near-duplicate boundary (``fusion.near`` of the match run's config) and falls linearly to
:data:`MIN_UNCERTAINTY` at :data:`UNCERTAINTY_WIDTH` away from it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from astradup.store.decisions import decision_rows
from astradup.store.store import Store

UNCERTAINTY_WIDTH = 0.15  # fused-score distance from the boundary at which the scorer is sure
MIN_UNCERTAINTY = 0.05  # sure pairs keep a small value, so large files still surface eventually
QUEUE_COLUMNS = [
    "a", "b", "score", "label", "visual", "audio", "metadata", "confidence", "a_start", "a_end", "b_start",
    "b_end", "partial", "explanation", "a_size", "b_size", "bytes", "uncertainty", "value", "skipped",
]


def uncertainty(score: np.ndarray | pd.Series, boundary: float) -> np.ndarray:
    """How unsure the scorer is: 1 at ``boundary``, down to MIN_UNCERTAINTY far from it."""
    s = np.asarray(score, dtype=np.float64)
    return np.clip(1.0 - np.abs(s - boundary) / UNCERTAINTY_WIDTH, MIN_UNCERTAINTY, 1.0)


def _boundary(st: Store, run_id: str) -> float:
    from astradup.config import FusionConfig

    row = st.con.execute("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchone()
    try:
        return float(json.loads(row[0])["fusion"]["near"])
    except (TypeError, KeyError, ValueError):
        return FusionConfig().near


def review_queue(store: Store, limit: int | None = None) -> pd.DataFrame:
    """Pairs of the latest match run without a standing decision, ordered by value.

    Columns: a, b, score, label, visual, audio, metadata, confidence, a_start, a_end, b_start,
    b_end, partial, explanation (JSON text, as in pairs.csv), a_size, b_size (bytes), bytes (the
    smaller of the two), uncertainty, value (uncertainty x bytes), skipped (the latest decision
    was ``skip``: such pairs come after every undecided one). ``attrs["run_id"]`` names the run.
    """
    pairs = store.pairs()
    if not len(pairs):
        return pd.DataFrame(columns=QUEUE_COLUMNS)
    run_id = str(pairs["run_id"].iloc[0])
    d = decision_rows(store, latest=True)
    standing = {(a, b) for a, b, s in zip(d["a"], d["b"], d["standing"].astype(bool)) if s}
    skipped = {(a, b) for a, b, dec in zip(d["a"], d["b"], d["decision"]) if dec == "skip"}
    keys = list(zip(pairs["a"], pairs["b"]))
    df = pairs[[k not in standing for k in keys]].copy()
    sizes = store.sql("SELECT rel_path, size FROM videos").set_index("rel_path")["size"]
    sizes = sizes[~sizes.index.duplicated()]
    df["a_size"] = df["a"].map(sizes).astype("float64")
    df["b_size"] = df["b"].map(sizes).astype("float64")
    df["bytes"] = np.fmin(df["a_size"], df["b_size"]).fillna(0.0)
    df["uncertainty"] = uncertainty(df["score"], _boundary(store, run_id))
    df["value"] = df["uncertainty"] * df["bytes"]
    df["skipped"] = [k in skipped for k in zip(df["a"], df["b"])]
    df = df.sort_values(["skipped", "value", "score", "a", "b"], ascending=[True, False, False, True, True])
    out = df[QUEUE_COLUMNS].reset_index(drop=True)
    if limit is not None:
        out = out.head(int(limit))
    out.attrs["run_id"] = run_id
    return out
