"""Search spaces: which config fields a study varies, over which ranges, and how a trial samples them.

A space maps dotted :class:`~astradup.config.AstradupConfig` field names (see
:func:`astradup.config.flat_fields`) to one of:

- ``[low, high]``: a float range (an int range when both are ints and the field is an int);
- ``{"low": ..., "high": ..., "log": True}``: a range sampled on a log scale;
- ``{"choices": [...]}``: a categorical choice.

The fusion bands keep ``similar <= near <= exact`` by construction: ``fusion.near`` is sampled
in its range, then ``fusion.exact`` in the part of its range at or above ``near`` and
``fusion.similar`` in the part at or below it (through the Optuna parameters ``fusion.exact:frac``
and ``fusion.similar:frac``, the position within that part), so no trial is wasted on a
disordered band. The real field values of every trial are in its ``config`` user attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from astradup.config import AstradupConfig, flat_fields
from astradup.errors import ConfigError

if TYPE_CHECKING:
    import optuna

WEIGHT_SPACE: dict[str, Any] = {"fusion.visual": [0.0, 1.0], "fusion.audio": [0.0, 1.0], "fusion.metadata": [0.0, 1.0]}
#: The default space: modality weights and the three bands.
DEFAULT_SEARCH_SPACE: dict[str, Any] = {
    **WEIGHT_SPACE,
    "fusion.near": [0.3, 0.99],
    "fusion.exact": [0.5, 1.0],
    "fusion.similar": [0.1, 0.99],
}
BANDS = ("fusion.near", "fusion.exact", "fusion.similar")

#: The visual calibration (``match`` fields that rescoring from explanations can change). The
#: knots' ranges do not overlap, so every trial keeps ``q_low < q_similar <= q_near <= q_exact``.
MATCH_SPACE: dict[str, Any] = {
    "match.q_low": [0.3, 0.7],
    "match.q_similar": [0.7, 0.85],
    "match.q_near": [0.85, 0.93],
    "match.q_exact": [0.93, 0.995],
    "match.distinct_margin": [0.0, 0.1],
    "match.partial_margin": [0.0, 0.15],
    "match.exact_hash": [0.7, 0.98],
}


def tuning_space(objective: str, pairs: Any, fusion_only: bool = False) -> tuple[dict[str, Any], Any]:
    """The space ``astradup tune`` and the accuracy benchmark search, and the rescore it needs.

    Fusion weights and bands (:func:`default_search_space`) always; unless ``fusion_only``, also
    the visual calibration (:data:`MATCH_SPACE`) when ``pairs`` carries the ``explanation``
    column that rescoring reads.

    Returns:
        (space, rescore): ``rescore(config) -> pairs`` re-scores ``pairs`` from their
        explanations, or None when the space holds fusion fields only.

    Example:
        >>> space, rescore = tuning_space("f1", pd.DataFrame(columns=["a", "b", "explanation"]))  # doctest: +SKIP
    """
    space = default_search_space(objective)
    if fusion_only or "explanation" not in getattr(pairs, "columns", ()):
        return space, None
    from astradup.scoring.pair import rescore_pairs

    return {**space, **MATCH_SPACE}, lambda config: rescore_pairs(pairs, config)


class InfeasibleTrial(Exception):
    """The sampled values cannot form a valid config (e.g. exact's range lies below near)."""


@dataclass(frozen=True)
class Dimension:
    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _dimension(name: str, spec: Any, default: Any) -> Dimension:
    if isinstance(spec, Mapping) and "choices" in spec:
        choices = tuple(spec["choices"])
        if not choices:
            raise ConfigError(f"search space {name!r}: choices must not be empty")
        return Dimension(name, choices=choices)
    if isinstance(spec, Mapping):
        low, high, log = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
    elif isinstance(spec, list | tuple) and len(spec) == 2:
        (low, high), log = spec, False
    else:
        raise ConfigError(
            f"search space {name!r} must be [low, high], {{'low', 'high', 'log'}} or {{'choices': [...]}}, "
            f"but got {spec!r}"
        )
    if not (_is_number(low) and _is_number(high)) or low > high:  # type: ignore[operator]
        raise ConfigError(f"search space {name!r} needs numbers low <= high, but got low={low!r}, high={high!r}")
    if log and low <= 0:  # type: ignore[operator]
        raise ConfigError(f"search space {name!r}: a log range needs low > 0, but got {low}")
    integer = isinstance(default, int) and not isinstance(default, bool) and isinstance(low, int) and isinstance(high, int)
    return Dimension(name, low=low, high=high, log=log, integer=integer)


class SearchSpace:
    """A parsed search space. Constructing it validates names and ranges and samples nothing."""

    def __init__(self, spec: Mapping[str, Any]):
        known = flat_fields()
        unknown = sorted(set(spec) - set(known))
        if unknown:
            raise ConfigError(f"unknown search-space field(s) {unknown}; choose from {sorted(known)}")
        if not spec:
            raise ConfigError("the search space is empty")
        self.spec = dict(spec)
        self.dims = {name: _dimension(name, s, known[name]) for name, s in spec.items()}
        for name in BANDS:
            if name in self.dims and self.dims[name].choices is not None:
                raise ConfigError(f"search space {name!r}: bands must be ranges, not choices")

    @property
    def needs_rescore(self) -> list[str]:
        """Fields outside ``fusion``: changing them needs new pairs, not just new fusion."""
        return sorted(n for n in self.dims if not n.startswith("fusion."))

    def _suggest(self, trial: optuna.Trial, d: Dimension) -> Any:
        if d.choices is not None:
            return trial.suggest_categorical(d.name, list(d.choices))
        if d.integer:
            return trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log)  # type: ignore[arg-type]
        return trial.suggest_float(d.name, float(d.low), float(d.high), log=d.log)  # type: ignore[arg-type]

    def sample(self, trial: optuna.Trial, base: AstradupConfig) -> dict[str, Any]:
        """Sample one point: ``{dotted field: value}`` for every field in the space.

        Raises:
            InfeasibleTrial: a band's range lies entirely on the wrong side of ``near``.
        """
        values = {n: self._suggest(trial, d) for n, d in self.dims.items() if n not in BANDS}
        near = self._suggest(trial, self.dims["fusion.near"]) if "fusion.near" in self.dims else base.fusion.near
        if "fusion.near" in self.dims:
            values["fusion.near"] = near
        for name, above in (("fusion.exact", True), ("fusion.similar", False)):
            if name in self.dims:
                lo, hi = self._band_range(name, near, above)
                frac = trial.suggest_float(name + ":frac", 0.0, 1.0)
                if lo > hi:
                    raise InfeasibleTrial(f"{name} range [{self.dims[name].low}, {self.dims[name].high}] "
                                          f"cannot be {'above' if above else 'below'} near={near:.4f}")
                values[name] = lo + frac * (hi - lo)
        return values

    def _band_range(self, name: str, near: float, above: bool) -> tuple[float, float]:
        d = self.dims[name]
        lo, hi = float(d.low), float(d.high)  # type: ignore[arg-type]
        return (max(lo, near), hi) if above else (lo, min(hi, near))

    def params_for(self, config: AstradupConfig) -> dict[str, Any] | None:
        """The Optuna parameters that reproduce ``config`` (to enqueue it as a first trial), or
        ``None`` when one of its values lies outside the space."""
        flat = {f"{sec}.{k}": v for sec, fields in config.to_dict().items() for k, v in fields.items()}
        params: dict[str, Any] = {}
        for name, d in self.dims.items():
            v = flat[name]
            if d.choices is not None:
                if v not in d.choices:
                    return None
            elif not d.low <= v <= d.high:  # type: ignore[operator]
                return None
            if name in BANDS and name != "fusion.near":
                lo, hi = self._band_range(name, flat["fusion.near"], above=name == "fusion.exact")
                if not lo <= v <= hi:
                    return None
                params[name + ":frac"] = 0.0 if hi == lo else (v - lo) / (hi - lo)
            else:
                params[name] = v
        return params


def default_search_space(objective: str) -> dict[str, Any]:
    """The default space of an objective. ``micro_ap`` ranks by score alone, which the bands
    cannot change, so its default space is the weights only."""
    return dict(WEIGHT_SPACE) if objective == "micro_ap" else dict(DEFAULT_SEARCH_SPACE)
