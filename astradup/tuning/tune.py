"""``tune``: search fusion weights and bands (or any config field) with Optuna's TPE sampler.

Each trial re-fuses the pairs' per-modality scores (``visual``, ``audio``, ``metadata``; NaN =
missing) with :func:`astradup.scoring.fusion.fuse_arrays`, exactly as matching does, and scores
the train side. Validation metrics are computed once, for the best trial and for the base config.

Objectives (maximised on the train side):

- ``"f1"``: duplicate-class F1;
- ``"recall_at_precision"``: duplicate-class recall, under the constraint precision >= ``min_precision``;
- ``"micro_ap"``: micro average precision (ranking only, so the default space is the weights).

A trial's value is the objective plus 0.001 x the four-class macro-F1 of its confusion matrix
(classes with neither truth nor predicted pairs skipped). The objective cannot see where ``exact``
and ``similar`` sit (both are duplicates, or neither), so this small term sets them to agree with
the truth classes without trading away any visible amount of the objective. The pure objective
is the trial's ``objective`` user attribute.

Constraints (``precision >= min_precision`` for ``recall_at_precision``; ``fpr <= max_fpr`` when
given) go to the sampler (``Trial.set_constraint`` on Optuna >= 5, else ``constraints_func``); the
best trial is the best feasible one (or, if none is feasible, the least infeasible, with a
warning).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig, FusionConfig
from astradup.errors import AstradupError, ConfigError
from astradup.evaluation import evaluate, join
from astradup.evaluation.core import confusion_matrix, corpus_size, json_value, scalar_metrics
from astradup.evaluation.io import MODALITY_COLUMNS, TableError, check_pairs, check_truth
from astradup.labels import DUPLICATE_LABELS, NO_MATCH
from astradup.scoring.fusion import fuse_arrays
from astradup.tuning.space import InfeasibleTrial, SearchSpace, default_search_space
from astradup.tuning.split import split_by_group

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

OBJECTIVES = ("f1", "recall_at_precision", "micro_ap")
TIE_BREAK = 1e-3
Rescore = Callable[[AstradupConfig], pd.DataFrame]


@dataclass
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes:
        best_config: ``base`` with the best trial's values.
        best_params: the searched fields of the best trial, ``{dotted field: value}``.
        train_metrics, val_metrics: :func:`~astradup.evaluation.evaluate` metrics of
            ``best_config`` on each side.
        default_val_metrics: the same for ``base`` on the validation side.
        study: the Optuna study (all trials, including resumed ones).
        objective: the objective's name.
        train_videos, val_videos: the split.
    """

    best_config: AstradupConfig
    best_params: dict[str, Any]
    train_metrics: dict[str, Any]
    val_metrics: dict[str, Any]
    default_val_metrics: dict[str, Any]
    study: optuna.Study
    objective: str
    train_videos: list[str] = field(repr=False, default_factory=list)
    val_videos: list[str] = field(repr=False, default_factory=list)

    def write_config(self, path: str | os.PathLike[str]) -> None:
        """Write ``best_config`` as YAML that :meth:`AstradupConfig.from_file` loads."""
        self.best_config.to_yaml(path)

    def summary(self) -> dict[str, Any]:
        """JSON-able: objective, best parameters and the three metric sets."""
        return {
            "objective": self.objective,
            "n_trials": len(self.study.trials),
            "best_params": self.best_params,
            "train_metrics": _jsonable(self.train_metrics),
            "val_metrics": _jsonable(self.val_metrics),
            "default_val_metrics": _jsonable(self.default_val_metrics),
        }


def default_storage(store: str | os.PathLike[str]) -> Path:
    """``study.db`` beside a store file (or inside a store directory)."""
    p = Path(store)
    return (p if p.is_dir() else p.parent) / "study.db"


def storage_url(storage: str | os.PathLike[str] | None) -> str | None:
    """An Optuna storage URL: URLs pass through, a path becomes ``sqlite:///<absolute path>``."""
    if storage is None:
        return None
    if isinstance(storage, str) and "://" in storage:
        return storage
    path = Path(storage).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: json_value(v) for k, v in d.items()}


@dataclass
class _Side:
    """One side of the split, joined once; trials only swap in new scores and labels."""

    joined: pd.DataFrame
    n_videos: int
    in_pairs: np.ndarray
    modal: np.ndarray  # (rows in pairs, 3): visual, audio, metadata

    @classmethod
    def build(cls, truth: pd.DataFrame, pairs: pd.DataFrame, videos: list[str]) -> _Side:
        keep = pd.Index(videos)
        t = truth[truth["a"].isin(keep) & truth["b"].isin(keep)]
        p = pairs[pairs["a"].isin(keep) & pairs["b"].isin(keep)]
        j = join(t, p)
        in_pairs = j["in_pairs"].to_numpy(dtype=bool)
        modal = np.column_stack([
            j[c].to_numpy(dtype=np.float64)[in_pairs] if c in j.columns else np.full(int(in_pairs.sum()), np.nan)
            for c in MODALITY_COLUMNS
        ])
        return cls(j, corpus_size(videos, j), in_pairs, modal)

    def metrics(self, fusion: FusionConfig) -> tuple[dict[str, Any], float]:
        """(scalar metrics, four-class macro-F1) with the pairs re-fused under ``fusion``."""
        score, label, _ = fuse_arrays(self.modal[:, 0], self.modal[:, 1], self.modal[:, 2], fusion)
        s = np.full(len(self.joined), np.nan)
        s[self.in_pairs] = score
        lab = np.full(len(self.joined), NO_MATCH, dtype=object)
        lab[self.in_pairs] = label
        j = self.joined.assign(score=s, label=lab, pred_duplicate=np.isin(lab, DUPLICATE_LABELS))
        return scalar_metrics(j, self.n_videos), macro_f1(confusion_matrix(j, self.n_videos))


def macro_f1(confusion: pd.DataFrame) -> float:
    """Mean F1 over the classes that have truth or predicted pairs."""
    c = confusion.to_numpy(dtype=np.float64)
    tp, support, predicted = np.diag(c), c.sum(axis=1), c.sum(axis=0)
    used = (support + predicted) > 0
    return float((2 * tp[used] / (support[used] + predicted[used])).mean()) if used.any() else 0.0


def refuse(pairs: pd.DataFrame, fusion: FusionConfig) -> pd.DataFrame:
    """``pairs`` with ``score``, ``label`` and ``confidence`` recomputed from the modality columns."""
    present = [c for c in MODALITY_COLUMNS if c in pairs.columns]
    if not present:
        raise TableError(f"pairs need at least one of the columns {list(MODALITY_COLUMNS)} to be re-fused")
    cols = [pd.to_numeric(pairs[c]).to_numpy(dtype=np.float64) if c in pairs.columns
            else np.full(len(pairs), np.nan) for c in MODALITY_COLUMNS]
    score, label, conf = fuse_arrays(cols[0], cols[1], cols[2], fusion)
    return pairs.assign(score=score, label=label, confidence=conf)


def _unique_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per unordered pair (the highest score wins, as in evaluation), so that re-fusing
    cannot change which of two rows for one pair is kept."""
    pairs.attrs = {}
    a, b = pairs["a"], pairs["b"]
    lo, hi = a.where(a < b, b), b.where(a < b, a)
    dup = pd.DataFrame({"lo": lo, "hi": hi}).duplicated(keep=False)
    if not dup.any():
        return pairs
    log.warning("pairs list %d row(s) for pairs reported more than once; keeping each pair's highest score",
                int(dup.sum()))
    ranked = pairs.assign(_lo=lo.to_numpy(), _hi=hi.to_numpy()).reset_index(drop=True).sort_values("score", ascending=False, kind="stable")
    return ranked.drop_duplicates(["_lo", "_hi"]).sort_index().drop(columns=["_lo", "_hi"])


@contextlib.contextmanager
def _quiet_optuna(progress: bool) -> Iterator[None]:
    import optuna

    before = optuna.logging.get_verbosity()
    if not progress:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(before)


def _feasible(t: optuna.trial.FrozenTrial) -> bool:
    return all(c <= 0 for c in t.user_attrs.get("constraints", []))


def _constraints(t: optuna.trial.FrozenTrial) -> list[float]:
    # a trial that never measured (pruned, failed) counts as infeasible
    return list(t.user_attrs.get("constraints", [1.0]))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The best feasible completed trial; without one, the least infeasible (with a warning)."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    if not done:
        raise AstradupError(f"study {study.study_name!r} has no completed trial")
    feasible = [t for t in done if _feasible(t)]
    if feasible:
        return max(feasible, key=lambda t: (t.value, -t.number))
    log.warning("no trial met the constraints; taking the one closest to meeting them")
    return min(done, key=lambda t: (sum(max(c, 0.0) for c in _constraints(t)), -(t.value or 0.0), t.number))


def _check_tune_args(objective: str, min_precision: float, max_fpr: float | None, n_trials: int) -> None:
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective {objective!r} is unknown; choose one of {list(OBJECTIVES)}")
    if not 0 < min_precision <= 1:
        raise ConfigError(f"min_precision must be in (0, 1], but got {min_precision}")
    if max_fpr is not None and not max_fpr >= 0:
        raise ConfigError(f"max_fpr must be >= 0, but got {max_fpr}")
    if n_trials < 0:
        raise ConfigError(f"n_trials must be >= 0, but got {n_trials}")


def _corpus_videos(videos: list[str] | None, truth: pd.DataFrame, pairs: pd.DataFrame) -> list[str]:
    """``videos``, else ``truth.attrs["videos"]``, else every video the two tables name (warned)."""
    if videos is None:
        videos = truth.attrs.get("videos")
    if videos is None:
        videos = sorted(set(pairs["a"]) | set(pairs["b"]) | set(truth["a"]) | set(truth["b"]))
        log.warning("no video list given; splitting the %d videos named in the truth and pairs", len(videos))
    return list(videos)


def _side_metrics(p: pd.DataFrame, truth_plain: pd.DataFrame, config: AstradupConfig,
                  side_videos: list[str]) -> dict[str, Any]:
    """The metrics of ``config`` on one side of the split (pairs re-fused with its fusion)."""
    keep = pd.Index(side_videos)
    p = refuse(p[p["a"].isin(keep) & p["b"].isin(keep)], config.fusion)
    t = truth_plain[truth_plain["a"].isin(keep) & truth_plain["b"].isin(keep)]
    return evaluate(t, p, videos=side_videos).metrics


def _trial_fn(space: SearchSpace, base: AstradupConfig, truth_plain: pd.DataFrame, train: _Side,
              train_videos: list[str], pairs_for: Callable[[AstradupConfig], pd.DataFrame], objective: str,
              min_precision: float, max_fpr: float | None) -> Callable[[Any], float]:
    """The Optuna objective: sample a config, score it on the train side, record what it did."""
    import optuna

    # Optuna >= 5 takes constraints from Trial.set_constraint; older ones from constraints_func
    native_constraints = hasattr(optuna.trial.Trial, "set_constraint")

    def run_trial(trial: optuna.Trial) -> float:
        try:
            values = space.sample(trial, base)
            config = base.replace(**values)
        except (InfeasibleTrial, ConfigError) as exc:
            raise optuna.TrialPruned(str(exc)) from exc
        side = _Side.build(truth_plain, pairs_for(config), train_videos) if space.needs_rescore else train
        metrics, agreement = side.metrics(config.fusion)
        primary = float(metrics[{"f1": "f1", "recall_at_precision": "recall", "micro_ap": "micro_ap"}[objective]])
        constraints = {}
        if objective == "recall_at_precision":
            constraints["min_precision"] = min_precision - metrics["precision"]
        if max_fpr is not None:
            constraints["max_fpr"] = metrics["fpr"] - max_fpr
        if native_constraints:
            for name, value in constraints.items():
                trial.set_constraint(name, value)
        trial.set_user_attr("config", values)
        trial.set_user_attr("objective", primary)
        trial.set_user_attr("band_agreement", agreement)
        trial.set_user_attr("constraints", list(constraints.values()))
        trial.set_user_attr("train_metrics", _jsonable(metrics))
        return primary + TIE_BREAK * agreement

    return run_trial


def _run_study(run_trial: Callable[[Any], float], space: SearchSpace, base: AstradupConfig, settings: dict[str, Any],
               storage: str | os.PathLike[str] | None, study_name: str, n_trials: int, seed: int,
               constrained: bool, progress: bool) -> Any:
    """Create or resume the study (refusing one made with other ``settings``), seed it with the
    base config, and run ``n_trials`` more trials."""
    import optuna

    native_constraints = hasattr(optuna.trial.Trial, "set_constraint")
    with _quiet_optuna(progress):
        sampler = optuna.samplers.TPESampler(
            seed=seed, constraints_func=_constraints if constrained and not native_constraints else None
        )
        study = optuna.create_study(storage=storage_url(storage), study_name=study_name, direction="maximize",
                                    sampler=sampler, load_if_exists=True)
        stored = {k: study.user_attrs.get(k) for k in settings}
        if study.trials and stored != settings:
            raise ConfigError(
                f"study {study_name!r} in {storage} was made with other settings {stored}; "
                "use another study_name or storage to start afresh"
            )
        for k, v in settings.items():
            study.set_user_attr(k, v)
        if not study.trials:
            first = space.params_for(base)
            if first is not None:
                study.enqueue_trial(first, user_attrs={"note": "base config"})
        study.optimize(run_trial, n_trials=n_trials, show_progress_bar=progress)
    return study



def tune(
    pairs: pd.DataFrame,
    truth: pd.DataFrame,
    videos: list[str] | None = None,
    base: AstradupConfig | None = None,
    objective: str = "f1",
    min_precision: float = 0.99,
    max_fpr: float | None = None,
    n_trials: int = 200,
    seed: int = 0,
    storage: str | os.PathLike[str] | None = None,
    study_name: str = "astradup",
    val_fraction: float = 0.5,
    search_space: dict[str, Any] | None = None,
    progress: bool = False,
    rescore: Rescore | None = None,
) -> TuneResult:
    """Tune config fields on the train side of a grouped split; report both sides.

    Args:
        pairs: reported pairs with per-modality columns ``visual``, ``audio``, ``metadata``
            (NaN = missing), as ``match`` writes them.
        truth: ground truth (see :mod:`astradup.evaluation.io`).
        videos: every corpus path; defaults to ``truth.attrs["videos"]``, else the paths the two
            tables name.
        base: config the trial values are applied to (default ``AstradupConfig()``); it is also
            the "default" of ``default_val_metrics`` and the study's first trial.
        objective: ``"f1"``, ``"recall_at_precision"`` or ``"micro_ap"`` (see the module doc).
        min_precision: the precision floor of ``"recall_at_precision"``.
        max_fpr: optional ceiling on the train side's false-positive rate.
        n_trials: trials to run now (added to any already stored).
        seed: seeds the split and the TPE sampler.
        storage: an Optuna URL or a path to a SQLite file (e.g. :func:`default_storage` of the
            store); ``None`` keeps the study in memory. An existing study is resumed.
        study_name: the study's name in ``storage``.
        val_fraction: share of videos held out for validation.
        search_space: ``{dotted field: range}`` replacing the default space (see
            :mod:`astradup.tuning.space`); extend the default with
            ``{**DEFAULT_SEARCH_SPACE, "match.min_segment": [1.0, 5.0]}``.
        progress: show Optuna's progress bar and per-trial log lines.
        rescore: ``rescore(config) -> pairs`` recomputes the pairs table under ``config``; needed
            when the space has fields outside ``fusion`` (``match.*``, ``features.*``, ...).
            Its modality columns are then re-fused with ``config.fusion`` like ``pairs``.

    Raises:
        ConfigError: unknown objective, bad range, or non-fusion fields without ``rescore``.
    """
    _check_tune_args(objective, min_precision, max_fpr, n_trials)
    base = base or AstradupConfig()
    space = SearchSpace(search_space if search_space is not None else default_search_space(objective))
    if space.needs_rescore and rescore is None:
        raise ConfigError(f"search-space field(s) {space.needs_rescore} change the pairs themselves; pass "
                          "rescore=callable(config) -> pairs, or search only fusion.* fields")

    pairs = _unique_pairs(check_pairs(pairs))
    if rescore is None and not set(MODALITY_COLUMNS) & set(pairs.columns):
        raise TableError(f"pairs need at least one of the columns {list(MODALITY_COLUMNS)} to be re-fused")
    videos = _corpus_videos(videos, truth, pairs)
    train_videos, val_videos = split_by_group(truth, videos, val_fraction, seed)
    log.info("split: %d train videos, %d validation videos", len(train_videos), len(val_videos))
    truth_plain = check_truth(truth)
    truth_plain.attrs = {}
    train = _Side.build(truth_plain, pairs, train_videos)
    if not train.joined["positive"].any():
        log.warning("the train side has no positive pair; tuning has nothing to learn from")

    # stored on the study (as JSON) so that resuming with other settings is refused
    settings = json.loads(json.dumps(
        {"objective": objective, "search_space": space.spec, "min_precision": min_precision,
         "max_fpr": max_fpr, "val_fraction": val_fraction, "seed": seed},
        default=lambda v: v.item() if isinstance(v, np.generic) else str(v),
    ))

    def pairs_for(config: AstradupConfig) -> pd.DataFrame:
        """The pairs under ``config`` (``rescore`` output gets its score and label from fusion)."""
        if not space.needs_rescore:
            return pairs
        return check_pairs(refuse(rescore(config), config.fusion), where="rescore(config)")  # type: ignore[misc]

    run_trial = _trial_fn(space, base, truth_plain, train, train_videos, pairs_for, objective, min_precision, max_fpr)
    constrained = objective == "recall_at_precision" or max_fpr is not None
    study = _run_study(run_trial, space, base, settings, storage, study_name, n_trials, seed, constrained, progress)

    best = best_trial(study)
    best_config = base.replace(**best.user_attrs["config"])

    def measure(config: AstradupConfig, side_videos: list[str]) -> dict[str, Any]:
        return _side_metrics(pairs_for(config), truth_plain, config, side_videos)

    return TuneResult(best_config=best_config, best_params=dict(best.user_attrs["config"]),
                      train_metrics=measure(best_config, train_videos), val_metrics=measure(best_config, val_videos),
                      default_val_metrics=measure(base, val_videos), study=study, objective=objective,
                      train_videos=train_videos, val_videos=val_videos)
