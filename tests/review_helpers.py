"""Helpers shared by the review tests: a private, indexed and matched copy of the tiny corpus."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

from astradup.config import AstradupConfig
from astradup.execution import run_index, run_match

# hash-only features (no CNN): review logic does not depend on the embedder, and this keeps it quick
CFG = AstradupConfig().replace(**{"features.embedding": ""})


def library(media_dir: Path, root: Path, extra: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Copy ``media_dir`` (plus ``extra``: new name -> existing name) to ``root/media``, index it
    and match it (min_score 0). Each extra copy is made 100 s newer than its original, so the
    ``oldest`` keep rule can tell byte copies apart. Returns (media folder, store)."""
    corpus = root / "media"
    shutil.copytree(media_dir, corpus)
    for new, old in (extra or {}).items():
        (corpus / new).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus / old, corpus / new)
        t = (corpus / old).stat().st_mtime + 100
        os.utime(corpus / new, (t, t))
    store = root / "s.duckdb"
    run_index(corpus, store, CFG, eager=True, progress=False)
    run_match(store, CFG, min_score=0.0, progress=False)
    return corpus, store


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: relative path -> (bytes, mtime_ns)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def retarget(plan: dict, old_root: Path, new_root: Path, store: Path) -> dict:
    """The plan with its media folder moved from ``old_root`` to ``new_root`` (a copy made with
    ``shutil.copytree``, which keeps mtimes) and journaling into ``store``."""
    p = copy.deepcopy(plan)
    o, n = str(old_root), str(new_root)

    def mv(x: str | None) -> str | None:
        return None if x is None else (n + x[len(o):] if x == o or x.startswith(o + os.sep) else x)

    p["media_root"], p["store"] = mv(p["media_root"]), str(store)
    p["holds"] = [mv(h) for h in p["holds"]]
    for g in p["groups"]:
        g["keeper_abs"] = mv(g["keeper_abs"])
        for e in g["entries"]:
            e["abs_path"] = mv(e["abs_path"])
    return p
