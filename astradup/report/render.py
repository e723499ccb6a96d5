"""Turning executed notebooks into standalone HTML, and figures into PNG.

The HTML opens offline: the page template (``templates/astradup_report``) inlines plotly.js once
and leaves out what nbconvert's lab template would fetch from CDNs (require.js, MathJax, mermaid,
the widget manager). Code cells are hidden; every figure and table is an output of the package,
escaped where it shows user text (see :mod:`astradup.report.display`). Executing the notebooks is
:mod:`astradup.orchestration`'s job.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from astradup.errors import AstradupError

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "astradup_report"
def notebook_to_html(
    notebook: str | os.PathLike[str],
    html_path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    show_code: bool = False,
) -> Path:
    """Convert an executed notebook into one standalone HTML file that opens offline.

    Args:
        title: the page's ``<title>`` (escaped by the template); the notebook's name otherwise.
        show_code: keep code cells (hidden by default: a report shows results).

    Returns:
        The HTML path (``notebook`` with ``.html`` when ``html_path`` is None).
    """
    import nbformat
    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs

    src = Path(notebook)
    dst = Path(html_path) if html_path is not None else src.with_suffix(".html")
    nb = nbformat.read(src, as_version=4)
    nb = _clean_for_html(nb)
    if title is not None:
        nb.metadata["title"] = str(title)
    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    resources = {"plotly_js": get_plotlyjs(), "metadata": {"name": src.stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(body, encoding="utf-8")
    return dst


def _clean_for_html(nb: Any) -> Any:
    """Drop what a reader of the report should not see, or what would load from a CDN:
    stderr streams (progress bars, warnings), widget state, and the papermill parameter cells."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"parameters", "injected-parameters"}:
            continue
        if cell.cell_type == "code":
            cell.outputs = [
                o for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                and "application/vnd.jupyter.widget-view+json" not in o.get("data", {})
            ]
        cells.append(cell)
    nb.cells = cells
    return nb


def find_chromium() -> str | None:
    """``$BROWSER_PATH``, else chromium/chrome on ``PATH``, else None."""
    env = os.environ.get("BROWSER_PATH", "").strip()
    if env and Path(env).is_file():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


def export_png(fig: Any, path: str | os.PathLike[str], *, width: int = 1000, height: int | None = None,
               scale: float = 1.0) -> Path:
    """Write a static PNG of a plotly figure with kaleido (>= 1.0), which drives Debian's chromium.

    Raises:
        AstradupError: kaleido is not installed, or no chromium/chrome was found (the message
            says how to install each).
    """
    try:
        import kaleido
    except ImportError as exc:
        raise AstradupError(
            "PNG export needs kaleido>=1.0: pip install 'kaleido>=1.0' (or pip install -e '.[lab]')"
        ) from exc
    if not hasattr(kaleido, "write_fig_sync"):
        raise AstradupError("PNG export needs kaleido>=1.0 (0.2 bundles its own browser and is not "
                            "supported): pip install 'kaleido>=1.0'")
    browser = find_chromium()
    if browser is None:
        raise AstradupError(
            "PNG export needs chromium: apt-get install -y chromium (or set BROWSER_PATH)"
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    opts = {"format": "png", "width": int(width), "height": int(height or fig.layout.height or 500),
            "scale": float(scale)}
    try:
        # mathjax=False: kaleido would otherwise load MathJax from a CDN for every export
        kaleido.write_fig_sync(fig, path=str(out), opts=opts, kopts={"path": browser, "mathjax": False})
    except Exception as exc:  # noqa: BLE001 - kaleido/choreographer raise their own types
        raise AstradupError(f"{out}: PNG export failed ({type(exc).__name__}: {exc})") from exc
    return out

