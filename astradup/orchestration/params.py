"""Parameters of the workbench notebooks, one frozen dataclass per notebook.

Each notebook's cell tagged ``parameters`` assigns exactly these fields with these defaults
(``tests/test_notebooks.py`` checks it), and the pipelines' YAML is validated against them before
anything runs, because papermill itself only warns about a parameter a notebook does not know.

Paths are plain strings so that papermill can pass them; ``""`` means "not given".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from astradup.errors import ConfigError


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class ExploreParams:
    """``02_explore_corpus``: what is in a store.

    Attributes:
        store: DuckDB store written by ``astradup index``.
        top_n: rows shown in the "largest", "longest" and "failures" tables.
        thumbnails: show a thumbnail per listed video (decodes one frame each).
    """

    store: str = "data/demo/astradup.duckdb"
    top_n: int = 20
    thumbnails: bool = True

    def __post_init__(self) -> None:
        _require(bool(self.store), "store must name a DuckDB store file, but got ''")
        _require(self.top_n >= 1, f"top_n must be >= 1, but got {self.top_n}")


@dataclass(frozen=True)
class DedupRunParams:
    """``01_dedup_run``: index a folder, then match it.

    Attributes:
        media_dir: folder of videos (read only).
        store: DuckDB store to create or update.
        config: YAML/JSON config file; ``""`` uses the defaults (and the environment).
        scheduler: Dask scheduler address (``tcp://host:8786``); ``""`` starts a local cluster.
        out: where to write ``pairs.csv``; ``""`` keeps the pairs in the store only.
        gpus: use one Dask worker per visible GPU.
        workers: local Dask workers; 0 lets the cluster choose (ignored with ``scheduler``).
    """

    media_dir: str = "data/demo/corpus"
    store: str = "data/demo/astradup.duckdb"
    config: str = ""
    scheduler: str = ""
    out: str = ""
    gpus: bool = False
    workers: int = 0

    def __post_init__(self) -> None:
        _require(bool(self.media_dir), "media_dir must name a folder of videos, but got ''")
        _require(bool(self.store), "store must name a DuckDB store file, but got ''")
        _require(self.workers >= 0, f"workers must be >= 0 (0 = automatic), but got {self.workers}")


@dataclass(frozen=True)
class TuneParams:
    """``03_tune``: search fusion weights and bands with Optuna on labelled pairs.

    Attributes:
        store: store whose candidate pairs (and video table) are tuned on.
        truth: truth CSV (``a, b, relation, ...``) of the labelled corpus.
        pairs: ``pairs.csv`` to tune on; ``""`` reads the store's pairs table.
        config: base config file the tuned values start from; ``""`` = defaults.
        objective: metric to maximise (``f1``, ``micro_ap``, ``recall_at_p99``, ...).
        n_trials: Optuna trials.
        seed: sampler seed (same seed, same trials).
        storage: Optuna storage URL (``sqlite:///tune.db``) so a study can be resumed or
            browsed with optuna-dashboard; ``""`` keeps it in memory.
        out: where to write the tuned config YAML; ``""`` writes nothing.
    """

    store: str = "data/demo/astradup.duckdb"
    truth: str = "data/demo/corpus/ground_truth.csv"
    pairs: str = ""
    config: str = ""
    objective: str = "f1"
    n_trials: int = 200
    seed: int = 0
    storage: str = ""
    out: str = ""

    def __post_init__(self) -> None:
        _require(bool(self.truth), "truth must name a truth CSV, but got ''")
        _require(bool(self.store or self.pairs), "give a store or a pairs CSV to tune on")
        _require(self.n_trials >= 1, f"n_trials must be >= 1, but got {self.n_trials}")


@dataclass(frozen=True)
class ReportParams:
    """``04_evaluation_report``: metrics, figures and examples of one matching run.

    Attributes:
        store: store the pairs came from (video table, failures, runs, thumbnails).
        truth: truth CSV; ``""`` shows the pairs found without metrics.
        pairs: ``pairs.csv``; ``""`` reads the store's pairs table.
        config: config file the run used (shown, and its bands drawn); ``""`` = defaults.
        title: report title (shown as text, never as HTML).
        top_n: false positives / false negatives / top pairs listed.
        thumbnails: show a thumbnail of both videos of each listed pair.
    """

    store: str = "data/demo/astradup.duckdb"
    truth: str = ""
    pairs: str = ""
    config: str = ""
    title: str = "AstraDup evaluation report"
    top_n: int = 10
    thumbnails: bool = True

    def __post_init__(self) -> None:
        _require(bool(self.store or self.pairs), "give a store or a pairs CSV to report on")
        _require(self.top_n >= 1, f"top_n must be >= 1, but got {self.top_n}")


@dataclass(frozen=True)
class ReviewParams:
    """``05_review``: review the pairs that need a person, and preview the plan.

    Attributes:
        store: store of a matched library (``astradup match`` has run).
        limit: most pairs in the review queue (most valuable first).
        reviewer: name recorded with each decision; ``""`` uses the login name.
        thumbnails: show thumbnails of the best matching frames (decodes two frames each).
        n_frames: matching frame pairs shown per pair.
        hold: a file or folder on legal hold for the plan preview; ``""`` holds nothing.
    """

    store: str = "data/demo/astradup.duckdb"
    limit: int = 50
    reviewer: str = ""
    thumbnails: bool = True
    n_frames: int = 3
    hold: str = ""

    def __post_init__(self) -> None:
        _require(bool(self.store), "store must name a DuckDB store file, but got ''")
        _require(self.limit >= 1, f"limit must be >= 1, but got {self.limit}")
        _require(self.n_frames >= 1, f"n_frames must be >= 1, but got {self.n_frames}")


#: notebook stem -> its parameter dataclass
NOTEBOOK_PARAMS: dict[str, type] = {
    "02_explore_corpus": ExploreParams,
    "01_dedup_run": DedupRunParams,
    "03_tune": TuneParams,
    "04_evaluation_report": ReportParams,
    "05_review": ReviewParams,
}


def params_for(notebook: str) -> type:
    """The parameter dataclass of a notebook, by stem or file name (``"03_tune.ipynb"``)."""
    stem = notebook.rsplit("/", 1)[-1].removesuffix(".ipynb")
    if stem not in NOTEBOOK_PARAMS:
        raise ConfigError(f"notebook {notebook!r} is unknown; choose one of {sorted(NOTEBOOK_PARAMS)}")
    return NOTEBOOK_PARAMS[stem]


def check_params(notebook: str, values: dict[str, Any]) -> dict[str, Any]:
    """Validate papermill parameters for ``notebook``: known names, right kinds, valid values.

    Returns the complete parameter mapping (defaults filled in), ready for papermill.

    Raises:
        ConfigError: an unknown name (the valid ones are listed), a value of the wrong kind, or a
            value the dataclass rejects.
    """
    cls = params_for(notebook)
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(
            f"{notebook}: unknown parameter(s) {sorted(unknown)}; valid: {sorted(known)}"
        )
    for name, value in values.items():
        default = known[name].default
        expected = type(default)
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ConfigError(
                f"{notebook}: parameter {name!r} must be {expected.__name__}, but got "
                f"{type(value).__name__} {value!r}"
            )
    try:
        obj = cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{notebook}: {exc}") from exc
    return dataclasses.asdict(obj)
