"""Keep rules and the storage plan: which copy of each group stays, which go, and why.

The plan decides and writes a file; it never touches media (:mod:`astradup.review.actions` acts
on a plan, after re-checking every file). Per group, the keeper is chosen among the center and
members (:mod:`astradup.review.groups`) by ordered rules: each rule keeps only the candidates
best by it, and the first rule that leaves one candidate decides. When the rules leave a tie,
the tie is reported and nothing in that group is removed.

A member is removed only when it duplicates the keeper directly, is not on legal hold, is not in
a protected folder, and is unchanged since it was indexed (size, mtime and content hash), as is
the keeper. Partial copies and chained videos are always kept.

Rules (names for ``rules:`` in the rules file, in the order given):

=============  ==================================================================================
``protected``  prefer a file inside a protected folder (``protect:``)
``resolution`` prefer the most pixels (width x height)
``bitrate``    prefer the highest bit rate (within 2 %)
``longest``    prefer the longest (within 0.5 s)
``oldest``     prefer the oldest mtime (within 1 s); ``newest`` the reverse
``largest``    prefer the largest file; ``smallest`` the reverse
``path: GLOB`` prefer paths (relative to the media folder) matching the glob, e.g. ``originals/*``
=============  ==================================================================================

A rules file (YAML)::

    rules: [protected, resolution, bitrate, longest, oldest]
    protect: [archive/masters]      # preferred as keepers, never removed
    hold: [legal/case-17]           # legal hold: never removed (files or folders)
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astradup.errors import MediaError, ReviewError
from astradup.media.files import content_hash
from astradup.paths import from_text, to_text
from astradup.review.groups import groups_and_edges
from astradup.store.store import Store

log = logging.getLogger(__name__)

PLAN_VERSION = 1
RULE_NAMES = ("protected", "resolution", "bitrate", "longest", "oldest", "newest", "largest", "smallest", "path")
DEFAULT_RULES: tuple[str, ...] = ("protected", "resolution", "bitrate", "longest", "oldest")
PLAN_CSV_COLUMNS = ["group", "path", "action", "reason", "keeper", "bytes", "role", "score", "label", "size",
                    "mtime_ns", "content_hash", "abs_path"]


@dataclass(frozen=True)
class KeepRules:
    """Ordered keep rules, protected folders and legal holds (paths absolute or relative to the
    media folder; a folder covers everything under it)."""

    rules: tuple[Any, ...] = DEFAULT_RULES
    protect: tuple[str, ...] = ()
    hold: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for r in self.rules:
            _rule_key(r)  # raises on an unknown rule

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None, hold: Iterable[str] = ()) -> KeepRules:
        """Read a YAML/JSON rules file (or the defaults when ``path`` is None), adding ``hold``."""
        data: dict[str, Any] = {}
        if path is not None:
            import yaml

            try:
                data = yaml.safe_load(Path(path).read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ReviewError(f"{path}: cannot read the rules file ({exc})") from exc
            if not isinstance(data, dict):
                raise ReviewError(f"{path}: a rules file is a mapping with rules, protect and hold, but got {type(data).__name__}")
            unknown = set(data) - {"rules", "protect", "hold"}
            if unknown:
                raise ReviewError(f"{path}: unknown key(s) {sorted(unknown)}; expected rules, protect, hold")
        rules = tuple(data.get("rules") or DEFAULT_RULES)
        return cls(rules=rules, protect=tuple(str(p) for p in data.get("protect") or ()),
                   hold=tuple(str(p) for p in [*(data.get("hold") or ()), *hold]))

    def to_dict(self) -> dict[str, Any]:
        return {"rules": list(self.rules), "protect": list(self.protect), "hold": list(self.hold)}


def _rule_key(rule: Any) -> tuple[str, Any]:
    if isinstance(rule, dict) and len(rule) == 1:
        (name, arg), = rule.items()
    elif isinstance(rule, str):
        name, arg = rule, None
    else:
        raise ReviewError(f"keep rule {rule!r} is not a name or a one-key mapping such as {{path: 'originals/*'}}")
    if name not in RULE_NAMES:
        raise ReviewError(f"keep rule {name!r} is unknown; choose from {list(RULE_NAMES)}")
    if (name == "path") != (arg is not None):
        raise ReviewError(f"keep rule {name!r}: only 'path' takes a value (path: GLOB), but got {rule!r}")
    return name, arg


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _absolute(paths: Iterable[str], media_root: str) -> list[str]:
    """Hold/protect paths as the store spells absolute paths (``media_root`` is in that form)."""
    return [os.path.normpath(to_text(p) if os.path.isabs(p) else os.path.join(media_root, to_text(p))) for p in paths]


def _best(cands: pd.DataFrame, values: pd.Series, tol: float, higher: bool) -> pd.DataFrame:
    """The candidates within ``tol`` (absolute, or relative when negative) of the best value."""
    v = values.astype("float64")
    if v.isna().all():
        return cands
    best = v.max() if higher else v.min()
    slack = abs(best) * -tol if tol < 0 else tol
    keep = (v >= best - slack) if higher else (v <= best + slack)
    return cands[keep.fillna(False).to_numpy()]


def _apply_rule(rule: Any, cands: pd.DataFrame, protect: list[str]) -> pd.DataFrame:
    name, arg = _rule_key(rule)
    if name == "protected":
        hit = cands["abs_path"].map(lambda p: _under(p, protect))
        return cands[hit.to_numpy()] if hit.any() else cands
    if name == "path":
        hit = cands["path"].map(lambda p: fnmatch.fnmatchcase(p, arg))
        return cands[hit.to_numpy()] if hit.any() else cands
    table: dict[str, tuple[Callable[[pd.DataFrame], pd.Series], float, bool]] = {
        "resolution": (lambda c: c["width"].astype("float64") * c["height"].astype("float64"), 0.0, True),
        "bitrate": (lambda c: c["bit_rate"], -0.02, True),
        "longest": (lambda c: c["duration"], 0.5, True),
        "oldest": (lambda c: c["mtime"], 1.0, False),
        "newest": (lambda c: c["mtime"], 1.0, True),
        "largest": (lambda c: c["size"], 0.0, True),
        "smallest": (lambda c: c["size"], 0.0, False),
    }
    fn, tol, higher = table[name]
    return _best(cands, fn(cands), tol, higher)


def choose_keeper(cands: pd.DataFrame, rules: Sequence[Any], protect: Sequence[str] = ()) -> tuple[str | None, str, list[str]]:
    """Apply the rules in order to candidate rows (path, abs_path, size, duration, width, height,
    bit_rate, mtime). Returns (keeper path or None on a tie, the deciding rule or "tie", the
    paths still tied)."""
    left = cands
    if len(left) == 1:
        return str(left["path"].iloc[0]), "only candidate", []
    for rule in rules:
        left = _apply_rule(rule, left, list(protect))
        if len(left) == 1:
            name, arg = _rule_key(rule)
            return str(left["path"].iloc[0]), name if arg is None else f"{name}: {arg}", []
    return None, "tie", sorted(left["path"].astype(str))


def _live(path: str) -> tuple[int, int, str] | None:
    """(size, mtime_ns, content hash) of a file (named as the store spells it) as it is now, or
    None when it cannot be read."""
    path = from_text(path)
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns, content_hash(path, st.st_size)
    except (OSError, MediaError):
        return None


def _unchanged(row: pd.Series, live: tuple[int, int, str] | None) -> str | None:
    """None when the file is as indexed; else why not."""
    if live is None:
        return "missing or unreadable since it was indexed"
    size, mtime_ns, digest = live
    if size != row["size"] or abs(mtime_ns / 1e9 - float(row["mtime"])) > 1e-6 or digest != row["content_hash"]:
        return "changed since it was indexed (re-index first)"
    return None


def make_plan(store: Store, rules: KeepRules | None = None) -> dict[str, Any]:
    """Decide keep/remove per duplicate group. Changes nothing; returns the plan as data.

    Returns a dict: version, created (UTC), store, media_root, run_id, rules, holds (absolute),
    protect (absolute), groups (group, keeper, decided_by, tie, bytes, entries[...]) and
    totals (files, files_to_remove, bytes_to_free, ties). Each entry holds path (relative),
    abs_path, role, action (keep | remove), reason, size, mtime_ns, content_hash (as the file is
    now), keeper, score, label; :func:`plan_table` flattens them.
    """
    rules = rules or KeepRules()
    media_root = store.media_root or ""
    holds = _absolute(rules.hold, media_root)
    protect = _absolute(rules.protect, media_root)
    g, full_pairs = groups_and_edges(store)
    groups_out: list[dict[str, Any]] = []
    for gid, rows in g.groupby("group", sort=True):
        cands = rows[rows["role"].isin(["center", "member"])].drop_duplicates("path")
        keeper, decided_by, tie = choose_keeper(cands, rules.rules, protect)
        live = {p: _live(a) for p, a in zip(rows["path"], rows["abs_path"])}
        keeper_problem = None
        if keeper is not None:
            krow = cands[cands["path"] == keeper].iloc[0]
            keeper_problem = _unchanged(krow, live[keeper])
        entries: list[dict[str, Any]] = []
        for _, r in rows.iterrows():
            p = r["path"]
            action, reason = "keep", ""
            if r["role"] == "partial":
                reason = f"partial copy of {r['match']} (a clip is not a removable duplicate)"
            elif r["role"] == "chained":
                reason = f"matches only {r['match']}, not a group's keeper (no daisy chains)"
            elif keeper is None:
                reason = f"tie after rules {_names(rules.rules)} between {', '.join(tie)}: nothing removed"
            elif p == keeper:
                reason = f"keeper (rule: {decided_by})"
            elif _under(r["abs_path"], holds):
                reason = "legal hold"
            elif _under(r["abs_path"], protect):
                reason = "in a protected folder"
            elif keeper_problem:
                reason = f"keeper {keeper} {keeper_problem}: nothing removed"
            elif frozenset((p, keeper)) not in full_pairs:
                reason = f"does not match the keeper {keeper} directly"
            elif (why := _unchanged(r, live[p])) is not None:
                reason = why
            else:
                s, lab, dec = full_pairs[frozenset((p, keeper))]
                action = "remove"
                by = "reviewer: duplicate" if dec == "duplicate" else f"{lab}, score {s:.3f}"
                reason = f"duplicate of {keeper} ({by}); keeper chosen by {decided_by}"
            lv = live[p]
            entries.append({
                "path": p, "abs_path": r["abs_path"], "role": r["role"], "action": action, "reason": reason,
                "size": None if lv is None else lv[0], "mtime_ns": None if lv is None else lv[1],
                "content_hash": None if lv is None else lv[2], "keeper": keeper, "match": r["match"],
                "score": None if pd.isna(r["score"]) else float(r["score"]), "label": r["label"] if isinstance(r["label"], str) else None,
            })
        kentry = next((e for e in entries if e["path"] == keeper), None)
        freed = sum(e["size"] or 0 for e in entries if e["action"] == "remove")
        groups_out.append({"group": int(gid), "keeper": keeper, "keeper_abs": kentry["abs_path"] if kentry else None,
                           "keeper_size": kentry["size"] if kentry else None,
                           "keeper_mtime_ns": kentry["mtime_ns"] if kentry else None,
                           "keeper_hash": kentry["content_hash"] if kentry else None,
                           "decided_by": decided_by, "tie": tie, "bytes": int(freed), "entries": entries})
    removes = [e for grp in groups_out for e in grp["entries"] if e["action"] == "remove"]
    return {
        "version": PLAN_VERSION,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "store": str(Path(store.path).resolve()),
        "media_root": media_root,
        "run_id": g.attrs.get("run_id"),
        "rules": rules.to_dict(),
        "holds": holds,
        "protect": protect,
        "groups": groups_out,
        "totals": {"groups": len(groups_out), "files_to_remove": len(removes),
                   "bytes_to_free": int(sum(e["size"] or 0 for e in removes)),
                   "ties": sum(1 for grp in groups_out if grp["keeper"] is None)},
    }


def _names(rules: Sequence[Any]) -> str:
    return "[" + ", ".join(n if a is None else f"{n}: {a}" for n, a in map(_rule_key, rules)) + "]"


def plan_table(plan: dict[str, Any]) -> pd.DataFrame:
    """The plan flattened to one row per (group, file): the plan CSV."""
    rows = []
    for grp in plan["groups"]:
        for e in grp["entries"]:
            rows.append({"group": grp["group"], "path": e["path"], "action": e["action"], "reason": e["reason"],
                         "keeper": grp["keeper"] or "", "bytes": e["size"] if e["action"] == "remove" else 0,
                         "role": e["role"], "score": e["score"], "label": e["label"], "size": e["size"],
                         "mtime_ns": e["mtime_ns"], "content_hash": e["content_hash"], "abs_path": e["abs_path"]})
    return pd.DataFrame(rows, columns=PLAN_CSV_COLUMNS)


def write_plan(plan: dict[str, Any], out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the plan as JSON at ``out`` and as CSV beside it (same name, ``.csv``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(plan, indent=1, default=_json_default))
    os.replace(tmp, out)
    csv = out.with_suffix(".csv")
    plan_table(plan).to_csv(csv, index=False)
    return out, csv


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def read_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a plan written by :func:`write_plan`, checking its shape."""
    try:
        plan = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ReviewError(f"{path}: cannot read the plan ({exc})") from exc
    if not isinstance(plan, dict) or plan.get("version") != PLAN_VERSION or not isinstance(plan.get("groups"), list):
        raise ReviewError(f"{path}: not an AstraDup plan of version {PLAN_VERSION} (run `astradup plan` again)")
    return plan
