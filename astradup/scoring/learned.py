"""A learned pair scorer: gradient-boosted trees over per-pair evidence, calibrated to a probability.

The rule-based score (:mod:`astradup.scoring.fusion`) maps a few statistics through hand-set
knots and caps, which leaves plateaus at the caps and trusts ImageNet embeddings alone when they
agree. :class:`PairModel` instead learns P(copy | evidence) from labelled pairs (those
``astradup synth`` makes from a user's own clips, or the shipped default trained on Debian media)
over :data:`FEATURES`: alignment statistics, hash agreement along the path, embedding/hash
disagreement, how much the path stands out, frame quality, audio and metadata.

A soundtrack that differs is no evidence against a copy whose frames the hashes confirm: music is
replaced all the time (a trailer over other music, a re-upload with a new soundtrack), so where
``hash_hit`` reaches :data:`HASH_CONFIRMS` and the path stands out from the rest of the matrix
(``margin`` at least :data:`AUDIO_RULE_MARGIN`), an ``audio`` similarity under
:data:`AUDIO_CONFIRMS` is given to the trees as unknown, as for a silent video (``audio_rule``;
models saved before it existed keep reading ``audio`` as it is). Where the hashes do not confirm
the pixels (a re-edit, re-framed, with other music), or the picture looks the same elsewhere too
(another stretch of a static scene, whose soundtrack is what differs), a differing soundtrack
still counts.

Training uses scikit-learn's ``HistGradientBoostingClassifier`` (log loss, so its output is a
probability; monotone where more similarity can only mean more likely a copy). The fitted trees are
then copied into plain arrays and saved as ``model.npz`` (no pickle: loading a model a user was
handed runs no code) beside ``card.json`` (features in order, training data, seed, held-out metrics,
library versions). Prediction walks those arrays with numpy, so scoring needs no scikit-learn;
a test checks it against scikit-learn's own ``predict_proba``.

Example:
    >>> model = PairModel(max_iter=50).fit(table[list(FEATURES)], table["positive"])  # doctest: +SKIP
    >>> model.save("my_model")  # doctest: +SKIP
    >>> PairModel.load("my_model").predict_proba(table[list(FEATURES)])[:, 1]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astradup.config import FusionConfig, MatchConfig
from astradup.errors import ConfigError

#: The evidence a pair is scored on, in the model's column order (see :func:`pair_features`).
FEATURES: tuple[str, ...] = (
    "path_sim", "background", "margin", "best_cell", "path_min",
    "emb_path", "emb_bg", "hash_path", "hash_bg", "hash_hit", "emb_hash_gap", "standout",
    "informative", "quality_path",
    "coverage_min", "coverage_max", "aligned_frames", "segment_s", "min_duration_s", "duration_ratio",
    "audio", "metadata", "resid_path", "resid_norm", "spread", "geo_inliers", "geo_spread",
)

#: Features along which more can only mean "more likely a copy" (monotone increasing constraint).
INCREASING = ("path_sim", "margin", "hash_path", "hash_hit", "standout", "informative", "coverage_min", "audio",
              "geo_inliers")

FORMAT = "astradup-pair-model/1"
#: Share of the path's frames whose hashes agree at which the pixels count as confirmed (the
#: default ``match.geometric_hash_hit``; a model's inputs must not depend on a run's config).
HASH_CONFIRMS = 0.5
#: How far the aligned path must beat the rest of the similarity matrix (``margin``) for the
#: soundtrack rule to apply. Where it does not stand out (a static or repetitive scene whose
#: other stretches look the same), a soundtrack that differs is what tells two stretches apart.
AUDIO_RULE_MARGIN = 0.2
DEFAULT_MODEL = "default"  # the shipped model: astradup/scoring/models/default/


class PairModel:
    """Gradient-boosted trees on :data:`FEATURES`; ``fit`` / ``predict_proba`` as in scikit-learn.

    Constructor parameters are stored, nothing is computed (scikit-learn's rule).

    Args:
        features: column names, in order.
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization: passed to
            ``HistGradientBoostingClassifier``.
        monotone: constrain the :data:`INCREASING` features to raise the probability.
        seed: random seed (early stopping's validation split).
        audio_rule: read an ``audio`` under :data:`AUDIO_CONFIRMS` as unknown where ``hash_hit``
            reaches :data:`HASH_CONFIRMS` and ``margin`` :data:`AUDIO_RULE_MARGIN` (see the
            module doc); False for models saved before it.
    """

    def __init__(self, features: tuple[str, ...] | list[str] = FEATURES, max_iter: int = 300,
                 learning_rate: float = 0.05, max_leaf_nodes: int = 15, min_samples_leaf: int = 40,
                 l2_regularization: float = 1.0, monotone: bool = True, seed: int = 0, audio_rule: bool = True):
        self.features = tuple(features)
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.monotone = monotone
        self.seed = seed
        self.audio_rule = audio_rule
        self.card: dict[str, Any] = {}

    # -- fitting -----------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("max_iter", "learning_rate", "max_leaf_nodes", "min_samples_leaf",
                                               "l2_regularization", "monotone", "seed", "audio_rule")}

    def fit(self, X: pd.DataFrame | np.ndarray, y: np.ndarray | pd.Series) -> PairModel:
        """Fit on rows of evidence ``X`` (columns :attr:`features`) and boolean labels ``y``."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        x = self._matrix(X)
        yy = np.asarray(y).astype(bool)
        if yy.all() or not yy.any():
            raise ConfigError(f"training needs both copies and non-copies, but got {int(yy.sum())} of {len(yy)} positive")
        cst = [1 if (self.monotone and f in INCREASING) else 0 for f in self.features]
        clf = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
            monotonic_cst=cst, early_stopping=False, random_state=self.seed,
        )
        clf.fit(x, yy)
        self._from_sklearn(clf)
        self._sklearn = clf  # kept for the oracle test only; never saved
        return self

    def _from_sklearn(self, clf: Any) -> None:
        """Copy the fitted trees into flat arrays (one row per node, trees concatenated)."""
        feats, thr, miss, left, right, leaf, value, roots = [], [], [], [], [], [], [], []
        offset = 0
        for it in clf._predictors:
            nodes = it[0].nodes
            roots.append(offset)
            feats.append(nodes["feature_idx"].astype(np.int32))
            thr.append(nodes["num_threshold"].astype(np.float64))
            miss.append(nodes["missing_go_to_left"].astype(bool))
            left.append(nodes["left"].astype(np.int32) + offset)
            right.append(nodes["right"].astype(np.int32) + offset)
            leaf.append(nodes["is_leaf"].astype(bool))
            value.append(nodes["value"].astype(np.float64))
            offset += len(nodes)
        self.trees_ = {
            "feature": np.concatenate(feats), "threshold": np.concatenate(thr), "missing_left": np.concatenate(miss),
            "left": np.concatenate(left), "right": np.concatenate(right), "leaf": np.concatenate(leaf),
            "value": np.concatenate(value), "roots": np.asarray(roots, dtype=np.int32),
            "baseline": np.asarray([float(np.ravel(clf._baseline_prediction)[0])]),
        }

    # -- prediction ----------------------------------------------------------------------------------
    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The trees' inputs: the evidence columns in order, with ``audio_rule`` applied."""
        x = self._matrix_raw(X)
        unknown = self._audio_unknown(x)
        if unknown.any():
            x = x.copy()
            x[unknown, self.features.index("audio")] = np.nan
        return x

    def _matrix_raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            missing = [f for f in self.features if f not in X.columns]
            if missing:
                raise ConfigError(f"pair evidence lacks feature(s) {missing}; the model needs {list(self.features)}")
            X = X[list(self.features)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ConfigError(f"pair evidence must have {len(self.features)} columns, but got shape {x.shape}")
        return x

    def _audio_unknown(self, x: np.ndarray) -> np.ndarray:
        """Rows whose ``audio`` the trees read as unknown (``audio_rule``; see the module doc)."""
        if not (self.audio_rule and "audio" in self.features and "hash_hit" in self.features):
            return np.zeros(len(x), dtype=bool)
        au, hh = self.features.index("audio"), self.features.index("hash_hit")
        unknown = (x[:, au] < AUDIO_CONFIRMS) & (x[:, hh] >= HASH_CONFIRMS)  # NaN compares False
        if "margin" in self.features:  # the path must stand out: else the soundtrack tells stretches apart
            unknown &= x[:, self.features.index("margin")] >= AUDIO_RULE_MARGIN
        return unknown

    def audio_read_as_unknown(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Which rows' differing soundtrack the model reads as unknown because their hashes
        confirm the pixels (for explanations)."""
        return self._audio_unknown(self._matrix_raw(X))

    def decision_function(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Log-odds of a copy, one per row (numpy tree walk over the saved arrays)."""
        t = getattr(self, "trees_", None)
        if t is None:
            raise ConfigError("the pair model is not fitted (call fit or PairModel.load)")
        x = self._matrix(X)
        n = len(x)
        roots = t["roots"].astype(np.int64)
        # every (row, tree) walks down at once: one step per tree level
        node = np.broadcast_to(roots, (n, len(roots))).copy()
        rows = np.broadcast_to(np.arange(n)[:, None], node.shape)
        active = ~t["leaf"][node]
        while active.any():
            nd = node[active]
            v = x[rows[active], t["feature"][nd]]
            go_left = np.where(np.isnan(v), t["missing_left"][nd], v <= t["threshold"][nd])
            node[active] = np.where(go_left, t["left"][nd], t["right"][nd])
            active = ~t["leaf"][node]
        return float(t["baseline"][0]) + t["value"][node].sum(axis=1)

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """(n, 2) probabilities of (not a copy, copy)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def drivers(self, X: pd.DataFrame | np.ndarray, top: int = 5) -> list[list[tuple[str, float]]]:
        """Which features moved each pair's log-odds most: each feature in turn is replaced by its
        training median (``card["reference"]``) and the change in log-odds is reported (positive:
        this value argues for a copy). Per row, the ``top`` largest magnitudes first."""
        x = self._matrix(X)
        n, k = x.shape
        if n == 0:
            return []
        ref = self.card.get("reference", {})
        refv = np.array([np.nan if ref.get(f) is None else float(ref[f]) for f in self.features])
        probes = np.repeat(x[:, None, :], k + 1, axis=1)  # (n, k + 1, k): row itself, then k probes
        idx = np.arange(k)
        probes[:, idx + 1, idx] = refv[None, :]
        raw = self.decision_function(probes.reshape(-1, k)).reshape(n, k + 1)
        deltas = raw[:, :1] - raw[:, 1:]
        out = []
        for d in deltas:
            order = np.argsort(-np.abs(d), kind="stable")[:top]
            out.append([(self.features[j], round(float(d[j]), 3)) for j in order if abs(d[j]) > 1e-9])
        return out

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, out_dir: str | os.PathLike[str], **card: Any) -> Path:
        """Write ``model.npz`` (plain arrays) and ``card.json`` into ``out_dir``; returns the folder."""
        t = getattr(self, "trees_", None)
        if t is None:
            raise ConfigError("the pair model is not fitted; nothing to save")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / "model.npz", **t)
        full = {"format": FORMAT, "features": list(self.features), "params": self.params(),
                "n_trees": int(len(t["roots"])), "n_nodes": int(len(t["feature"])), **self.card, **card,
                "versions": _versions()}
        self.card = full
        (out / "card.json").write_text(json.dumps(full, indent=1, default=_json_default) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str]) -> PairModel:
        """Read a model saved by :meth:`save` (arrays only: ``allow_pickle=False``)."""
        d = Path(model_dir)
        card_p, npz_p = d / "card.json", d / "model.npz"
        if not card_p.is_file() or not npz_p.is_file():
            raise ConfigError(f"{d}: not a pair model folder (needs card.json and model.npz)")
        try:
            card = json.loads(card_p.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{card_p}: cannot parse the model card ({exc})") from exc
        if card.get("format") != FORMAT:
            raise ConfigError(f"{card_p}: format {card.get('format')!r} is not {FORMAT!r}")
        params = {"audio_rule": False, **card.get("params", {})}  # cards from before the rule: off
        model = cls(features=card["features"], **params)
        try:
            with np.load(npz_p, allow_pickle=False) as z:
                model.trees_ = {k: z[k] for k in ("feature", "threshold", "missing_left", "left", "right", "leaf",
                                                  "value", "roots", "baseline")}
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{npz_p}: cannot read the model arrays ({exc})") from exc
        t = model.trees_
        n = len(t["feature"])
        if not all(len(t[k]) == n for k in ("threshold", "missing_left", "left", "right", "leaf", "value")):
            raise ConfigError(f"{npz_p}: node arrays differ in length")
        inner = ~t["leaf"]
        if inner.any() and ((t["feature"][inner] < 0).any() or (t["feature"][inner] >= len(model.features)).any()
                            or (t["left"][inner] >= n).any() or (t["right"][inner] >= n).any()):
            raise ConfigError(f"{npz_p}: a node points outside the model")
        model.card = card
        return model


def _versions() -> dict[str, str]:
    from astradup.provenance import versions

    return versions(("astradup", "scikit-learn", "numpy", "pandas"))


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return str(v)


def model_path(name: str) -> Path:
    """The folder of model ``name``: ``""`` or ``"default"`` is the shipped model, anything else a
    folder written by ``astradup train``."""
    if name in ("", DEFAULT_MODEL):
        return Path(str(resources.files("astradup.scoring") / "models" / DEFAULT_MODEL))
    return Path(name)


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> PairModel:
    return PairModel.load(path)


def load_model(name: str = "") -> PairModel:
    """The pair model ``name`` (see :func:`model_path`), loaded once per process and file version."""
    p = model_path(name)
    card = p / "card.json"
    if not card.is_file():
        raise ConfigError(f"{p}: no pair model here (card.json missing); train one with `astradup train`"
                          if name not in ("", DEFAULT_MODEL) else
                          f"{p}: the shipped pair model is missing from this installation")
    return _load_cached(str(p.resolve()), card.stat().st_mtime)


def _squeeze(s: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, 1] linearly onto [lo, hi] (order kept); values below lo are unchanged."""
    if hi <= lo:
        return np.minimum(s, hi)
    return np.where(s >= lo, lo + (s - lo) * (hi - lo) / max(1.0 - lo, 1e-12), s)


AUDIO_CONFIRMS = 0.5  # audio similarity at which a soundtrack confirms a path that does not stand out
# Mean cosine of the moment-to-moment changes along the path (``resid_path``) at which the motion
# confirms a path that does not stand out. On the real-clip set, copies of a static shot (tree.avi)
# reach a median of 0.33-0.39, other stretches of the same shot 0.02-0.03 (75th percentile 0.06).
MOTION_CONFIRMS = 0.15
# How much a video changes at all (``spread``: mean distance of its frames' embeddings from their
# mean) under which it counts as a still shot: there another stretch of the same shot matches as
# well as a copy, so only the motion or the soundtrack can confirm it (tree.avi's stretches:
# 0.07-0.10; moving pictures: 0.2-0.4).
STILL_SHOT = 0.15
# A still shot's motion is faint and noisy, so it must agree more to confirm: copies of tree.avi
# reach a median resid_path of 0.36-0.46, other stretches of it up to about 0.2.
STILL_MOTION_CONFIRMS = 0.25


# A path whose matched frames are beaten, on average by more than this, by other moments of the
# other video (``standout``): the pictures repeat or change slowly (a cycling display, a screencast,
# an oscilloscope), so another stretch of the same recording aligns about as well as a copy. The
# soundtrack or the frames changing together (``resid_path``, as for a flat path) confirm it.
# (Until the seventh session motion did not confirm: the held-out set's labels then called
# stretches of one held picture "similar", see astradup/synth/looks.py; with them fixed, letting
# motion confirm raised partial recall on both train halves, 0.740 -> 0.813 and 0.497 -> 0.514,
# with no false duplicate on either.)
STANDOUT_RIVAL = -0.01


def held_conditions(segment: np.ndarray, min_duration: np.ndarray, margin: np.ndarray, audio: np.ndarray,
                    m: MatchConfig, resid: np.ndarray | None = None, spread: np.ndarray | None = None,
                    standout: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each rule of :func:`held_back` on its own, by name (boolean arrays): ``short``, ``flat``
    (the path does not stand out and nothing confirms it), ``still`` (a still shot nothing
    confirms) and ``rival`` (other moments of the other video beat the path, nothing confirms it)."""
    from astradup.scoring.similarity import too_short

    short = too_short(segment, min_duration, m)
    flat = np.asarray(margin, np.float64) < m.distinct_margin
    heard = np.nan_to_num(np.asarray(audio, np.float64), nan=0.0) >= AUDIO_CONFIRMS
    confirmed = heard.copy()
    still = np.zeros_like(flat)
    if spread is not None:
        still = np.asarray(spread, np.float64) < STILL_SHOT  # NaN (no embeddings): not still
    if resid is not None:
        motion = np.nan_to_num(np.asarray(resid, np.float64), nan=0.0)
        confirmed |= motion >= np.where(still, STILL_MOTION_CONFIRMS, MOTION_CONFIRMS)
    rival = np.zeros_like(flat)
    if standout is not None:  # NaN (no path): not beaten
        rival = (np.asarray(standout, np.float64) < STANDOUT_RIVAL) & ~confirmed
    return {"short": short, "flat": flat & ~confirmed, "still": still & ~flat & ~confirmed, "rival": rival}


def held_back(segment: np.ndarray, min_duration: np.ndarray, margin: np.ndarray, audio: np.ndarray,
              m: MatchConfig, resid: np.ndarray | None = None, spread: np.ndarray | None = None,
              standout: np.ndarray | None = None) -> np.ndarray:
    """Pairs the pictures alone cannot call copies: an aligned stretch shorter than
    ``m.min_segment`` (or 80 % of the shorter video), or a path whose similarity beats the matrix's
    median by less than ``m.distinct_margin`` while neither the soundtracks agree (audio
    similarity under :data:`AUDIO_CONFIRMS`, or missing) nor the frames change together
    (``resid``, the ``resid_path`` evidence, under :data:`MOTION_CONFIRMS`, or missing); or a
    still shot (``spread`` under :data:`STILL_SHOT`) that neither confirms (its motion must reach
    :data:`STILL_MOTION_CONFIRMS`); or, given ``standout``, a path that other moments of the other
    video beat (under :data:`STANDOUT_RIVAL`: repeating or slowly changing pictures) that neither
    the soundtrack nor the motion confirms."""
    c = held_conditions(segment, min_duration, margin, audio, m, resid, spread, standout)
    return c["short"] | c["flat"] | c["still"] | c["rival"]


#: The evidence :func:`held_back` reads, by its ``explanation["evidence"]`` names.
HELD_EVIDENCE = ("margin", "audio", "resid_path", "spread", "standout")


def _evidence_columns(segment: np.ndarray, evidence: Any) -> dict[str, np.ndarray]:
    n = len(np.asarray(segment))
    return {k: np.asarray(evidence[k], np.float64) if k in evidence else np.full(n, np.nan) for k in HELD_EVIDENCE}


def held_back_by_evidence(segment: np.ndarray, min_duration: np.ndarray, evidence: Any, m: MatchConfig) -> np.ndarray:
    """:func:`held_back` with its evidence taken from ``evidence`` (a DataFrame, or a mapping of
    arrays, with the :data:`HELD_EVIDENCE` columns; a missing one is NaN)."""
    col = _evidence_columns(segment, evidence)
    return held_back(segment, min_duration, col["margin"], col["audio"], m, col["resid_path"], col["spread"],
                     col["standout"])


#: Hold-back rules a moment the exact-moment check confirms answers (:mod:`astradup.scoring.exact`):
#: an aligned stretch too short to trust and a path that does not stand out are then the same
#: moving pictures at the same moments. A still shot cannot be confirmed (its pictures do not
#: move), and other moments matching as well lie outside the check's window: those hold.
CLEARED_BY_MOMENT = ("short", "flat")


def clearable_by_moment(segment: np.ndarray, min_duration: np.ndarray, evidence: Any, m: MatchConfig) -> np.ndarray:
    """Pairs held back (:func:`held_back_by_evidence`) by :data:`CLEARED_BY_MOMENT` rules only."""
    col = _evidence_columns(segment, evidence)
    c = held_conditions(segment, min_duration, col["margin"], col["audio"], m, col["resid_path"], col["spread"],
                        col["standout"])
    held = np.logical_or.reduce([c[k] for k in c])
    others = np.logical_or.reduce([c[k] for k in c if k not in CLEARED_BY_MOMENT])
    return held & ~others


def held_back_reasons(segment: np.ndarray, min_duration: np.ndarray, evidence: Any, m: MatchConfig) -> list[list[str]]:
    """Why each pair is held back (:func:`held_back_by_evidence`), in words; [] for a pair that is not."""
    col = _evidence_columns(segment, evidence)
    c = held_conditions(segment, min_duration, col["margin"], col["audio"], m, col["resid_path"], col["spread"],
                        col["standout"])
    seg, mg, so = np.asarray(segment, np.float64), col["margin"], col["standout"]
    words = {
        "short": lambda k: f"the aligned stretch ({seg[k]:.1f} s) is shorter than match.min_segment ({m.min_segment:g} s) "
                           "or 80 % of the shorter video",
        "flat": lambda k: f"the aligned path does not stand out from the rest of the frames (margin {mg[k]:.4f} < "
                          f"match.distinct_margin {m.distinct_margin:g}) and neither the soundtrack nor the motion confirms it",
        "still": lambda k: "a still shot (the frames hardly change) that neither the soundtrack nor the motion confirms",
        "rival": lambda k: f"other moments of the other video match as well (standout {so[k]:.3f} < {STANDOUT_RIVAL:g}: "
                           "repeating or slowly changing pictures) and neither the soundtrack nor the motion confirms it",
    }
    return [[words[name](k) for name in words if c[name][k]] for k in range(len(seg))]


#: Precisions a model's operating point may be chosen for (on held-out videos of its training
#: data), strictest first: training takes the first whose held-out recall is still
#: :data:`OPERATING_MIN_RECALL` (see :func:`astradup.tuning.train.train_pair_model`).
OPERATING_PRECISIONS = (0.999, 0.998, 0.995, 0.99)
OPERATING_MIN_RECALL = 0.85


def operating_point(p: np.ndarray, positive: np.ndarray, precision: float = OPERATING_PRECISIONS[-1]) -> float | None:
    """The lowest probability at which the pairs scoring at least that are ``precision`` pure
    (``p``: held-out probabilities; ``positive``: their truth). None when no cut reaches it."""
    p = np.asarray(p, np.float64)
    pos = np.asarray(positive, bool)
    if not pos.any():
        return None
    order = np.argsort(-p, kind="stable")
    ps, tp = p[order], np.cumsum(pos[order])
    prec = tp / np.arange(1, len(p) + 1)
    # cuts fall between distinct probabilities (ties go together): the deepest one still that pure
    # whose last tie group holds a copy (a group of non-copies below it adds nothing but errors)
    ends = np.flatnonzero(np.append(ps[1:] < ps[:-1], True))
    starts = np.append(0, ends[:-1] + 1)
    gained = tp[ends] - np.where(starts > 0, tp[starts - 1], 0)
    ok = ends[(prec[ends] >= precision) & (gained > 0)]
    return float(ps[ok[-1]]) if ok.size else None


def to_score(p: np.ndarray, near_p: float | None, bands: FusionConfig) -> np.ndarray:
    """Probability -> score: monotone piecewise-linear, so that the model's operating point
    ``near_p`` (:func:`operating_point`, saved in its card) lands on the "near" band, even odds
    on "similar", and 0 and 1 stay put. Order (and so every ranking metric) is unchanged; without
    an operating point the probability is the score."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    if near_p is None or not (0.5 < near_p < 1.0) or not (0.0 < bands.similar < bands.near < 1.0):
        return p
    return np.interp(p, [0.0, 0.5, near_p, 1.0], [0.0, bands.similar, bands.near, 1.0])


def learned_verdict(p: np.ndarray, exact_ok: np.ndarray, aligned: np.ndarray, bands: FusionConfig,
                    held: np.ndarray | None = None, near_p: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Probability of a copy -> (score, label) with the config's bands.

    The score is the probability (mapped so the model's operating point is the "near" band: see
    :func:`to_score`), so scores rank and the bands are probability thresholds, with
    rules the model cannot overrule: "exact" needs the hashes to agree over (almost) all of both
    videos (``exact_ok``); a pair in ``held`` is never a copy (at most "similar"): its aligned
    stretch is shorter than ``match.min_segment``, or its path does not stand out from the rest of
    the similarity matrix and no soundtrack confirms it (static or repetitive pictures, where other
    moments of the same material look the same: see :func:`held_back`); a pair with no aligned
    path is never "similar" or above.
    Rather than capping (which piles pairs up on one value), a pair a rule holds back is squeezed
    monotonically into the band below, so the order among such pairs is kept. ``near_p`` is the
    model's operating point (:func:`to_score`).
    """
    from astradup.scoring.fusion import band_labels
    from astradup.scoring.similarity import BAND_EPS

    s = to_score(p, near_p, bands)
    exact_ok = np.asarray(exact_ok, dtype=bool)
    aligned = np.asarray(aligned, dtype=bool)
    s = np.where(exact_ok, s, _squeeze(s, bands.near, max(bands.exact - BAND_EPS, bands.near)))
    if held is not None:
        s = np.where(np.asarray(held, dtype=bool), _squeeze(s, bands.similar, max(bands.near - BAND_EPS, bands.similar)), s)
    s = np.where(aligned, s, s * max(bands.similar - BAND_EPS, 0.0))
    return s, band_labels(s, bands)


def model_near_p(model: PairModel) -> float | None:
    """The operating point saved in a model's card (None for a model trained before it existed)."""
    v = (model.card.get("operating_point") or {}).get("near_p")
    return None if v is None else float(v)


def evidence_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """The :data:`FEATURES` of each row of a pairs table, read from its explanations
    (``explanation["evidence"]``); rows without evidence are NaN."""
    ex = pairs["explanation"].map(lambda s: json.loads(s) if isinstance(s, str) and s else (s if isinstance(s, dict) else {}))
    ev = pd.DataFrame([e.get("evidence", {}) or {} for e in ex], index=pairs.index)
    return ev.reindex(columns=list(FEATURES)).apply(pd.to_numeric, errors="coerce")
