"""Reviewers' decisions as the store keeps them (schema 2): read-side queries shared by matching
(which marks pairs with their standing decision) and :mod:`astradup.review` (which writes them).

A decision *stands* while it is the latest one for its pair, is ``duplicate`` or
``not-duplicate`` (``skip`` withdraws an earlier one), and both files are unchanged since it was
made: the store still holds them with the size, mtime and content hash recorded with it.
"""

from __future__ import annotations

import pandas as pd

from astradup.store.store import Store

DECISION_COLUMNS = [
    "seq", "a", "b", "decision", "reviewer", "note", "time", "a_path", "b_path", "a_size", "a_mtime",
    "a_hash", "b_size", "b_mtime", "b_hash", "run_id", "score", "label", "partial",
]


def has_table(st: Store, name: str) -> bool:
    """Whether the store has table ``name`` (a read-only store of an older schema may not)."""
    row = st.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()
    return bool(row and row[0])


def decision_rows(st: Store, latest: bool = True) -> pd.DataFrame:
    """Every decision (``latest=False``) or the latest per pair, oldest first, with a boolean
    ``standing`` column (see the module docstring)."""
    if not has_table(st, "decisions"):
        return pd.DataFrame(columns=[*DECISION_COLUMNS, "standing"])
    where = "QUALIFY row_number() OVER (PARTITION BY a, b ORDER BY seq DESC) = 1" if latest else ""
    return st.sql(f"""
        WITH d AS (SELECT * FROM decisions {where}),
        latest AS (SELECT a, b, max(seq) AS seq FROM decisions GROUP BY a, b)
        SELECT d.*, (d.seq = latest.seq AND d.decision <> 'skip'
                     AND va.video_id IS NOT NULL AND vb.video_id IS NOT NULL
                     AND va.size = d.a_size AND abs(va.mtime - d.a_mtime) < 1e-6 AND va.content_hash = d.a_hash
                     AND vb.size = d.b_size AND abs(vb.mtime - d.b_mtime) < 1e-6 AND vb.content_hash = d.b_hash)
                    IS TRUE AS standing
        FROM d JOIN latest USING (a, b)
        LEFT JOIN videos va ON va.rel_path = d.a
        LEFT JOIN videos vb ON vb.rel_path = d.b
        ORDER BY d.seq""")


def standing_decisions(st: Store) -> pd.DataFrame:
    """a, b, decision of every standing decision (``duplicate`` or ``not-duplicate``)."""
    df = decision_rows(st, latest=True)
    return df.loc[df["standing"].astype(bool), ["a", "b", "decision"]].reset_index(drop=True)


def mark_decisions(st: Store, pairs: pd.DataFrame) -> pd.Series:
    """The standing decision of each row of ``pairs`` (a, b relative paths in either order), or
    ``""`` when none stands: the ``decision`` column of pairs.csv."""
    if not len(pairs):
        return pd.Series([], index=pairs.index, dtype=object, name="decision")
    d = standing_decisions(st)
    lookup = {(a, b): dec for a, b, dec in d.itertuples(index=False)}
    lo = [min(a, b) for a, b in zip(pairs["a"].astype(str), pairs["b"].astype(str))]
    hi = [max(a, b) for a, b in zip(pairs["a"].astype(str), pairs["b"].astype(str))]
    return pd.Series([lookup.get(k, "") for k in zip(lo, hi)], index=pairs.index, dtype=object, name="decision")
