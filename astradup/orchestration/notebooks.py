"""Executing the workbench notebooks with papermill: find one, check its parameters, run it, and
turn a failing cell into an error that names the notebook, the cell and what it raised."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from astradup.errors import AstradupError, ConfigError
from astradup.orchestration.params import check_params

log = logging.getLogger(__name__)

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
