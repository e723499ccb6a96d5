"""Pipelines: a YAML list of notebooks run in order with papermill, each rendered to HTML.

A pipeline file (``pipelines/<name>.yaml``)::

    description: Index a folder, match it and report.
    params:                        # shared values; override with run_pipeline(..., overrides)
      media_dir: data/demo/media
      store: data/demo/store.duckdb
    notebooks:
      - notebook: 01_dedup_run     # a notebook in notebooks/ (stem or file name)
        parameters:                # checked against the notebook's dataclass before anything runs
          media_dir: ${media_dir}  # a whole-value reference keeps the value's type
          store: ${store}
          out: ${run_dir}/pairs.csv
        timeout: 3600              # optional: seconds one cell may run

References are ``${name}`` where ``name`` is a shared param or one of the built-ins ``run_dir``
(absolute path of this run's folder), ``pipeline`` (its name) and ``timestamp``. A param may refer
to params defined above it and to the built-ins; nothing else is evaluated.

Each run writes ``<reports_dir>/<pipeline>/<timestamp>/`` with every executed notebook, its HTML,
an ``index.html`` linking them and ``run.json`` (parameters, timings, status). ``latest`` beside
the dated folders points at the newest run that finished. A failing notebook stops the run with a
:class:`PipelineError` naming the notebook, the cell and the error; what ran until then stays.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from astradup.errors import AstradupError, ConfigError
from astradup.orchestration.notebooks import NotebookError, execute_notebook, find_notebook
from astradup.orchestration.params import check_params
from astradup.report.display import esc
from astradup.report.render import notebook_to_html

log = logging.getLogger(__name__)

BUILTINS = ("run_dir", "pipeline", "timestamp")
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PipelineError(AstradupError):
    """A pipeline step failed. ``run_dir`` holds what ran; ``notebook`` names the failing step."""

    def __init__(self, message: str, run_dir: Path | None = None, notebook: str | None = None):
        self.run_dir = run_dir
        self.notebook = notebook
        super().__init__(message)


def pipelines_dir() -> Path:
    """``./pipelines`` when it exists, else the checkout's ``pipelines/``."""
    here = Path.cwd() / "pipelines"
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "pipelines"


def find_pipeline(name_or_path: str | os.PathLike[str]) -> Path:
    """A pipeline file by path, or by name in :func:`pipelines_dir`."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    for base in dict.fromkeys([Path.cwd() / "pipelines", pipelines_dir()]):
        for ext in (".yaml", ".yml"):
            cand = base / f"{p.name.removesuffix('.yaml').removesuffix('.yml')}{ext}"
            if cand.is_file():
                return cand
    have = sorted(q.stem for q in pipelines_dir().glob("*.y*ml"))
    raise ConfigError(f"pipeline {os.fspath(name_or_path)!r} not found; choose one of {have} or give a YAML path")


def load_pipeline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a pipeline file's shape (not yet its references)."""
    import yaml

    p = Path(path)
    try:
        spec = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: cannot read pipeline ({exc})") from exc
    if not isinstance(spec, dict):
        raise ConfigError(f"{p}: a pipeline must be a mapping with 'notebooks', but got {type(spec).__name__}")
    unknown = set(spec) - {"description", "params", "notebooks"}
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {sorted(unknown)}; valid: ['description', 'notebooks', 'params']")
    params = spec.get("params") or {}
    steps = spec.get("notebooks")
    if not isinstance(params, dict):
        raise ConfigError(f"{p}: 'params' must be a mapping")
    clash = set(params) & set(BUILTINS)
    if clash:
        raise ConfigError(f"{p}: params {sorted(clash)} are built-in names; rename them")
    if not isinstance(steps, list) or not steps:
        raise ConfigError(f"{p}: 'notebooks' must be a non-empty list of steps")
    for i, step in enumerate(steps, 1):
        if not isinstance(step, dict) or "notebook" not in step:
            raise ConfigError(f"{p}: step {i} must be a mapping with a 'notebook' key, but got {step!r}")
        extra = set(step) - {"notebook", "parameters", "timeout"}
        if extra:
            raise ConfigError(f"{p}: step {i}: unknown key(s) {sorted(extra)}; valid: ['notebook', 'parameters', 'timeout']")
        if not isinstance(step.get("parameters") or {}, dict):
            raise ConfigError(f"{p}: step {i}: 'parameters' must be a mapping")
    return {"description": spec.get("description", ""), "params": dict(params), "notebooks": steps}


def substitute(value: Any, env: dict[str, Any], where: str) -> Any:
    """Replace ``${name}`` references in ``value`` (strings, lists and dicts, recursively).

    A string that is exactly one reference takes the referenced value with its type; a reference
    inside a longer string is formatted with ``str``.
    """
    if isinstance(value, dict):
        return {k: substitute(v, env, where) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, where) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(name: str) -> Any:
        if name not in env:
            raise ConfigError(f"{where}: ${{{name}}} is not defined; defined: {sorted(env)}")
        return env[name]

    whole = _REF.fullmatch(value)
    if whole:
        return lookup(whole.group(1))
    return _REF.sub(lambda m: str(lookup(m.group(1))), value)


def plan(spec: dict[str, Any], name: str, run_dir: Path, timestamp: str,
         overrides: dict[str, Any] | None = None, source: str = "pipeline") -> list[dict[str, Any]]:
    """Resolve a pipeline's references and check every step's parameters, before running any.

    Returns one ``{"notebook", "stem", "parameters", "timeout"}`` per step.

    Raises:
        ConfigError: an unknown override, an undefined reference, an unknown notebook, or a
            parameter the notebook's dataclass rejects.
    """
    params = dict(spec["params"])
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(params)
    if unknown:
        raise ConfigError(f"{source}: cannot override {sorted(unknown)}; the pipeline's params are {sorted(params)}")
    for key, value in overrides.items():
        params[key] = _coerce(value, params[key], f"{source}: override {key}")
    env: dict[str, Any] = {"run_dir": str(run_dir), "pipeline": name, "timestamp": timestamp}
    for key, value in params.items():
        env[key] = substitute(value, env, f"{source}: params.{key}")
    steps = []
    for i, step in enumerate(spec["notebooks"], 1):
        nb = find_notebook(str(step["notebook"]))
        where = f"{source}: step {i} ({nb.stem})"
        values = substitute(dict(step.get("parameters") or {}), env, where)
        try:
            resolved = check_params(nb.stem, values)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        timeout = step.get("timeout")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ConfigError(f"{where}: timeout must be a positive number of seconds, but got {timeout!r}")
        steps.append({"notebook": str(nb), "stem": nb.stem, "parameters": resolved, "timeout": timeout})
    return steps


def _coerce(value: Any, like: Any, where: str) -> Any:
    """A command-line override arrives as text; read it as the YAML value's type."""
    if not isinstance(value, str) or isinstance(like, str) or like is None:
        return value
    import yaml

    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: cannot read {value!r} ({exc})") from exc
    if isinstance(like, bool):
        ok = isinstance(parsed, bool)
    elif isinstance(like, float):
        ok = isinstance(parsed, int | float) and not isinstance(parsed, bool)
    else:
        ok = isinstance(parsed, type(like)) and not isinstance(parsed, bool)
    if not ok:
        raise ConfigError(f"{where}: expected {type(like).__name__}, but got {value!r}")
    return parsed


def _new_run_dir(base: Path) -> tuple[Path, str]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        name = stamp if n == 0 else f"{stamp}-{n}"
        try:
            (base / name).mkdir()
            return base / name, name
        except FileExistsError:
            continue
    raise AstradupError(f"{base}: cannot create a new run folder for {stamp}")


def _point_latest(base: Path, target: str) -> None:
    link = base / "latest"
    tmp = base / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)  # relative, so the reports folder can be moved or served as is
    os.replace(tmp, link)


def _write_index(run_dir: Path, record: dict[str, Any]) -> None:
    rows = []
    for s in record["steps"]:
        link = (f'<a href="{esc(Path(s["html"]).name)}">{esc(s["stem"])}</a>' if s.get("html")
                else esc(s["stem"]))
        rows.append(f"<tr><td>{link}</td><td>{esc(s['status'])}</td><td>{s.get('seconds', 0):.1f}</td>"
                    f"<td>{esc(s.get('error', ''))}</td></tr>")
    title = f"{record['pipeline']} {record['timestamp']}"
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
        "table{border-collapse:collapse}</style></head><body>"
        f"<h1>{esc(title)}</h1><p>{esc(record.get('description', ''))}</p>"
        f"<p>status: <b>{esc(record['status'])}</b></p>"
        "<table><thead><tr><th>notebook</th><th>status</th><th>seconds</th><th>error</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"
    )
    (run_dir / "index.html").write_text(page, encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")


def run_pipeline(
    name_or_path: str | os.PathLike[str],
    overrides: dict[str, Any] | None = None,
    reports_dir: str | os.PathLike[str] = "reports",
) -> Path:
    """Run a pipeline's notebooks in order; return this run's folder.

    Args:
        name_or_path: ``"nightly"`` (``pipelines/nightly.yaml``) or a YAML path.
        overrides: values for the pipeline's ``params``, e.g. ``{"media_dir": "/srv/videos"}``.
        reports_dir: where ``<pipeline>/<timestamp>/`` folders go.

    Raises:
        ConfigError: the file, a reference or a parameter is wrong (nothing has run).
        PipelineError: a notebook failed; the message names it, the cell and the error, and the
            run folder keeps the executed notebooks (the failed one included, with its HTML).

    Example:
        >>> run_pipeline("demo", {"media_dir": "data/demo/media"})  # doctest: +SKIP
        PosixPath('reports/demo/20261121T020000Z')
    """
    path = find_pipeline(name_or_path)
    spec = load_pipeline(path)
    name = path.stem
    if not _NAME.match(name):
        raise ConfigError(f"{path}: pipeline name {name!r} must be letters, digits, '.', '_' or '-'")
    base = Path(reports_dir) / name
    # Resolve against a placeholder first so that a bad file creates no run folder.
    plan(spec, name, (base / "RUN").resolve(), "TIMESTAMP", overrides, source=str(path))
    run_dir, stamp = _new_run_dir(base)
    steps = plan(spec, name, run_dir.resolve(), stamp, overrides, source=str(path))
    record: dict[str, Any] = {
        "pipeline": name, "file": str(path), "description": spec["description"], "timestamp": stamp,
        "overrides": overrides or {}, "status": "running", "steps": [],
    }
    used: set[str] = set()
    log.info("pipeline %s: %d notebook(s) into %s", name, len(steps), run_dir)
    for i, step in enumerate(steps, 1):
        stem = step["stem"]
        out_stem = stem if stem not in used else f"{stem}-{i}"
        used.add(out_stem)
        out_nb = run_dir / f"{out_stem}.ipynb"
        entry = {"stem": stem, "parameters": step["parameters"], "output": out_nb.name, "status": "running"}
        record["steps"].append(entry)
        _write_index(run_dir, record)
        t0 = time.monotonic()
        try:
            execute_notebook(step["notebook"], out_nb, step["parameters"], timeout=step["timeout"])
        except NotebookError as exc:
            entry.update(status="failed", seconds=time.monotonic() - t0, error=str(exc))
            if out_nb.is_file():
                try:
                    entry["html"] = notebook_to_html(out_nb, title=f"{name}: {stem} (failed)").name
                except Exception as html_exc:  # noqa: BLE001 - keep the original error in front
                    log.warning("cannot render the failed notebook %s: %s", out_nb, html_exc)
            record["status"] = "failed"
            _write_index(run_dir, record)
            where = f"cell {exc.cell}" if exc.cell is not None else "a cell"
            if exc.source:
                where += f" ({exc.source})"
            raise PipelineError(
                f"pipeline {name!r} stopped at step {i} of {len(steps)}: {stem}.ipynb {where} raised "
                f"{exc.ename}: {exc.evalue}. Outputs so far are in {run_dir}",
                run_dir=run_dir, notebook=stem,
            ) from exc
        entry["seconds"] = time.monotonic() - t0
        entry["html"] = notebook_to_html(out_nb, title=f"{name}: {stem}").name
        entry["status"] = "ok"
        _write_index(run_dir, record)
    record["status"] = "ok"
    _write_index(run_dir, record)
    _point_latest(base, run_dir.name)
    return run_dir
