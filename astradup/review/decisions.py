"""Reviewers' decisions about pairs: append-only, with who, when, and both files' fingerprints.

A decision names two videos of the store (absolute paths or paths relative to the media folder)
and one of :data:`DECISIONS`. It is recorded with the reviewer, the UTC time, and each file's
size, mtime and content hash as the store holds them, so it keeps applying (to later ``match``
runs, groups, plans and the review queue) only while both files are unchanged. A later decision
about the same pair supersedes an earlier one; nothing is ever updated or deleted, so the table
is also the history of who changed their mind.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import logging
import os
from typing import Any

import pandas as pd

from astradup.errors import ReviewError
from astradup.paths import to_text
from astradup.store.decisions import DECISION_COLUMNS, decision_rows, standing_decisions
from astradup.store.store import Store

log = logging.getLogger(__name__)

DECISIONS = ("duplicate", "not-duplicate", "skip")

__all__ = ["DECISIONS", "decisions", "find_video", "record_decision", "standing_decisions"]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def find_video(st: Store, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The store's row of one video, by absolute path or path relative to the media folder.

    Raises:
        ReviewError: the path is not an indexed video of this store.
    """
    p = os.fspath(path)
    if os.path.isabs(p):
        cands = [to_text(os.path.abspath(p)), to_text(os.path.realpath(p))]
        row = st.con.execute(
            "SELECT video_id, path, rel_path, size, mtime, content_hash FROM videos WHERE path IN (?, ?) LIMIT 1",
            cands).fetchone()
    else:
        rel = to_text(os.path.normpath(p))
        row = st.con.execute(
            "SELECT video_id, path, rel_path, size, mtime, content_hash FROM videos WHERE rel_path = ? LIMIT 1",
            [rel]).fetchone()
    if row is None:
        raise ReviewError(f"{p}: not an indexed video of the store {st.path} (index its folder first, "
                          "or give the path relative to the media folder as pairs.csv spells it)")
    keys = ("video_id", "path", "rel_path", "size", "mtime", "content_hash")
    return dict(zip(keys, row))


def record_decision(store: Store, a: str, b: str, decision: str, *, reviewer: str | None = None,
                    note: str | None = None) -> dict:
    """Append one decision about the pair (a, b) and return the row as a dict.

    Args:
        store: an open, writable :class:`~astradup.store.Store`.
        a, b: the two videos, absolute or relative to the store's media folder (either order).
        decision: one of :data:`DECISIONS`.
        reviewer: who decided (default: the login name of this process).
        note: free text kept with the decision.

    Raises:
        ReviewError: a path is not in the store, both name the same video, or the decision is
            unknown.
    """
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r} is unknown; choose one of {list(DECISIONS)}")
    va, vb = find_video(store, a), find_video(store, b)
    if va["video_id"] == vb["video_id"]:
        raise ReviewError(f"{a}: a decision needs two different videos, but both name {va['rel_path']}")
    if va["rel_path"] > vb["rel_path"]:
        va, vb = vb, va
    pair = _latest_pair(store, va["rel_path"], vb["rel_path"])
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        seq = int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM decisions").fetchone()[0])
        row = {
            "seq": seq, "a": va["rel_path"], "b": vb["rel_path"], "decision": decision,
            "reviewer": reviewer or _user(), "note": note,
            "time": _dt.datetime.now(_dt.UTC).replace(tzinfo=None),
            "a_path": va["path"], "b_path": vb["path"],
            "a_size": va["size"], "a_mtime": va["mtime"], "a_hash": va["content_hash"],
            "b_size": vb["size"], "b_mtime": vb["mtime"], "b_hash": vb["content_hash"],
            "run_id": pair.get("run_id"), "score": pair.get("score"), "label": pair.get("label"),
            "partial": pair.get("partial"),
        }
        con.execute(f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) VALUES ({', '.join('?' * len(DECISION_COLUMNS))})",
                    [row[c] for c in DECISION_COLUMNS])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    log.info("decision %s: %s | %s by %s", decision, row["a"], row["b"], row["reviewer"])
    return row


def _latest_pair(st: Store, a: str, b: str) -> dict[str, Any]:
    """The pair's row in the latest match run (score, label, partial, run_id), or {}."""
    p = st.pairs()
    if not len(p):
        return {}
    hit = p[((p["a"] == a) & (p["b"] == b)) | ((p["a"] == b) & (p["b"] == a))]
    if hit.empty:
        return {}
    r = hit.iloc[0]
    return {"run_id": r["run_id"], "score": float(r["score"]), "label": r["label"],
            "partial": None if pd.isna(r["partial"]) else bool(r["partial"])}


def decisions(store: Store, latest: bool = True) -> pd.DataFrame:
    """Recorded decisions, oldest first: the latest per pair (default) or all of them.

    Columns: a, b (relative paths, a < b), decision, reviewer, time (UTC), note, standing
    (still applies: latest, not ``skip``, both files unchanged), the model's score, label and
    partial flag for the pair when it was decided, each file's recorded size/mtime/hash, seq.
    """
    df = decision_rows(store, latest=latest)
    first = ["a", "b", "decision", "reviewer", "time", "note", "standing", "score", "label", "partial"]
    return df[first + [c for c in df.columns if c not in first]].reset_index(drop=True)
