"""Train/validation split of a corpus, grouped so that copies of one source stay on one side."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from astradup.errors import ConfigError
from astradup.evaluation.io import check_truth
from astradup.labels import LINKED_RELATIONS

log = logging.getLogger(__name__)


def video_groups(truth: pd.DataFrame, videos: Iterable[str] | None = None) -> pd.Series:
    """Group id (0..k-1) of every video: connected components of "shares content" links.

    Two videos are linked when the truth's ``group`` column gives their pair a group (all videos
    of one group are linked), when ``truth.attrs["video_groups"]`` (``videos.csv``'s ``source``)
    gives them the same source (a source spelled as a corpus path is linked to that video), or
    when the truth relates them as exact, near, partial or similar. Unlinked videos
    (distractors) are groups of one.

    Returns:
        Series indexed by video path, sorted by path.
    """
    t = check_truth(truth)
    t.attrs = {}
    if videos is None:
        videos = truth.attrs.get("videos")
    attr_groups: dict[str, str] = truth.attrs.get("video_groups") or {}
    paths = pd.Index(
        pd.unique(np.concatenate([
            np.asarray(list(videos) if videos is not None else [], dtype=object),
            t["a"].to_numpy(dtype=object), t["b"].to_numpy(dtype=object),
            np.asarray(list(attr_groups), dtype=object),
        ]))
    ).sort_values()
    n = len(paths)
    # Each video is a node; each group or source label is an extra node its members link to.
    linked = t[t["relation"].isin(LINKED_RELATIONS)]
    ends_a = [paths.get_indexer(linked["a"])]
    ends_b = [paths.get_indexer(linked["b"])]
    members: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    if "group" in t.columns:
        g = t[t["group"].notna() & (t["group"].astype(str).str.strip() != "")]
        for side in ("a", "b"):
            members.append(paths.get_indexer(g[side]))
            labels.append(g["group"].astype(str).to_numpy(dtype=object))
    if attr_groups:
        members.append(paths.get_indexer(pd.Index(list(attr_groups))))
        labels.append(np.asarray([str(v) for v in attr_groups.values()], dtype=object))
    n_nodes = n
    if members:
        label_codes, label_names = pd.factorize(np.concatenate(labels))
        ends_a.append(np.concatenate(members))
        ends_b.append(n + label_codes)
        # a source named by its path (copies list the original) is linked to that video too
        named = paths.get_indexer(label_names)
        ends_a.append(named[named >= 0])
        ends_b.append(n + np.flatnonzero(named >= 0))
        n_nodes += len(label_names)

    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    s = np.concatenate(ends_a).astype(np.int64)
    d = np.concatenate(ends_b).astype(np.int64)
    graph = coo_matrix((np.ones(len(s), dtype=np.int8), (s, d)), shape=(n_nodes, n_nodes))
    _, comp = connected_components(graph, directed=False)
    codes, _ = pd.factorize(comp[:n])
    return pd.Series(codes, index=paths, name="group")


def split_by_group(
    truth: pd.DataFrame,
    videos: Iterable[str] | None = None,
    val_fraction: float = 0.5,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """Split the corpus videos into (train, validation), never splitting a group.

    Groups come from :func:`video_groups`. They are shuffled with ``seed`` and each goes to the
    side that is furthest below its share of videos, so the validation side holds about
    ``val_fraction`` of the videos and distractors spread randomly over both.

    Args:
        truth: ground-truth table (its ``attrs`` may carry ``videos`` and ``video_groups``).
        videos: every corpus path; defaults to ``truth.attrs["videos"]``, else the truth's paths.
        val_fraction: share of videos on the validation side, in (0, 1).
        seed: shuffling seed.

    Returns:
        Two sorted lists of paths.
    """
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be in (0, 1), but got {val_fraction}")
    groups = video_groups(truth, videos)
    sizes = np.bincount(groups.to_numpy())
    order = np.random.default_rng(seed).permutation(len(sizes))
    target = np.array([1.0 - val_fraction, val_fraction])
    count = np.zeros(2)
    side = np.zeros(len(sizes), dtype=np.int64)
    for g in order:
        s = int(np.argmin(count / target))
        side[g] = s
        count[s] += sizes[g]
    on_val = side[groups.to_numpy()] == 1
    if on_val.all() or not on_val.any():
        log.warning("the split put every video on one side (%d group(s)); metrics of the other are empty",
                    len(sizes))
    paths = groups.index.to_numpy(dtype=object)
    return [str(p) for p in paths[~on_val]], [str(p) for p in paths[on_val]]
