"""The evaluation report: ``notebooks/04_evaluation_report.ipynb`` executed, then rendered to HTML."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from astradup.orchestration.notebooks import execute_notebook
from astradup.report.render import notebook_to_html


def render_report(
    store: str | os.PathLike[str],
    truth: str | os.PathLike[str] | None,
    pairs: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    config: str | os.PathLike[str] | Any | None = None,
    title: str = "AstraDup evaluation report",
    *,
    top_n: int = 10,
    thumbnails: bool = True,
    timeout: float | None = None,
) -> Path:
    """Evaluate a run and write ``out_dir/report.html`` (and the executed notebook beside it).

    Runs ``notebooks/04_evaluation_report.ipynb`` with papermill, then converts it to a standalone
    HTML page (no code, plotly.js inline, opens offline).

    Args:
        store: the DuckDB store of the run.
        truth: truth CSV; ``None`` reports the pairs found without metrics.
        pairs: ``pairs.csv``; ``None`` reads the store's pairs table.
        config: the config the run used: a file, an ``AstradupConfig`` (written to
            ``out_dir/config.yaml`` for the notebook), or ``None`` for the defaults.

    Returns:
        Path of ``report.html``.

    Example:
        >>> render_report("data/demo/store.duckdb", "data/demo/truth.csv", None, "reports/demo")  # doctest: +SKIP
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def _abs(p: str | os.PathLike[str] | None) -> str:
        return str(Path(p).resolve()) if p not in (None, "") else ""

    if config is not None and hasattr(config, "to_yaml"):
        config.to_yaml(out / "config.yaml")
        config = out / "config.yaml"
    params = {
        "store": _abs(store), "truth": _abs(truth), "pairs": _abs(pairs), "config": _abs(config),
        "title": str(title), "top_n": int(top_n), "thumbnails": bool(thumbnails),
    }
    executed = execute_notebook("04_evaluation_report", out / "04_evaluation_report.ipynb", params,
                                cwd=out, timeout=timeout)
    return notebook_to_html(executed, out / "report.html", title=title)
