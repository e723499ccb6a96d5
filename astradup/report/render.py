"""Executing the workbench notebooks with papermill and turning them into standalone HTML.

The HTML opens offline: the page template (``templates/astradup_report``) inlines plotly.js once
and leaves out what nbconvert's lab template would fetch from CDNs (require.js, MathJax, mermaid,
the widget manager). Code cells are hidden; every figure and table is an output of the package,
escaped where it shows user text (see :mod:`astradup.report.display`).
"""

from __future__ import annotations

import copy
import logging
import os
import re
from pathlib import Path
from typing import Any

from astradup.errors import AstradupError, ConfigError

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "astradup_report"
#: the kernel papermill starts; ``make setup`` installs it into .venv (``ipykernel install
#: --sys-prefix --name python3``), and jupyter_client runs it with this interpreter.
KERNEL_NAME = "python3"


class NotebookError(AstradupError):
    """A notebook cell raised while papermill ran it. ``notebook`` and ``cell`` say where."""

    def __init__(self, notebook: str | os.PathLike[str], cell: int | None, ename: str, evalue: str,
                 output: str | os.PathLike[str] | None = None, source: str = ""):
        self.notebook = os.fspath(notebook)
        self.cell = cell
        self.ename = ename
        self.evalue = evalue
        self.output = os.fspath(output) if output is not None else None
        self.source = source
        where = f"cell {cell}" if cell is not None else "a cell"
        if source:
            where += f" ({source})"
        msg = f"{Path(self.notebook).name}: {where} raised {ename}: {evalue}"
        if self.output:
            msg += f" (executed notebook kept at {self.output})"
        super().__init__(msg)


def notebooks_dir() -> Path:
    """Folder of the workbench notebooks: ``$ASTRADUP_NOTEBOOKS``, else the checkout's
    ``notebooks/`` (editable install), else ``./notebooks``."""
    env = os.environ.get("ASTRADUP_NOTEBOOKS", "").strip()
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "notebooks", Path.cwd() / "notebooks"]
    for c in candidates:
        if (c / "04_evaluation_report.ipynb").is_file():
            return c
    raise AstradupError(
        "cannot find the workbench notebooks (looked in "
        f"{', '.join(str(c) for c in candidates)}); set ASTRADUP_NOTEBOOKS to the notebooks/ folder"
    )


def find_notebook(name: str | os.PathLike[str]) -> Path:
    """A notebook by path, or by stem/file name inside :func:`notebooks_dir`."""
    p = Path(name)
    if p.suffix == ".ipynb" and p.is_file():
        return p
    stem = p.name.removesuffix(".ipynb")
    found = notebooks_dir() / f"{stem}.ipynb"
    if not found.is_file():
        have = sorted(q.stem for q in notebooks_dir().glob("*.ipynb"))
        raise ConfigError(f"notebook {os.fspath(name)!r} not found; choose one of {have}")
    return found


def execute_notebook(
    notebook: str | os.PathLike[str],
    output: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    log_output: bool = False,
) -> Path:
    """Run ``notebook`` with papermill into ``output`` (the executed copy, outputs included).

    Parameters are checked against the notebook's dataclass first (unknown names raise
    :class:`~astradup.errors.ConfigError`; papermill would only warn).

    Args:
        cwd: the kernel's working directory (relative paths in the parameters resolve there);
            the current directory when ``None``.
        timeout: seconds one cell may run (``None``: no limit).

    Raises:
        NotebookError: a cell raised; the executed notebook (with the traceback) is kept.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    from astradup.report.params import check_params

    src = find_notebook(notebook)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = check_params(src.stem, dict(parameters or {}))
    log.info("executing %s -> %s", src, out)
    try:
        pm.execute_notebook(
            str(src), str(out), parameters=params, kernel_name=KERNEL_NAME,
            cwd=str(cwd or Path.cwd()), progress_bar=False, log_output=log_output,
            execution_timeout=timeout, report_mode=False,
            # local unix sockets instead of unencrypted TCP on localhost (ipykernel warns on TCP)
            config=Config({"KernelManager": {"transport": "ipc"}}),
        )
    except PapermillExecutionError as exc:
        first = next((ln.strip() for ln in str(exc.source or "").splitlines() if ln.strip()), "")
        raise NotebookError(src, exc.exec_count, exc.ename, _short(exc.evalue), out,
                            source=_short(first, 80)) from exc
    except Exception as exc:  # noqa: BLE001 - kernel start-up failures come in many types
        if isinstance(exc, AstradupError):
            raise
        raise NotebookError(src, None, type(exc).__name__, _short(str(exc)), out) from exc
    return out


def _short(text: str, limit: int = 500) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    from astradup.report.browser import find_chromium

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

