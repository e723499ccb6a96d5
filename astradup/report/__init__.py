"""Reports: plotly figures of a run, notebooks executed with papermill, standalone HTML, pipelines.

* :mod:`~astradup.report.figures` - one function per figure, from plain tables.
* :mod:`~astradup.report.sections` - loading a run and the tables the notebooks show.
* :mod:`~astradup.report.display` - showing figures and escaped tables in a notebook.
* :mod:`~astradup.report.render` - papermill execution, HTML export, PNG export.
* :mod:`~astradup.report.pipeline` - YAML pipelines of notebooks.
* :mod:`~astradup.report.params` - the notebooks' parameter dataclasses.

plotly, papermill and nbconvert are imported inside the functions that use them.
"""

from __future__ import annotations

from astradup.report import figures
from astradup.report.display import Html, show
from astradup.report.params import (
    NOTEBOOK_PARAMS,
    DedupRunParams,
    ExploreParams,
    ReportParams,
    ReviewParams,
    TuneParams,
    check_params,
)
from astradup.report.pipeline import PipelineError, run_pipeline
from astradup.report.render import (
    NotebookError,
    execute_notebook,
    export_png,
    notebook_to_html,
    render_report,
)

__all__ = [
    "NOTEBOOK_PARAMS",
    "DedupRunParams",
    "ExploreParams",
    "Html",
    "NotebookError",
    "PipelineError",
    "ReportParams",
    "ReviewParams",
    "TuneParams",
    "check_params",
    "execute_notebook",
    "export_png",
    "figures",
    "notebook_to_html",
    "render_report",
    "run_pipeline",
    "show",
]
