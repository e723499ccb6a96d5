"""The content of the workbench notebooks: loading a run, picking examples, building tables.

The notebooks only call these (one call per cell), so everything here is tested without
papermill. Loading is the only part that reads files; the selection and table functions take
plain DataFrames.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astradup.labels import DUPLICATE_LABELS, LABELS
from astradup.paths import from_text
from astradup.provenance import versions
from astradup.report.display import Html, esc, kv_table, table_html

log = logging.getLogger(__name__)

#: metrics compared between the default and the tuned config
TUNE_METRICS = ("micro_ap", "recall_at_p99", "precision", "recall", "f1", "partial_recall", "mean_tiou")
METRIC_NAMES = {
    "micro_ap": "micro average precision",
    "recall_at_p99": "recall at 99% precision",
    "precision": "precision (exact + near)",
    "recall": "recall (exact + near)",
    "f1": "F1",
    "fpr": "false-positive rate",
    "fp_per_1000": "false positives per 1000 videos",
    "partial_recall": "partial-copy recall",
    "mean_tiou": "mean temporal IoU",
    "n_videos": "videos in the corpus",
    "n_pairs_total": "possible pairs",
    "n_positive": "true copies (truth)",
    "n_negative": "non-copies",
    "n_pred_duplicate": "pairs reported as copies",
}


@dataclass
class RunData:
    """Everything a report shows about one run, loaded once.

    Attributes:
        pairs: the reported pairs (``pairs.csv`` contract).
        truth: the truth table, or None.
        result: the evaluation (an ``EvalResult``), or None without a truth table.
        videos, failures, runs: the store's tables (empty when there is no store).
        config: the ``AstradupConfig`` the run used.
        store: path of the store ("" when none), media_root: folder video paths are relative to.
        explainer: ``(a, b) -> dict`` as :meth:`astradup.Library.explain` returns, or None.
    """

    pairs: pd.DataFrame
    config: Any
    truth: pd.DataFrame | None = None
    result: Any = None
    videos: pd.DataFrame = field(default_factory=pd.DataFrame)
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    store: str = ""
    media_root: str = ""
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    explainer: Callable[[str, str], dict[str, Any]] | None = None

    @property
    def joined(self) -> pd.DataFrame:
        """The evaluation's joined table, or the pairs themselves when there is no truth."""
        if self.result is not None:
            return self.result.joined
        return self.pairs

    @property
    def operating_threshold(self) -> float:
        """Score from which a pair is reported as a copy: the ``near`` band."""
        return float(self.config.fusion.near)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.result.metrics) if self.result is not None else {}

    @property
    def pr_curve(self) -> pd.DataFrame:
        return self.result.pr_curve if self.result is not None else pd.DataFrame()

    @property
    def confusion(self) -> pd.DataFrame:
        return self.result.confusion if self.result is not None else pd.DataFrame()

    @property
    def per_transform(self) -> pd.DataFrame:
        return self.result.per_transform if self.result is not None else pd.DataFrame()

    @property
    def class_column(self) -> str:
        """``relation`` (truth class) with a truth table, else ``label`` (predicted band)."""
        return "relation" if self.result is not None else "label"

    @property
    def corpus_videos(self) -> list[str] | None:
        """Every video of the corpus: ``videos.csv`` beside the truth, else the store's videos."""
        if self.truth is not None and self.truth.attrs.get("videos") is not None:
            return list(self.truth.attrs["videos"])
        for col in ("rel_path", "path"):  # pairs name videos relative to the media folder
            if col in self.videos.columns and len(self.videos) and self.videos[col].notna().all():
                return self.videos[col].astype(str).tolist()
        return None


# -- tables -------------------------------------------------------------------------------------
def override_counts(decisions: pd.DataFrame) -> pd.DataFrame:
    """How often reviewers overrode the model, per model label: decisions (duplicate or
    not-duplicate; skips left out), agreed, overrode, override rate. A reviewer overrides the
    model by calling an ``exact``/``near`` pair not a duplicate, or any other pair (``similar``,
    ``different``, a partial copy, or one the model never scored) a duplicate. The last row sums
    every label."""
    cols = ["model label", "decisions", "agreed", "overrode", "override rate"]
    if decisions is None or not len(decisions) or "decision" not in decisions:
        return pd.DataFrame(columns=cols)
    d = decisions[decisions["decision"].isin(["duplicate", "not-duplicate"])].copy()
    if not len(d):
        return pd.DataFrame(columns=cols)
    label = d["label"].fillna("not scored").astype(str) if "label" in d else pd.Series("not scored", index=d.index)
    partial = d["partial"].fillna(False).astype(bool) if "partial" in d else pd.Series(False, index=d.index)
    model_dup = label.isin(DUPLICATE_LABELS) & ~partial
    d["model label"] = np.where(partial & label.isin(DUPLICATE_LABELS), "partial", label)
    d["overrode"] = np.where(d["decision"] == "duplicate", ~model_dup, model_dup)
    g = d.groupby("model label", sort=False)["overrode"].agg(["size", "sum"])
    order = [k for k in ("exact", "near", "partial", "similar", "different", "not scored") if k in g.index]
    g = g.loc[order + [k for k in g.index if k not in order]]
    g.loc["all"] = g.sum()
    out = pd.DataFrame({"model label": g.index, "decisions": g["size"].astype(int).to_numpy(),
                        "overrode": g["sum"].astype(int).to_numpy()})
    out["agreed"] = out["decisions"] - out["overrode"]
    out["override rate"] = out["overrode"] / out["decisions"]
    return out[cols].reset_index(drop=True)


def reviewer_overrides(data: RunData) -> list[Any]:
    """The reviewers section: the override table and its figure, or a note when nobody has
    recorded a decision yet (``astradup decide`` or the review notebook)."""
    from astradup.report import figures

    table = override_counts(data.decisions)
    if not len(table):
        return [Html('<p class="astradup-note">No reviewer decisions are recorded in this store yet '
                     "(record them with <code>astradup decide</code> or the review notebook).</p>")]
    return [table_html(table, caption="Reviewer decisions against the model's label"), figures.reviewer_overrides(table)]


def summary(data: RunData) -> Html:
    """The metrics, or without a truth table a note saying so; then the reported pairs per label."""
    counts = table_html(label_counts(data.pairs), caption="Reported pairs per label").html
    if data.result is None:
        return Html('<p class="astradup-note">No truth table was given: metrics are not computed; '
                    "the pairs found are shown below.</p>" + counts)
    return Html(metrics_table(data.metrics).html + counts)


def fields_table(obj: Any, caption: str | None = None) -> Html:
    """A dataclass's (or mapping's) fields as a name/value table, e.g. an ``IndexSummary``."""
    import dataclasses

    is_instance = dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    items = dataclasses.asdict(obj) if is_instance else dict(obj)
    return kv_table(items, caption=caption)


def metrics_table(metrics: Mapping[str, Any]) -> Html:
    """Metrics with readable names, in a fixed order (unknown ones after)."""
    keys = [k for k in METRIC_NAMES if k in metrics] + [k for k in metrics if k not in METRIC_NAMES]
    rows = []
    for k in keys:
        v = metrics[k]
        shown = "n/a" if isinstance(v, float) and np.isnan(v) else (f"{v:.4f}" if isinstance(v, float) else v)
        rows.append((METRIC_NAMES.get(k, k), shown))
    return kv_table(rows, caption="Metrics")


def false_positives(joined: pd.DataFrame, n: int = 10) -> pd.DataFrame | None:
    """Pairs reported as copies (``exact``/``near``) that the truth says are not, highest score
    first; None without a truth table (``joined`` is then the bare pairs)."""
    if "positive" not in joined.columns:
        return None
    fp = joined[joined["label"].isin(DUPLICATE_LABELS) & ~joined["positive"].astype(bool)]
    return fp.sort_values("score", ascending=False, kind="stable").head(n)


def false_negatives(joined: pd.DataFrame, n: int = 10) -> pd.DataFrame | None:
    """True copies not reported as copies: the near misses (highest score) first, then the
    pairs never scored; None without a truth table."""
    if "positive" not in joined.columns:
        return None
    fn = joined[joined["positive"].astype(bool) & ~joined["label"].isin(DUPLICATE_LABELS)]
    return fn.sort_values("score", ascending=False, kind="stable", na_position="last").head(n)


def top_pairs(pairs: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The highest-scoring reported pairs."""
    return pairs.sort_values("score", ascending=False, kind="stable").head(n)


def label_counts(pairs: pd.DataFrame) -> pd.DataFrame:
    """Reported pairs per predicted label, in band order."""
    order = list(LABELS)
    counts = pairs["label"].value_counts() if len(pairs) else pd.Series(dtype=int)
    return pd.DataFrame({"label": order, "pairs": [int(counts.get(k, 0)) for k in order]})


def _segment_text(row: pd.Series, prefix: str) -> str:
    cols = [f"{prefix}{c}" for c in ("a_start", "a_end", "b_start", "b_end")]
    if not all(c in row.index for c in cols):
        return ""
    vals = [row[c] for c in cols]
    if any(v is None or pd.isna(v) for v in vals):
        return ""
    a0, a1, b0, b1 = (float(v) for v in vals)
    return f"a {a0:.1f}-{a1:.1f} s / b {b0:.1f}-{b1:.1f} s"


def _thumb_time(row: pd.Series, side: str) -> float:
    for prefix in ("pred_", "", "true_"):
        s, e = row.get(f"{prefix}{side}_start"), row.get(f"{prefix}{side}_end")
        if s is not None and e is not None and pd.notna(s) and pd.notna(e):
            return float(s + e) / 2.0
    return 1.0


def resolve_media(path: str, media_root: str = "") -> Path:
    """A video path from the tables as a file: relative paths are under ``media_root``."""
    p = Path(from_text(path))  # the tables hold names as astradup.paths.to_text spells them
    return p if p.is_absolute() or not media_root else Path(from_text(media_root)) / p


def thumbnail_html(path: str | os.PathLike[str], t: float, size: int = 160) -> Html:
    """An ``<img>`` with a PNG of the frame at ``t`` seconds, inline (base64); a short escaped
    note when the frame cannot be decoded."""
    try:
        from PIL import Image

        from astradup.media import thumbnail  # type: ignore[attr-defined,unused-ignore]

        rgb = thumbnail(path, float(t), size=size)
        buf = io.BytesIO()
        Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return Html(f'<img alt="{esc(Path(path).name)} at {t:.1f} s" '
                    f'src="data:image/png;base64,{data}" width="{size}">')
    except Exception as exc:  # noqa: BLE001 - a missing thumbnail must not sink the report
        log.info("%s: no thumbnail at %.1f s (%s)", path, t, exc)
        return Html(f'<span class="astradup-note">no thumbnail ({esc(type(exc).__name__)})</span>')


def examples_table(rows: pd.DataFrame | None, *, media_root: str = "", thumbnails: bool = True,
                   caption: str | None = None) -> Html:
    """Pairs with both videos' thumbnails, per-modality scores and aligned segments.

    ``rows`` is a slice of the joined table (or of the pairs); names are escaped. ``None``
    (false positives without a truth table) says that a truth table is needed.
    """
    if rows is None:
        return Html(f'<p class="astradup-note">{esc(caption or "pairs")}: needs a truth table.</p>')
    if len(rows) == 0:
        return Html(f'<p class="astradup-note">{esc(caption or "pairs")}: none.</p>')
    out: list[dict[str, Any]] = []
    for _, r in rows.iterrows():
        item: dict[str, Any] = {}
        for side in ("a", "b"):
            item[side] = r[side]
            if thumbnails:
                item[f"{side} frame"] = thumbnail_html(resolve_media(str(r[side]), media_root), _thumb_time(r, side))
        for c in ("relation", "transform", "label", "score", "visual", "audio", "metadata", "confidence"):
            if c in r.index:
                item[c] = r[c]
        seg = _segment_text(r, "pred_") or _segment_text(r, "")
        item["matched range"] = seg
        true_seg = _segment_text(r, "true_")
        if true_seg:
            item["true range"] = true_seg
        if "tiou" in r.index and pd.notna(r["tiou"]):
            item["tIoU"] = r["tiou"]
        out.append(item)
    df = pd.DataFrame(out).astype(object)
    return table_html(df, caption=caption)


def pick_alignment_pairs(data: RunData, n: int = 2) -> list[tuple[str, str]]:
    """Pairs worth an alignment plot: the best partial copy found, the top false positive, and
    then the top pairs."""
    j = data.joined
    picks: list[tuple[str, str]] = []
    if "relation" in j.columns and "pred_duplicate" in j.columns:
        part = j[(j["relation"] == "partial") & j["pred_duplicate"]].sort_values("score", ascending=False)
        picks += list(zip(part["a"].astype(str), part["b"].astype(str), strict=True))[:1]
        fp = false_positives(j, 1)
        if fp is not None:
            picks += list(zip(fp["a"].astype(str), fp["b"].astype(str), strict=True))
    scored = j[j["score"].notna()] if "score" in j.columns else j.iloc[0:0]
    for a, b in zip(*(top_pairs(scored, n + len(picks))[k].astype(str) for k in ("a", "b")), strict=True):
        picks.append((a, b))
    seen: list[tuple[str, str]] = []
    for p in picks:
        if p not in seen:
            seen.append(p)
    return seen[:n]


def explain(data: RunData, a: str, b: str) -> dict[str, Any] | None:
    """``data.explainer(a, b)`` (everything behind one pair's verdict), or None (with a log line)
    when the run has no explainer or it cannot say."""
    if data.explainer is None:
        return None
    try:
        return data.explainer(a, b)
    except Exception as exc:  # noqa: BLE001 - an explanation is optional in a report
        log.warning("cannot explain %s vs %s: %s", a, b, exc)
        return None


def top_frames_table(explained: Mapping[str, Any], a: str, b: str, *, media_root: str = "",
                     thumbnails: bool = True, n: int = 3) -> Html:
    """The best-matching frame pairs of an explanation, side by side."""
    rows = []
    for t_a, t_b, sim in list(explained.get("top_frames") or [])[:n]:
        item: dict[str, Any] = {"a at (s)": float(t_a), "b at (s)": float(t_b), "similarity": float(sim)}
        if thumbnails:
            item["a frame"] = thumbnail_html(resolve_media(a, media_root), float(t_a))
            item["b frame"] = thumbnail_html(resolve_media(b, media_root), float(t_b))
        rows.append(item)
    if not rows:
        return Html('<p class="astradup-note">no matching frames.</p>')
    scores = explained.get("scores") or {}
    cap = f"Best-matching frames of {a} and {b}"
    if scores:
        cap += " (" + ", ".join(f"{k} {_score_text(v)}" for k, v in scores.items()) + ")"
    return table_html(pd.DataFrame(rows).astype(object), caption=cap)


def alignments(data: RunData, n: int = 2, *, thumbnails: bool = True) -> list[Any]:
    """For up to ``n`` telling pairs: the alignment heat map and the best-matching frames."""
    from astradup.report import figures

    out: list[Any] = []
    for a, b in pick_alignment_pairs(data, n):
        explained = explain(data, a, b)
        if explained is None:
            continue
        out.append(figures.alignment_heatmap(explained, a, b))
        out.append(top_frames_table(explained, a, b, media_root=data.media_root, thumbnails=thumbnails))
    if not out:
        out.append(Html('<p class="astradup-note">No pair alignment to show (no store, or no '
                        "scored pairs).</p>"))
    return out


def write_tuned(result: Any, path: str) -> Html:
    """Write a tuning result's config to ``path`` ("" writes nothing) and say where."""
    if not path:
        return Html('<p class="astradup-note">No output path given: the tuned config was not written.</p>')
    result.write_config(path)
    return Html(f"<p>Tuned config written to <code>{esc(path)}</code>.</p>")


def _score_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def run_info(data: RunData) -> Html:
    """The run's inputs, its config (as YAML) and the library versions."""
    import yaml

    inputs = {"store": data.store or "(none)", "media root": data.media_root or "(unknown)",
              "pairs": f"{len(data.pairs)} reported pairs",
              "truth": f"{len(data.truth)} labelled pairs" if data.truth is not None else "(none)"}
    if len(data.runs):
        last = data.runs.iloc[-1]
        inputs["last run"] = ", ".join(f"{k} {last[k]}" for k in last.index[:6])
    cfg = yaml.safe_dump(data.config.to_dict(), sort_keys=False)
    return Html(
        kv_table(inputs, caption="Inputs").html
        + f'<p><b>Config</b></p><pre class="astradup-config">{esc(cfg)}</pre>'
        + kv_table(versions(), caption="Versions").html
    )


def corpus_summary(videos: pd.DataFrame) -> Html:
    """Counts and totals of the store's video table."""
    items: dict[str, Any] = {"videos": len(videos)}
    if "duration" in videos.columns and len(videos):
        d = videos["duration"].astype(float)
        items["total duration (h)"] = round(float(d.sum()) / 3600.0, 3)
        items["median duration (s)"] = round(float(d.median()), 1)
    if "file_size" in videos.columns and len(videos):
        items["total size (GB)"] = round(float(videos["file_size"].astype(float).sum()) / 1e9, 3)
    if "has_audio" in videos.columns and len(videos):
        items["with audio"] = int(videos["has_audio"].astype(bool).sum())
    return kv_table(items, caption="Corpus")


def largest(videos: pd.DataFrame, by: str, n: int = 20) -> pd.DataFrame:
    """The ``n`` videos with the largest ``by`` (e.g. ``duration`` or ``file_size``)."""
    if by not in videos.columns:
        return videos.iloc[0:0]
    cols = [c for c in ("path", "duration", "width", "height", "video_codec", "audio_codec", "file_size")
            if c in videos.columns]
    return videos.sort_values(by, ascending=False).head(n)[cols]


def video_table(videos: pd.DataFrame, *, media_root: str = "", thumbnails: bool = True,
                caption: str | None = None) -> Html:
    """Videos (a slice of the store's table) with a thumbnail from the middle of each."""
    rows = []
    for _, r in videos.iterrows():
        item: dict[str, Any] = {}
        if thumbnails and "path" in r.index:
            mid = float(r["duration"]) / 2 if "duration" in r.index and pd.notna(r["duration"]) else 1.0
            item["frame"] = thumbnail_html(resolve_media(str(r["path"]), media_root), mid)
        item.update({c: r[c] for c in r.index})
        rows.append(item)
    if not rows:
        return Html(f'<p class="astradup-note">{esc(caption or "videos")}: none.</p>')
    return table_html(pd.DataFrame(rows).astype(object), caption=caption)
