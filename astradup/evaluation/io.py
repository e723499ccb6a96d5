"""Reading and checking the two tables evaluation works on: the ground truth and the pairs.

Ground truth (``ground_truth.csv``), one row per labelled pair:

=============  ==========================================================================
``a``, ``b``   video paths, spelled exactly as in ``pairs.csv`` and ``videos.csv``
``relation``   ``exact | near | partial | similar | different``
``transform``  optional: how ``b`` was made from ``a`` (``"crop"``, ``"reencode+speed"``)
``group``      optional: the source both videos come from (keeps copies on one side of a split)
``a_start``,   optional: the copied range in each video (seconds); all four or none
``a_end``,
``b_start``,
``b_end``
=============  ==========================================================================

``videos.csv`` beside it, if present, lists the whole corpus (column ``path``, optional
``source``: the source a copy was made from, empty for distractors). Its paths become
``truth.attrs["videos"]`` (so false-positive rates count every pair in the corpus) and its sources
``truth.attrs["video_groups"]`` (a ``{path: source}`` mapping used by the tuning split).

Pairs (``pairs.csv``), one row per reported pair: ``a``, ``b``, ``score`` (fused, in [0, 1]),
``label`` (``exact | near | similar | different``), and optionally ``confidence``, the per-modality
scores ``visual``, ``audio``, ``metadata`` (empty = missing) and the matched range as
``a_start, a_end, b_start, b_end`` (seconds) or as a JSON ``segments`` column
(``[[a_start, a_end, b_start, b_end], ...]``; several segments are reduced to their hull per side).

``video_a``/``video_b`` and ``path_a``/``path_b`` are accepted for ``a``/``b``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from astradup.errors import AstradupError
from astradup.labels import (
    DUPLICATE_LABELS,
    LABELS,
    MODALITIES,
    POSITIVE_RELATIONS,
    RELATIONS,
    SEGMENT_COLUMNS,
)

log = logging.getLogger(__name__)

MODALITY_COLUMNS = MODALITIES
__all__ = ["DUPLICATE_LABELS", "LABELS", "MODALITY_COLUMNS", "POSITIVE_RELATIONS", "RELATIONS", "SEGMENT_COLUMNS"]
_KEY_ALIASES = {"video_a": "a", "video_b": "b", "path_a": "a", "path_b": "b"}


class TableError(AstradupError, ValueError):
    """A ground-truth, pairs or videos table is missing a column or holds a value out of range."""


def load_truth(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``ground_truth.csv`` (or ``.parquet``), and ``videos.csv`` beside it if present.

    Returns:
        The checked truth table. ``attrs["videos"]`` lists every corpus path and
        ``attrs["video_groups"]`` maps a path to its source, when ``videos.csv`` exists.
    """
    p = Path(path)
    truth = check_truth(_read_table(p), where=str(p))
    videos_csv = p.with_name("videos.csv")
    if videos_csv.is_file():
        videos, groups = read_videos(videos_csv)
        truth.attrs["videos"] = videos
        if groups:
            truth.attrs["video_groups"] = groups
    return truth


def read_videos(path: str | os.PathLike[str]) -> tuple[list[str], dict[str, str]]:
    """Read ``videos.csv``: (every path, ``{path: source}`` for rows with a non-empty source)."""
    p = Path(path)
    df = _read_table(p)
    col = "path" if "path" in df.columns else "video" if "video" in df.columns else None
    if col is None:
        raise TableError(f"{p}: needs a 'path' column, but has {list(df.columns)}")
    paths = df[col].astype(str)
    groups: dict[str, str] = {}
    src_col = "source" if "source" in df.columns else "group" if "group" in df.columns else None
    if src_col is not None:
        src = df[src_col]
        ok = src.notna() & (src.astype(str).str.strip() != "")
        groups = dict(zip(paths[ok], src[ok].astype(str), strict=True))
    return paths.tolist(), groups


def load_pairs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``pairs.csv`` (or ``.parquet``) and check its columns and values."""
    p = Path(path)
    return check_pairs(_read_table(p), where=str(p))


def _read_table(p: Path) -> pd.DataFrame:
    if not p.is_file():
        raise TableError(f"{p}: file does not exist")
    try:
        if p.suffix.lower() == ".parquet":
            return pd.read_parquet(p)
        return pd.read_csv(p, dtype={k: str for k in ("a", "b", *_KEY_ALIASES, "path", "video")})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise TableError(f"{p}: cannot read table ({exc})") from exc


def _keys(df: pd.DataFrame, where: str, required: tuple[str, ...]) -> pd.DataFrame:
    df = df.rename(columns={k: v for k, v in _KEY_ALIASES.items() if k in df.columns})
    missing = [c for c in ("a", "b", *required) if c not in df.columns]
    if missing:
        raise TableError(f"{where}: missing column(s) {missing}; has {list(df.columns)}")
    if df["a"].isna().any() or df["b"].isna().any():
        raise TableError(f"{where}: empty video path in column 'a' or 'b'")
    df["a"] = df["a"].astype(str)
    df["b"] = df["b"].astype(str)
    return df


def _vocabulary(s: pd.Series, allowed: tuple[str, ...], where: str, col: str) -> pd.Series:
    s = s.astype(str).str.strip().str.lower()
    bad = sorted(set(s.unique()) - set(allowed))
    if bad:
        raise TableError(f"{where}: column {col!r} has unknown value(s) {bad[:5]}; expected one of {list(allowed)}")
    return s


def _segments_from_json(col: pd.Series, where: str) -> pd.DataFrame:
    """Hull of each row's JSON segment list, per side; empty or missing -> NaN."""
    out = np.full((len(col), 4), np.nan)
    for i, text in enumerate(col.to_numpy(dtype=object)):
        if not isinstance(text, str) or not text.strip():
            continue
        try:
            segs = json.loads(text)
            rows = [[s[k] for k in SEGMENT_COLUMNS] if isinstance(s, dict) else list(s) for s in segs]
            arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
        except (ValueError, TypeError, KeyError) as exc:
            raise TableError(
                f"{where}: row {i}: 'segments' must be JSON [[a_start, a_end, b_start, b_end], ...], "
                f"but got {text[:60]!r}"
            ) from exc
        if len(arr):
            out[i] = [arr[:, 0].min(), arr[:, 1].max(), arr[:, 2].min(), arr[:, 3].max()]
    return pd.DataFrame(out, columns=list(SEGMENT_COLUMNS), index=col.index)


def _numeric(df: pd.DataFrame, cols: tuple[str, ...], where: str) -> None:
    for c in cols:
        if c in df.columns:
            try:
                df[c] = pd.to_numeric(df[c]).astype(np.float64)
            except (ValueError, TypeError) as exc:
                raise TableError(f"{where}: column {c!r} must be numeric ({exc})") from exc


def check_truth(truth: pd.DataFrame, where: str = "truth") -> pd.DataFrame:
    """Check and normalise a truth table (column aliases, lower-case relations, numeric segments).

    Returns a copy; ``attrs`` are kept.
    """
    df = _keys(truth.copy(), where, ("relation",))
    df["relation"] = _vocabulary(df["relation"], RELATIONS, where, "relation")
    df["transform"] = df["transform"].fillna("").astype(str) if "transform" in df.columns else ""
    _numeric(df, SEGMENT_COLUMNS, where)
    return df


def check_pairs(pairs: pd.DataFrame, where: str = "pairs") -> pd.DataFrame:
    """Check and normalise a pairs table. A missing ``label`` column is an error: labels come
    from the fusion bands the pairs were made with, which this table alone cannot know.

    Returns a copy; JSON ``segments`` become the four segment columns.
    """
    df = _keys(pairs.copy(), where, ("score", "label"))
    _numeric(df, ("score", "confidence", *MODALITY_COLUMNS, *SEGMENT_COLUMNS), where)
    if df["score"].isna().any():
        raise TableError(f"{where}: {int(df['score'].isna().sum())} row(s) have no score")
    df["label"] = _vocabulary(df["label"], LABELS, where, "label")
    if "segments" in df.columns and not set(SEGMENT_COLUMNS) <= set(df.columns):
        df[list(SEGMENT_COLUMNS)] = _segments_from_json(df["segments"], where)
    return df
