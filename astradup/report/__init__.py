"""Reports: plotly figures of a run, the tables the notebooks show, standalone HTML.

* :mod:`~astradup.report.figures` - one function per figure, from plain tables.
* :mod:`~astradup.report.sections` - the tables and sections the notebooks show, from a RunData.
* :mod:`~astradup.report.display` - showing figures and escaped tables in a notebook.
* :mod:`~astradup.report.render` - HTML export of an executed notebook, PNG export.

Executing notebooks, their parameters and pipelines are :mod:`astradup.orchestration`'s. plotly
and nbconvert are imported inside the functions that use them.
"""

from __future__ import annotations

from astradup.report import figures
from astradup.report.display import Html, show
from astradup.report.render import export_png, notebook_to_html

__all__ = [
    "Html",
    "export_png",
    "figures",
    "notebook_to_html",
    "show",
]
