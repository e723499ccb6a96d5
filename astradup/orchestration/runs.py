"""Loading a run for the notebooks and the report: the store's tables, the pairs, the truth, the
evaluation, and an explainer for single pairs (through :class:`astradup.Library`).

Example:
    >>> run = load_run(store="data/demo/astradup.duckdb", truth="data/demo/corpus/ground_truth.csv")  # doctest: +SKIP
    >>> run.metrics["f1"]                                                                             # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from astradup.errors import AstradupError
from astradup.report.sections import RunData


def _explainer(store: str | os.PathLike[str], config: Any) -> Callable[[str, str], dict[str, Any]] | None:
    """``Library(store, config).explain`` when there is a store, else None."""
    if not store:
        return None
    from astradup.api import Library

    return Library(store, config).explain


def read_store(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The store's ``videos``, ``failures``, ``runs`` and ``pairs`` tables and its media root."""
    from astradup.store import Store

    p = Path(path)
    if not p.exists():
        raise AstradupError(f"{p}: store does not exist (run `astradup index` first)")
    from astradup.store.decisions import decision_rows

    with Store(p, read_only=True) as s:
        return {
            "videos": s.videos(), "failures": s.failures(), "runs": s.runs(), "pairs": s.pairs(),
            "media_root": str(getattr(s, "media_root", "") or ""), "decisions": decision_rows(s, latest=True),
        }


def load_config(path: str | os.PathLike[str] | None) -> Any:
    from astradup.config import AstradupConfig

    return AstradupConfig.from_file(path or None)


def load_run(store: str = "", pairs: str = "", truth: str = "", config: str = "") -> RunData:
    """Load a run for a report: the store's tables, the pairs (file or store), the truth and
    the evaluation. Empty strings mean "not given"."""
    from astradup.evaluation import check_pairs, evaluate, load_pairs, load_truth

    tables: dict[str, Any] = {}
    if store:
        tables = read_store(store)
    if pairs:
        pairs_df = load_pairs(pairs)
    elif store:
        pairs_df = check_pairs(tables["pairs"], where=f"{store}: pairs")
    else:
        raise AstradupError("no pairs to report: give a store or a pairs CSV")
    cfg = load_config(config)
    data = RunData(
        pairs=pairs_df, config=cfg, store=str(store), explainer=_explainer(store, cfg),
        videos=tables.get("videos", pd.DataFrame()), failures=tables.get("failures", pd.DataFrame()),
        runs=tables.get("runs", pd.DataFrame()), media_root=tables.get("media_root", ""),
        decisions=tables.get("decisions", pd.DataFrame()),
    )
    if truth:
        data.truth = load_truth(truth)
        data.result = evaluate(data.truth, pairs_df, videos=data.corpus_videos)
    return data


def load_corpus(store: str) -> RunData:
    """The store's tables, without checking or evaluating pairs (a store may not be matched yet)."""
    tables = read_store(store)
    cfg = load_config(None)
    return RunData(pairs=tables["pairs"], config=cfg, store=str(store), explainer=_explainer(store, cfg),
                   videos=tables["videos"], failures=tables["failures"], runs=tables["runs"],
                   media_root=tables["media_root"])


def load_report(params: Any) -> RunData:
    """:func:`load_run` from a :class:`~astradup.orchestration.params.ReportParams`."""
    return load_run(store=params.store, pairs=params.pairs, truth=params.truth, config=params.config)
