"""Orchestration: running the workbench notebooks with papermill, their parameters, YAML pipelines
of notebooks, and loading a run for them. The figures and the HTML are :mod:`astradup.report`'s.

* :mod:`~astradup.orchestration.params` - the notebooks' parameter dataclasses (checked before a run).
* :mod:`~astradup.orchestration.notebooks` - papermill execution, failing cells as clear errors.
* :mod:`~astradup.orchestration.runs` - a run's tables, pairs, truth and evaluation for a notebook.
* :mod:`~astradup.orchestration.report` - the evaluation report, executed and rendered.
* :mod:`~astradup.orchestration.pipeline` - YAML pipelines of notebooks (``astradup pipeline run``).

papermill and nbconvert are imported inside the functions that use them.
"""

from __future__ import annotations

from astradup.orchestration import runs
from astradup.orchestration.notebooks import NotebookError, execute_notebook, find_notebook
from astradup.orchestration.params import (
    NOTEBOOK_PARAMS,
    DedupRunParams,
    ExploreParams,
    ReportParams,
    ReviewParams,
    TuneParams,
    check_params,
)
from astradup.orchestration.pipeline import PipelineError, run_pipeline
from astradup.orchestration.report import render_report

__all__ = [
    "NOTEBOOK_PARAMS",
    "DedupRunParams",
    "ExploreParams",
    "NotebookError",
    "PipelineError",
    "ReportParams",
    "ReviewParams",
    "TuneParams",
    "check_params",
    "execute_notebook",
    "find_notebook",
    "render_report",
    "run_pipeline",
    "runs",
]
