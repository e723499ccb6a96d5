"""Duplicate groups from the latest match run, without daisy chains.

A pair is a duplicate edge when a reviewer's standing decision says ``duplicate``, or when the
model labelled it ``exact`` or ``near`` and no standing decision says ``not-duplicate``. Partial
copies (a clip inside a longer video) are not removable duplicates: they are listed apart, under
the group of the longer video, unless a reviewer marked the pair ``duplicate``.

Grouping is keeper-centred, not transitive: the most connected video still ungrouped becomes a
group's *center* and only its direct duplicates join it as *members*, so A~B and B~C never puts A
and C together on the strength of B alone. A video whose duplicates were all taken by other
groups is listed as *chained* (with the video it matches) and is never removed. The plan
(:mod:`astradup.review.plan`) then picks the keeper among center and members and removes only
members that match the keeper directly.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict

import numpy as np
import pandas as pd

from astradup.labels import DUPLICATE_LABELS
from astradup.store.decisions import decision_rows, has_table
from astradup.store.store import Store

log = logging.getLogger(__name__)

ROLES = ("center", "member", "partial", "chained")
GROUP_COLUMNS = [
    "group", "role", "path", "match", "score", "label", "decision", "size", "duration", "width", "height",
    "bit_rate", "mtime", "content_hash", "abs_path", "returned",
]


def duplicate_edges(pairs: pd.DataFrame, standing: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split pairs into (full duplicate edges, partial-copy edges), honouring standing decisions.

    Both frames have a, b, score, label, decision; ``standing`` has a, b, decision (a < b).
    """
    cols = ["a", "b", "score", "label", "decision"]
    if not len(pairs):
        empty = pd.DataFrame(columns=cols)
        return empty, empty.copy()
    lookup = {(a, b): d for a, b, d in standing[["a", "b", "decision"]].itertuples(index=False)}
    p = pairs.copy()
    p["decision"] = [lookup.get((min(a, b), max(a, b)), "") for a, b in zip(p["a"], p["b"])]
    model_dup = p["label"].isin(DUPLICATE_LABELS) & (p["decision"] != "not-duplicate")
    said_dup = p["decision"] == "duplicate"
    partial = p["partial"].fillna(False).astype(bool)
    full = p[said_dup | (model_dup & ~partial)]
    part = p[model_dup & partial & ~said_dup]
    # one row per unordered pair (a match run lists each once; keep the best if not)
    def best(df: pd.DataFrame) -> pd.DataFrame:
        return df.sort_values("score", ascending=False).drop_duplicates(["a", "b"])[cols].reset_index(drop=True)
    return best(full), best(part)


def known_removed(store: Store) -> pd.DataFrame:
    """Indexed videos that are byte copies (same size and content hash) of a file AstraDup moved
    out of the library: rel_path, path, removed (the moved file's old path), action_id."""
    if not has_table(store, "tombstones"):
        return pd.DataFrame(columns=["rel_path", "path", "removed", "action_id"])
    return store.sql("""
        SELECT v.rel_path, v.path, t.path AS removed, t.action_id
        FROM videos v JOIN tombstones t ON v.size = t.size AND v.content_hash = t.content_hash
        ORDER BY v.rel_path""")


def build_groups(full: pd.DataFrame, partial: pd.DataFrame, videos: pd.DataFrame) -> pd.DataFrame:
    """The grouping itself, a pure function over tables (see the module docstring).

    Args:
        full, partial: edges from :func:`duplicate_edges` (a, b, score, label, decision).
        videos: one row per video, indexed by rel_path, with size and duration (others optional).

    Returns:
        One row per (group, video, role), groups numbered from 1 in order of size of the group.
    """
    adj: dict[str, dict[str, tuple[float, str, str]]] = defaultdict(dict)
    for a, b, score, label, dec in full[["a", "b", "score", "label", "decision"]].itertuples(index=False):
        adj[a][b] = adj[b][a] = (float(score), label, dec)
    size = videos["size"] if "size" in videos else pd.Series(dtype="float64")
    remaining = set(adj)
    groups: list[tuple[str, list[str]]] = []
    while remaining:
        left = frozenset(remaining)
        center = max(sorted(remaining), key=functools.partial(_rank, adj=adj, left=left, size=size))
        members = sorted(u for u in adj[center] if u in remaining)
        if not members:  # every duplicate of this video is already grouped: a chained video
            break
        groups.append((center, members))
        remaining -= {center, *members}
    where: dict[str, int] = {}
    rows: list[dict] = []
    for g, (center, members) in enumerate(groups, start=1):
        where[center] = g
        rows.append({"group": g, "role": "center", "path": center, "match": ""})
        for m in members:
            where[m] = g
            s, lab, dec = adj[center][m]
            rows.append({"group": g, "role": "member", "path": m, "match": center, "score": s, "label": lab, "decision": dec})
    for v in sorted(remaining):
        best = max((u for u in adj[v] if u in where), key=lambda u: adj[v][u][0])
        s, lab, dec = adj[v][best]
        rows.append({"group": where[best], "role": "chained", "path": v, "match": best, "score": s, "label": lab, "decision": dec})
    dur = videos["duration"] if "duration" in videos else pd.Series(dtype="float64")
    n_groups = len(groups)
    for a, b, score, label, dec in partial[["a", "b", "score", "label", "decision"]].itertuples(index=False):
        da, db = float(dur.get(a, np.nan) or np.nan), float(dur.get(b, np.nan) or np.nan)
        container, clip = (a, b) if (np.isnan(db) or (not np.isnan(da) and da >= db)) else (b, a)
        found = where.get(container)
        if found is None:
            n_groups += 1
            found = where[container] = n_groups
            rows.append({"group": found, "role": "center", "path": container, "match": ""})
        rows.append({"group": found, "role": "partial", "path": clip, "match": container, "score": float(score),
                     "label": label, "decision": dec})
    out = pd.DataFrame(rows, columns=["group", "role", "path", "match", "score", "label", "decision"])
    # a clip matched by several copies of one group is listed once, against its best match
    part_rows = out["role"] == "partial"
    best_part = out[part_rows].sort_values("score", ascending=False).drop_duplicates(["group", "path"])
    out = pd.concat([out[~part_rows], best_part])
    info = videos.reindex(out["path"])
    for c in ("size", "duration", "width", "height", "bit_rate", "mtime", "content_hash", "path"):
        out[c if c != "path" else "abs_path"] = info[c].to_numpy() if c in info else np.nan
    out["decision"] = out["decision"].fillna("")
    order = {r: i for i, r in enumerate(ROLES)}
    out["_r"] = out["role"].map(order)
    out = out.sort_values(["group", "_r", "path"]).drop(columns="_r").reset_index(drop=True)
    return out


def _rank(v: str, *, adj: dict, left: frozenset, size: pd.Series) -> tuple:
    """Center preference: most duplicates still ungrouped, then their summed score, then the
    larger file, then the alphabetically first path (deterministic)."""
    nb = [u for u in adj[v] if u in left]
    return (len(nb), sum(adj[v][u][0] for u in nb), float(size.get(v, 0) or 0), _neg(v))


def _neg(s: str) -> tuple:
    # max() picks the alphabetically first path among equals (deterministic)
    return tuple(-ord(c) for c in s)


def duplicate_groups(store: Store) -> pd.DataFrame:
    """Duplicate groups of the latest match run (see :func:`groups_and_edges`)."""
    return groups_and_edges(store)[0]


def groups_and_edges(store: Store) -> tuple[pd.DataFrame, dict[frozenset, tuple[float, str, str]]]:
    """Duplicate groups of the latest match run, with reviewers' standing decisions applied, and
    the full duplicate edges behind them ({frozenset((a, b)): (score, label, decision)}).

    Columns: group, role (center | member | partial | chained), path (relative to the media
    folder), match (the video it duplicates: the center for members, the longer video for
    partial copies), score, label, decision, size (bytes), duration (s), width, height,
    bit_rate, mtime, content_hash (as indexed), abs_path, returned (old path of a file AstraDup
    removed that this one is a byte copy of, else empty). ``attrs["run_id"]`` names the match run.
    """
    pairs = store.pairs()
    d = decision_rows(store, latest=True)
    standing = d[d["standing"].astype(bool)]
    full, part = duplicate_edges(pairs, standing)
    videos = store.sql("SELECT rel_path, path, size, duration, width, height, bit_rate, mtime, content_hash FROM videos")
    videos = videos.drop_duplicates("rel_path").set_index("rel_path")
    out = build_groups(full, part, videos)
    back = known_removed(store)
    ret = dict(zip(back["rel_path"], back["removed"]))
    out["returned"] = [ret.get(p, "") for p in out["path"]]
    out = out[GROUP_COLUMNS]
    out.attrs["run_id"] = str(pairs["run_id"].iloc[0]) if len(pairs) else None
    edges = {frozenset((a, b)): (float(s), lab, dec)
             for a, b, s, lab, dec in full[["a", "b", "score", "label", "decision"]].itertuples(index=False)}
    return out, edges
