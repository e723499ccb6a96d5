"""Scoring one candidate pair: modalities, fusion, band, and the explanation that goes with it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.features.video import VideoFeatures
from astradup.labels import DUPLICATE_LABELS
from astradup.scoring.fusion import fuse, fuse_arrays
from astradup.scoring.graph import apply_graph
from astradup.scoring.learned import (
    FEATURES,
    HELD_EVIDENCE,
    clearable_by_moment,
    evidence_table,
    held_back_by_evidence,
    held_back_reasons,
    learned_verdict,
    load_model,
    model_near_p,
)
from astradup.scoring.similarity import (
    VisualResult,
    audio_similarity,
    metadata_similarity,
    visual_similarity,
)


@dataclass
class PairScore:
    """One verified pair (the row written to pairs.csv)."""

    score: float
    label: str
    confidence: float
    visual: float | None
    audio: float | None
    metadata: float | None
    a_start: float | None
    a_end: float | None
    b_start: float | None
    b_end: float | None
    partial: bool
    explanation: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d["explanation"] = json.dumps(self.explanation, separators=(",", ":"))
        return d


def _box(box: tuple[float, float, float, float] | None) -> list[float] | None:
    """A content box (top, bottom, left, right as fractions) that cuts part of the frame, rounded;
    None for the whole frame or none stored."""
    from astradup.features.preprocess import cuts_frame

    return [round(float(x), 3) for x in box] if box is not None and cuts_frame(box) else None


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def pair_features(vis: VisualResult, aud: float | None, meta_raw: float | None, a: VideoFeatures,
                  b: VideoFeatures) -> dict[str, float]:
    """The learned scorer's evidence for one pair (:data:`astradup.scoring.learned.FEATURES`):
    the visual alignment's statistics and :func:`path_evidence`, coverage, durations, audio and
    metadata similarity (NaN when missing)."""
    nan = float("nan")
    al = vis.alignment
    da, db = a.duration, b.duration
    ev = {
        "path_sim": vis.path_sim, "background": vis.background, "margin": vis.path_sim - vis.background,
        **vis.evidence,
        "coverage_min": min(vis.coverage_a, vis.coverage_b), "coverage_max": max(vis.coverage_a, vis.coverage_b),
        "aligned_frames": 0.0 if al is None else float(al.length),
        "segment_s": 0.0 if al is None else min(al.a_end - al.a_start, al.b_end - al.b_start),
        "min_duration_s": min(da, db), "duration_ratio": min(da, db) / max(da, db, 1e-9),
        "audio": nan if aud is None else float(aud), "metadata": nan if meta_raw is None else float(meta_raw),
    }
    return {f: float(ev.get(f, nan)) for f in FEATURES}


def _exact_ok(hash_agree: np.ndarray, cov_a: np.ndarray, cov_b: np.ndarray, aligned: np.ndarray, cfg: AstradupConfig) -> np.ndarray:
    m = cfg.match
    return np.asarray(aligned, bool) & (np.asarray(hash_agree) >= m.exact_hash) & (np.minimum(cov_a, cov_b) >= m.exact_coverage)


def score_pair(a: VideoFeatures, b: VideoFeatures, cfg: AstradupConfig) -> PairScore:
    """Compare two videos on every modality and score them: a pure function of their features."""
    return score_pairs([(a, b)], cfg)[0]


def score_pairs(pairs: list[tuple[VideoFeatures, VideoFeatures]], cfg: AstradupConfig) -> list[PairScore]:
    """:func:`score_pair` of many pairs, with the learned scorer's model run once over all of them.
    Pairs the hashes do not confirm are checked geometrically first (:func:`add_geometry`)."""
    scored = [_rule_score(a, b, cfg) for a, b in pairs]
    out = [ps for ps, _ in scored]
    for (a, b), ps in zip(pairs, out):
        boxes = {k: _box(v.content_box) for k, v in (("a", a), ("b", b))}
        if any(x is not None for x in boxes.values()):  # what each side's features describe, for reviewers
            ps.explanation["content_box"] = boxes
    add_geometry(pairs, out, [probes for _, probes in scored], cfg)
    if cfg.fusion.scorer == "learned" and out:
        apply_model(out, cfg, pairs, [probes for _, probes in scored])
    return out


def needs_geometry(ev: dict[str, Any], cfg: AstradupConfig) -> bool:
    """Whether a rule-scored pair's evidence calls for the geometric check: matching is on
    (``match.geometric``), something aligned with a path at least ``match.min_candidate_sim``
    similar, and the hashes confirm under ``match.geometric_hash_hit`` of the path's frames (where
    they confirm more, the pixels are already known to agree)."""
    m = cfg.match
    if not m.geometric or not (ev.get("aligned_frames") or 0) > 0:
        return False
    hit, sim = ev.get("hash_hit"), ev.get("path_sim")
    return (hit is None or not hit >= m.geometric_hash_hit) and sim is not None and sim >= m.min_candidate_sim


def add_geometry(pairs: list[tuple[VideoFeatures, VideoFeatures]], scores: list[PairScore],
                 probes: list[list[tuple[float, float]]], cfg: AstradupConfig) -> None:
    """Fill ``geo_*`` evidence (:mod:`astradup.scoring.geometry`) of the pairs that need it (in
    place), decoding each pair's probe frames (``VisualResult.probes``) from the media files;
    others keep NaN."""
    from astradup.scoring.geometry import GEO_FEATURES, pair_geometry

    for (a, b), ps, times in zip(pairs, scores, probes):
        ev = ps.explanation["evidence"]
        if not times or not needs_geometry(ev, cfg):
            continue
        geo = pair_geometry(a.path, b.path, times, int(a.info.get("rotation") or 0), int(b.info.get("rotation") or 0),
                            grid_a=a.timestamps, grid_b=b.timestamps, inset=cfg.sampling.inset,
                            box_a=a.content_box, box_b=b.content_box)
        ev.update({k: _r(geo[k], 5) for k in GEO_FEATURES})


def add_exact(pairs: list[tuple[VideoFeatures, VideoFeatures]], scores: list[PairScore],
              probes: list[list[tuple[float, float]]], need: np.ndarray) -> None:
    """Fill the exact-moment evidence (:mod:`astradup.scoring.exact`) of the pairs in ``need``
    (in place), decoding their probe frames; others keep none."""
    from astradup.media.decode import samples_reference_frames
    from astradup.scoring.exact import EXACT_FEATURES, pair_exact, video_pixels, window_s

    for k in np.flatnonzero(need):
        (a, b), times = pairs[k], probes[k]
        ex = pair_exact(a.path, b.path, times, window_s(a.timestamps, b.timestamps), int(a.info.get("rotation") or 0),
                        int(b.info.get("rotation") or 0), a.content_box, b.content_box, a.duration, b.duration,
                        pixels_a=video_pixels(a.info, a.duration), pixels_b=video_pixels(b.info, b.duration),
                        ref_a=samples_reference_frames(a.decoder))
        scores[k].explanation["evidence"].update({f: _r(ex[f], 3) for f in EXACT_FEATURES})


def apply_model(scores: list[PairScore], cfg: AstradupConfig,
                pairs: list[tuple[VideoFeatures, VideoFeatures]] | None = None,
                probes: list[list[tuple[float, float]]] | None = None) -> None:
    """Replace score, label, confidence and partial of rule-scored pairs by the learned scorer's
    (in place), and add its probability and main drivers to each explanation. With the pairs'
    features and probe times, uncertain pairs get the exact-moment check first
    (``match.exact_check``; :mod:`astradup.scoring.exact`)."""
    from astradup.scoring.exact import confirmed, lift, needs_exact, read_evidence

    model = load_model(cfg.fusion.model)
    X = np.array([[ps.explanation["evidence"].get(f, np.nan) for f in model.features] for ps in scores], dtype=np.float64)
    X = np.where(np.isfinite(X), X, np.nan)
    p = model.predict_proba(X)[:, 1]
    vis = [ps.explanation["visual"] for ps in scores]
    aligned = np.array([v["aligned_frames"] > 0 for v in vis])
    ok = _exact_ok(np.array([v["hash_agreement"] or 0.0 for v in vis]), np.array([v["coverage_a"] or 0.0 for v in vis]),
                   np.array([v["coverage_b"] or 0.0 for v in vis]), aligned, cfg)
    evidence = {k: np.array([ps.explanation["evidence"].get(k, np.nan) for ps in scores], dtype=np.float64)
                for k in HELD_EVIDENCE}
    seg, dur = np.array([v["segment_s"] or 0.0 for v in vis]), np.array([v["min_duration_s"] or 0.0 for v in vis])
    why = held_back_reasons(seg, dur, evidence, cfg.match)  # a pair is held back exactly when it has reasons
    held = np.array([bool(w) for w in why], dtype=bool)
    near_p = model_near_p(model)
    clearable = clearable_by_moment(seg, dur, evidence, cfg.match)
    need = needs_exact(p, near_p, held, aligned, clearable)
    if cfg.match.exact_check and pairs is not None and probes is not None and need.any():
        add_exact(pairs, scores, probes, need)
    p_eff, cleared = p, np.zeros(len(p), dtype=bool)
    if cfg.match.exact_check:
        moment = read_evidence([ps.explanation["evidence"] for ps in scores])
        p_eff, cleared = lift(p, *moment, near_p), clearable & confirmed(*moment)
    s, lab = learned_verdict(p_eff, ok, aligned, cfg.fusion, held & ~cleared, near_p)
    drivers = model.drivers(X)
    quiet = model.audio_read_as_unknown(X)
    for k, ps in enumerate(scores):
        ps.score = round(float(s[k]), 6)
        ps.label = str(lab[k])
        ps.confidence = round(float(max(p_eff[k], 1.0 - p_eff[k])), 4)
        ps.partial = bool(ps.explanation["partial_coverage"] and ps.label in DUPLICATE_LABELS)
        ps.explanation["scorer"] = "learned"
        ps.explanation["band"] = ps.label
        ps.explanation["band_threshold"] = {"exact": cfg.fusion.exact, "near": cfg.fusion.near, "similar": cfg.fusion.similar}.get(ps.label)
        ps.explanation["learned"] = {"p_copy": round(float(p[k]), 6), "model": model.card.get("name", cfg.fusion.model or "default"),
                                     "exact_allowed": bool(ok[k]), "drivers": drivers[k]}
        if p_eff[k] != p[k] or cleared[k]:  # the exact-moment check found the same moving pictures
            ps.explanation["learned"]["exact_moment"] = (
                f"the same pictures at the same moments: p {p[k]:.4f} -> {p_eff[k]:.4f}" if p_eff[k] != p[k]
                else "the same pictures at the same moments") + ("".join(f"; answers: {w}" for w in why[k]) if cleared[k] else "")
        if quiet[k]:  # the soundtrack differs, but the hashes confirm the pixels: read as unknown
            ps.explanation["learned"]["audio"] = "unknown: the hashes confirm the pixels"
        if why[k] and not cleared[k]:  # kept below the copy bands whatever the model said: say which rule did it
            ps.explanation["learned"]["held_back"] = why[k]


def _rule_score(a: VideoFeatures, b: VideoFeatures, cfg: AstradupConfig) -> tuple[PairScore, list[tuple[float, float]]]:
    """The rule-based verdict (modalities, fusion, band) and the evidence the learned scorer reads,
    with the aligned path's probe times for the geometric check (:func:`add_geometry`)."""
    vis = visual_similarity(a, b, cfg.match, cfg.fusion)
    aud, offset = audio_similarity(a.audio, b.audio)
    meta_raw = metadata_similarity(a, b)
    meta = meta_raw
    al = vis.alignment
    is_partial = al is not None and min(vis.coverage_a, vis.coverage_b) < cfg.match.partial_coverage
    if is_partial:
        meta = None  # durations of a clip and its source differ by design: not evidence either way
    fused = fuse({"visual": vis.score, "audio": aud, "metadata": meta}, cfg.fusion)
    partial = bool(is_partial and fused.label in DUPLICATE_LABELS)
    band = {"exact": cfg.fusion.exact, "near": cfg.fusion.near, "similar": cfg.fusion.similar}.get(fused.label)
    evidence = pair_features(vis, aud, meta_raw, a, b)
    explanation = {
        "scorer": "rules",
        "weights": {k: round(v, 4) for k, v in fused.weights.items()},
        "weighted_sum": _r(fused.score),
        "band": fused.label,
        "band_threshold": band,
        "partial_coverage": bool(is_partial),
        "visual": {
            "score": _r(vis.score),
            "path_sim": _r(vis.path_sim),
            "background": _r(vis.background),
            "hash_agreement": _r(vis.hash_agreement),
            "coverage_a": _r(vis.coverage_a),
            "coverage_b": _r(vis.coverage_b),
            "aligned_frames": 0 if al is None else al.length,
            "segment_s": 0.0 if al is None else _r(min(al.a_end - al.a_start, al.b_end - al.b_start), 3),
            "min_duration_s": _r(min(a.duration, b.duration), 3),
        },
        "metadata_raw": _r(meta_raw),
        "audio": {
            "status_a": a.audio.status if a.audio else "disabled",
            "status_b": b.audio.status if b.audio else "disabled",
            "offset_s": _r(offset, 2),
        },
        "evidence": {k: _r(v, 5) for k, v in evidence.items()},
        "top_frames": [] if al is None else [[_r(ta, 2), _r(tb, 2), _r(s)] for ta, tb, s in al.top_frames],
    }
    return PairScore(
        score=round(fused.score, 6),
        label=fused.label,
        confidence=round(fused.confidence, 4),
        visual=_r(vis.score),
        audio=_r(aud),
        metadata=_r(meta),
        a_start=_r(al.a_start, 3) if al else None,
        a_end=_r(al.a_end, 3) if al else None,
        b_start=_r(al.b_start, 3) if al else None,
        b_end=_r(al.b_end, 3) if al else None,
        partial=partial,
        explanation=explanation,
    ), vis.probes


def rescore_pairs(pairs: pd.DataFrame, cfg: AstradupConfig) -> pd.DataFrame:
    """Recompute visual, metadata, score, label and partial from the explanations' statistics.

    With ``fusion.scorer = "learned"`` the score is the pair model's (``fusion.model``) verdict on
    the evidence stored in each explanation; the explanations themselves are not rewritten, but
    for the pairs whose verdict the pair graph changes, or no longer changes
    (:func:`astradup.scoring.graph.apply_graph`).

    Vectorised and exact for every ``match.*`` field that does not change the alignment itself
    (the ``q_*`` knots, ``exact_hash``, ``exact_coverage``, ``distinct_margin``, ``min_segment``,
    ``partial_coverage``) and for all of ``fusion``, so Optuna can tune them without re-matching.
    """
    from astradup.scoring.similarity import visual_from_stats

    ex = pairs["explanation"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    vis = pd.DataFrame([e.get("visual", {}) for e in ex], index=pairs.index)
    get = lambda c, d=0.0: pd.to_numeric(vis.get(c, pd.Series(d, index=pairs.index)), errors="coerce").fillna(d).to_numpy()  # noqa: E731
    aligned = get("aligned_frames") > 0
    cov_a, cov_b = get("coverage_a"), get("coverage_b")
    visual = visual_from_stats(get("path_sim"), get("background"), get("hash_agreement"), cov_a, cov_b,
                               get("segment_s"), get("min_duration_s", 1.0), aligned, cfg.match, cfg.fusion)
    meta_raw = pd.to_numeric(pd.Series([e.get("metadata_raw") for e in ex], index=pairs.index), errors="coerce").to_numpy(dtype=float)
    is_partial = aligned & (np.minimum(cov_a, cov_b) < cfg.match.partial_coverage)
    meta = np.where(is_partial, np.nan, meta_raw)
    out = pairs.copy()
    out["visual"] = np.round(visual, 4)
    out["metadata"] = meta
    audio = pd.to_numeric(out["audio"], errors="coerce").to_numpy(dtype=float)
    score, label, conf = fuse_arrays(out["visual"].to_numpy(dtype=float), audio, meta, cfg.fusion)
    if cfg.fusion.scorer == "learned":
        ev = evidence_table(pairs)
        if ev.isna().all(axis=1).any():
            from astradup.errors import ConfigError

            raise ConfigError("pairs without the learned scorer's evidence (written before it existed, or by "
                              "another tool) cannot be re-scored with fusion.scorer = 'learned'; run "
                              "`astradup match` again, or use fusion.scorer = 'rules'")
        model = load_model(cfg.fusion.model)
        p = model.predict_proba(ev[list(model.features)])[:, 1]
        ok = _exact_ok(get("hash_agreement"), cov_a, cov_b, aligned, cfg)
        held = held_back_by_evidence(get("segment_s"), get("min_duration_s", 1.0), ev, cfg.match)
        if cfg.match.exact_check:  # as checked when matched (pairs not checked then stay as they are)
            from astradup.scoring.exact import confirmed, lift, read_evidence

            moment = read_evidence([e.get("evidence") or {} for e in ex])
            p = lift(p, *moment, model_near_p(model))
            held &= ~(clearable_by_moment(get("segment_s"), get("min_duration_s", 1.0), ev, cfg.match) & confirmed(*moment))
        score, label = learned_verdict(p, ok, aligned, cfg.fusion, held, model_near_p(model))
        conf = np.maximum(p, 1.0 - p)
    out["score"], out["label"], out["confidence"] = score, label, conf
    out["partial"] = is_partial & np.isin(label, DUPLICATE_LABELS)
    return apply_graph(out, cfg)
