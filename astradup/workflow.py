"""End-to-end workflows that compose the stages (used by ``astradup demo`` and the notebooks)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from astradup.config import AstradupConfig

log = logging.getLogger(__name__)


def run_demo(
    workdir: str | Path = "data/demo",
    seed: int = 0,
    n_sources: int = 4,
    render: bool = True,
    progress: bool = True,
    config: AstradupConfig | None = None,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Generate a labelled corpus (once per seed), index it, match it, evaluate, and report.

    Every step is incremental: a second run reuses the corpus and skips unchanged videos.
    Returns the paths written and the metrics.
    """
    from astradup.evaluation import evaluate, load_pairs, load_truth
    from astradup.execution import run_index, run_match
    from astradup.store import Store
    from astradup.synth import generate

    cfg = config or AstradupConfig.from_file(None)
    work = Path(workdir)
    corpus = work / "corpus"
    store = work / "astradup.duckdb"
    pairs_csv = work / "pairs.csv"
    marker = corpus / ".astradup-demo.json"
    spec = {"seed": seed, "n_sources": n_sources}
    if not (marker.exists() and json.loads(marker.read_text()) == spec and (corpus / "ground_truth.csv").exists()):
        echo(f"[1/5] generating the labelled demo corpus in {corpus} ...")
        generate(corpus, n_sources=n_sources, seed=seed, progress=progress)
        marker.write_text(json.dumps(spec))
    else:
        echo(f"[1/5] reusing the demo corpus in {corpus}")
    truth = load_truth(corpus / "ground_truth.csv")
    echo("[2/5] indexing (probe, decode, hash, embed, fingerprint) ...")
    summary = run_index(corpus, store, cfg, progress=progress)
    for line in summary.lines():
        echo("      " + line)
    with Store(store) as st:
        st.write_labels(truth)
    echo("[3/5] matching (FAISS candidates, temporal alignment, fusion) ...")
    run_match(store, cfg, out=pairs_csv, min_score=0.0, progress=progress)
    echo("[4/5] evaluating against the ground truth ...")
    res = evaluate(truth, load_pairs(pairs_csv))
    metrics_json = work / "metrics.json"
    res.to_json(metrics_json)
    echo(res.table())
    html = None
    if render:
        echo("[5/5] rendering the HTML report ...")
        from astradup.orchestration import render_report

        html = render_report(store, corpus / "ground_truth.csv", pairs_csv, work / "report", config=cfg)
    echo("")
    echo(f"store:    {store}")
    echo(f"pairs:    {pairs_csv}")
    echo(f"metrics:  {metrics_json}")
    if html:
        echo(f"report:   {html}")
    return {"store": store, "pairs": pairs_csv, "metrics": res.metrics, "report": html, "summary": summary}
