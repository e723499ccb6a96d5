"""Plotly figures of a matching run, built from plain tables.

Every function takes DataFrames (or the dict ``explain_pair`` returns) and returns a
``plotly.graph_objects.Figure``; none reads files or the store, so each is tested on a table small
enough to check by hand. Text that came from users (video paths, error messages, transform names)
goes through :func:`plotly_text`, so a file named ``<b>x</b>.mp4`` shows as those characters
rather than as bold text (plotly renders a subset of HTML tags in every label).

An empty table gives a figure that says so, never an exception: a report of a run without
failures, or without a truth table, still renders.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from astradup.labels import RELATIONS

LABEL_ORDER = (*RELATIONS, "unlabelled")
#: one colour per truth relation / predicted label, used by every figure
CLASS_COLOURS = {
    "exact": "#1b9e77",
    "near": "#7570b3",
    "partial": "#e7298a",
    "similar": "#d95f02",
    "different": "#666666",
    "unlabelled": "#a6761d",
}
TEMPLATE = "plotly_white"


def plotly_text(value: Any) -> str:
    """User text made safe for a plotly label: ``<``, ``>`` and ``&`` become entities, which
    plotly shows as the characters themselves."""
    return html.escape("" if value is None else str(value), quote=False)


def _texts(values: Iterable[Any]) -> list[str]:
    return [plotly_text(v) for v in values]


def _empty(title: str, message: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        height=220,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {"text": plotly_text(message), "showarrow": False, "x": 0.5, "y": 0.5,
             "xref": "paper", "yref": "paper", "font": {"size": 14}}
        ],
    )
    return fig


def _require_columns(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    from astradup.errors import AstradupError

    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise AstradupError(f"{what}: missing column(s) {missing}; has {list(df.columns)}")


def _ordered(values: Iterable[str]) -> list[str]:
    vals = list(dict.fromkeys(values))
    known = [v for v in LABEL_ORDER if v in vals]
    return known + sorted(v for v in vals if v not in LABEL_ORDER)


# -- ranking ------------------------------------------------------------------------------------
def pr_curve(
    pr: pd.DataFrame,
    threshold: float | None = None,
    *,
    average_precision: float | None = None,
    title: str = "Precision-recall",
) -> Any:
    """Precision against recall over score thresholds, with the operating point marked.

    Args:
        pr: columns ``threshold``, ``precision``, ``recall`` (one row per threshold).
        threshold: the score threshold the run uses (e.g. the ``near`` band); the curve's row
            with the nearest threshold is marked.
        average_precision: shown in the title when given.
    """
    import plotly.graph_objects as go

    if average_precision is not None:
        title = f"{title} (micro AP {average_precision:.3f})"
    if pr is None or len(pr) == 0:
        return _empty(title, "no scored pairs: nothing to rank")
    _require_columns(pr, ("threshold", "precision", "recall"), "pr_curve")
    df = pr.sort_values(["recall", "threshold"], ascending=[True, False])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=df["recall"], y=df["precision"], mode="lines", name="PR curve",
            line={"shape": "hv", "color": "#1f77b4"},
            customdata=df["threshold"],
            hovertemplate="threshold %{customdata:.3f}<br>recall %{x:.3f}<br>precision %{y:.3f}<extra></extra>",
        )
    )
    if threshold is not None:
        i = int(np.argmin(np.abs(df["threshold"].to_numpy(dtype=float) - float(threshold))))
        row = df.iloc[i]
        fig.add_trace(
            go.Scatter(
                x=[row["recall"]], y=[row["precision"]], mode="markers",
                name=f"operating point (score >= {float(threshold):.2f})",
                marker={"size": 13, "color": "#d62728", "symbol": "star"},
                hovertemplate=(
                    f"operating threshold {float(threshold):.3f}<br>recall %{{x:.3f}}"
                    "<br>precision %{y:.3f}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        title=title, template=TEMPLATE, height=420,
        xaxis={"title": "recall", "range": [0, 1.02]},
        yaxis={"title": "precision", "range": [0, 1.02]},
        legend={"x": 0.02, "y": 0.05},
    )
    return fig


def confusion_heatmap(confusion: pd.DataFrame, title: str = "Truth vs predicted class") -> Any:
    """Counts of truth class (rows) by predicted label (columns), with each row's share."""
    import plotly.graph_objects as go

    if confusion is None or confusion.size == 0:
        return _empty(title, "no labelled pairs")
    counts = confusion.to_numpy(dtype=float)
    row_tot = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(row_tot > 0, counts / np.where(row_tot > 0, row_tot, 1), 0.0)
    text = [[f"{int(c)}<br>({_pct(s)})" for c, s in zip(r_c, r_s, strict=True)]
            for r_c, r_s in zip(counts, share, strict=True)]
    fig = go.Figure(
        go.Heatmap(
            z=share, x=_texts(confusion.columns), y=_texts(confusion.index),
            text=text, texttemplate="%{text}", customdata=counts,
            colorscale="Blues", zmin=0, zmax=1, colorbar={"title": "row share"},
            hovertemplate="truth %{y}<br>predicted %{x}<br>%{customdata:d} pairs<extra></extra>",
        )
    )
    fig.update_layout(
        title=title, template=TEMPLATE, height=420,
        xaxis={"title": "predicted", "side": "bottom"},
        yaxis={"title": "truth", "autorange": "reversed"},
    )
    return fig


def _pct(share: float) -> str:
    return "&lt;1%" if 0 < share < 0.01 else f"{share:.0%}"


def _per_transform(per_transform: pd.DataFrame) -> pd.DataFrame:
    _require_columns(per_transform, ("transform", "recall", "n"), "per-transform recall")
    df = per_transform.copy()
    if "relation" not in df.columns:
        df["relation"] = "near"
    if "recalled" not in df.columns:
        df["recalled"] = (df["recall"] * df["n"]).round().astype(int)
    df["transform"] = df["transform"].fillna("").astype(str).replace("", "(none)")
    df["relation"] = df["relation"].astype(str)
    return df


def by_component(per_transform: pd.DataFrame, sep: str = "+") -> pd.DataFrame:
    """Recall per elementary transform: a composite ``crop+hflip`` counts under ``crop`` and
    under ``hflip``. Columns ``transform, relation, n, recalled, recall``.

    >>> pt = pd.DataFrame({"transform": ["crop", "crop+hflip"], "relation": ["near", "near"],
    ...                    "n": [2, 2], "recalled": [2, 0], "recall": [1.0, 0.0]})
    >>> by_component(pt)[["transform", "n", "recalled"]].values.tolist()
    [['crop', 4, 2], ['hflip', 2, 0]]
    """
    df = _per_transform(per_transform)
    parts = df.assign(transform=df["transform"].str.split(sep, regex=False)).explode("transform")
    parts["transform"] = parts["transform"].str.strip().replace("", "(none)")
    out = parts.groupby(["transform", "relation"], sort=True)[["n", "recalled"]].sum().reset_index()
    out["recall"] = np.where(out["n"] > 0, out["recalled"] / out["n"].where(out["n"] > 0, 1), np.nan)
    return out


def transform_recall(per_transform: pd.DataFrame, title: str = "Recall per transform",
                     max_bars: int = 40, sep: str = "+") -> Any:
    """Recall of each transform (how a copy was made), one bar colour per truth relation.

    With more than ``max_bars`` distinct transforms, composites (``crop+hflip``) are counted
    under each of their parts (see :func:`by_component`); :func:`transform_matrix` then shows
    the combinations. The weakest transforms are listed first, at the top.
    """
    import plotly.graph_objects as go

    if per_transform is None or len(per_transform) == 0:
        return _empty(title, "the truth table names no transforms")
    df = _per_transform(per_transform)
    if df["transform"].nunique() > max_bars:
        df = by_component(df, sep)
        title = f"{title} (composites counted under each part)"
    totals = df.groupby("transform")[["recalled", "n"]].sum()
    order = (totals["recalled"] / totals["n"].where(totals["n"] > 0, 1)).sort_values(kind="stable").index.tolist()
    fig = go.Figure()
    for rel in _ordered(df["relation"]):
        part = df[df["relation"] == rel]
        fig.add_trace(
            go.Bar(
                y=_texts(part["transform"]), x=part["recall"], orientation="h",
                name=plotly_text(rel), marker_color=CLASS_COLOURS.get(rel),
                text=[f"{int(r)}/{int(n)}" for r, n in zip(part["recalled"], part["n"], strict=True)],
                textposition="outside", cliponaxis=False,
                hovertemplate="%{y}<br>recall %{x:.2f} (%{text})<extra>" + plotly_text(rel) + "</extra>",
            )
        )
    n_bars = len(df)
    fig.update_layout(
        title=title, template=TEMPLATE, barmode="group", bargap=0.15,
        height=max(300, 130 + 18 * n_bars + 6 * len(order)),
        xaxis={"title": "recall", "range": [0, 1.12], "side": "top"},
        yaxis={"categoryorder": "array", "categoryarray": _texts(order), "autorange": "reversed"},
        legend={"orientation": "h", "y": -0.02, "yanchor": "top"},
    )
    return fig


def transform_matrix(per_transform: pd.DataFrame, title: str = "Recall of transform combinations",
                     sep: str = "+") -> Any:
    """Recall of every pair of elementary transforms applied together (diagonal: applied alone
    or, for three or more parts, every pair inside the composite counts)."""
    import plotly.graph_objects as go

    if per_transform is None or len(per_transform) == 0:
        return _empty(title, "the truth table names no transforms")
    df = _per_transform(per_transform)
    parts = [sorted({p.strip() or "(none)" for p in t.split(sep)}) for t in df["transform"]]
    names = sorted({p for ps in parts for p in ps})
    if len(names) < 2:
        return _empty(title, "a single transform: nothing to combine")
    idx = {p: i for i, p in enumerate(names)}
    n = np.zeros((len(names), len(names)))
    k = np.zeros_like(n)
    for ps, rows, got in zip(parts, df["n"].to_numpy(), df["recalled"].to_numpy(), strict=True):
        cells = [(p, p) for p in ps] if len(ps) == 1 else [(p, q) for p in ps for q in ps if p != q]
        for p, q in cells:
            n[idx[p], idx[q]] += rows
            k[idx[p], idx[q]] += got
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
    text = [[f"{int(kk)}/{int(nn)}" if nn else "" for kk, nn in zip(rk, rn, strict=True)]
            for rk, rn in zip(k, n, strict=True)]
    labels = _texts(names)
    fig = go.Figure(
        go.Heatmap(z=recall, x=labels, y=labels, text=text, colorscale="RdYlGn", zmin=0, zmax=1,
                   colorbar={"title": "recall"}, hoverongaps=False,
                   hovertemplate="%{y} + %{x}<br>recall %{z:.2f} (%{text})<extra></extra>")
    )
    fig.update_layout(title=title, template=TEMPLATE, height=max(420, 160 + 26 * len(names)),
                      xaxis={"tickangle": -45}, yaxis={"autorange": "reversed"})
    return fig


def score_histograms(
    joined: pd.DataFrame,
    bands: Mapping[str, float] | Any | None = None,
    *,
    by: str = "relation",
    title: str = "Fused score per truth class",
) -> Any:
    """Histogram of fused scores, one trace per class in ``by``, with the band thresholds.

    Args:
        joined: at least ``score`` and ``by``; a missing class (a predicted pair absent from the
            truth table) is shown as ``unlabelled``.
        bands: ``{"exact": .95, "near": .85, "similar": .7}`` or a ``FusionConfig``.
    """
    import plotly.graph_objects as go

    if joined is None or len(joined) == 0 or "score" not in joined.columns:
        return _empty(title, "no scored pairs")
    df = joined[["score"]].copy()
    df["cls"] = joined[by].fillna("unlabelled").astype(str) if by in joined.columns else "unlabelled"
    df = df[df["score"].notna()]
    fig = go.Figure()
    for cls in _ordered(df["cls"]):
        s = df.loc[df["cls"] == cls, "score"]
        fig.add_trace(
            go.Histogram(
                x=s, name=f"{plotly_text(cls)} ({len(s)})", xbins={"start": 0, "end": 1.0001, "size": 0.02},
                marker_color=CLASS_COLOURS.get(cls), opacity=0.65,
            )
        )
    for name, value in _band_values(bands).items():
        fig.add_vline(x=value, line_dash="dash", line_color=CLASS_COLOURS.get(name, "#000"),
                      annotation_text=f"{name} {value:.2f}", annotation_position="top")
    fig.update_layout(
        title=title, template=TEMPLATE, barmode="overlay", height=420,
        xaxis={"title": "fused score", "range": [0, 1.01]}, yaxis={"title": "pairs"},
    )
    return fig


def _band_values(bands: Mapping[str, float] | Any | None) -> dict[str, float]:
    if bands is None:
        return {}
    if not isinstance(bands, Mapping):
        bands = {k: getattr(bands, k) for k in ("exact", "near", "similar") if hasattr(bands, k)}
    return {k: float(v) for k, v in bands.items()}


def partial_copies(
    joined: pd.DataFrame,
    *,
    detected_labels: Sequence[str] = ("exact", "near"),
    title: str = "Partial copies: recall and temporal IoU",
) -> Any:
    """Partial-copy truth pairs: how many were found, and how well their time ranges match.

    Args:
        joined: rows with ``relation``, ``label`` and ``tiou`` (temporal IoU of the predicted
            and the true copied range, NaN when either is missing).
        detected_labels: predicted labels that count as "found".
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if joined is None or len(joined) == 0 or "relation" not in joined.columns:
        return _empty(title, "no partial copies in the truth table")
    part = joined[joined["relation"].astype(str) == "partial"]
    if len(part) == 0:
        return _empty(title, "no partial copies in the truth table")
    label = part["label"].fillna("different").astype(str) if "label" in part.columns else pd.Series(
        "different", index=part.index)
    found = label.isin(list(detected_labels))
    n, k = len(part), int(found.sum())
    tiou = part.loc[found, "tiou"].dropna() if "tiou" in part.columns else pd.Series(dtype=float)
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.35, 0.65],
        subplot_titles=(f"recall {k}/{n} = {k / n:.2f}",
                        f"temporal IoU of found copies (mean {tiou.mean():.2f})" if len(tiou)
                        else "temporal IoU: no aligned range reported"),
    )
    fig.add_trace(
        go.Bar(x=["found", "missed"], y=[k, n - k], marker_color=["#1b9e77", "#d62728"],
               text=[k, n - k], textposition="auto", name="partial copies", showlegend=False),
        row=1, col=1,
    )
    fig.add_trace(
        go.Histogram(x=tiou, xbins={"start": 0, "end": 1.0001, "size": 0.05}, name="tIoU",
                     marker_color=CLASS_COLOURS["partial"], showlegend=False),
        row=1, col=2,
    )
    fig.update_xaxes(title_text="temporal IoU", range=[0, 1.01], row=1, col=2)
    fig.update_yaxes(title_text="pairs", row=1, col=1)
    fig.update_layout(title=title, template=TEMPLATE, height=380)
    return fig


# -- one pair -----------------------------------------------------------------------------------
def alignment_heatmap(explain: Mapping[str, Any], a: str = "video a", b: str = "video b",
                      title: str | None = None) -> Any:
    """Frame similarity matrix of two videos, with the aligned path and the matched segments.

    Args:
        explain: what ``astradup.execution.explain_pair`` returns: ``sim_matrix`` (rows: frames
            of ``a``), ``ts_a``/``ts_b`` (seconds), ``path`` (list of ``(i, j)``) and ``segments``
            (a mapping ``a_start, a_end, b_start, b_end`` in seconds, or a list of such tuples;
            missing values draw no box).
        a, b: the two videos' names (shown as text).
    """
    import plotly.graph_objects as go

    title = title or f"Alignment: {plotly_text(a)} vs {plotly_text(b)}"
    sim = np.asarray(explain.get("sim_matrix", np.empty((0, 0))), dtype=float)
    if sim.ndim != 2 or sim.size == 0:
        return _empty(title, "no frames to compare")
    ts_a = np.asarray(explain.get("ts_a", np.arange(sim.shape[0])), dtype=float)
    ts_b = np.asarray(explain.get("ts_b", np.arange(sim.shape[1])), dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=sim, x=ts_b, y=ts_a, colorscale="Viridis", zmin=float(min(0.0, np.nanmin(sim))), zmax=1,
            colorbar={"title": "similarity"}, name="frame similarity",
            hovertemplate="a %{y:.1f} s<br>b %{x:.1f} s<br>sim %{z:.3f}<extra></extra>",
        )
    )
    path = list(explain.get("path") or [])
    if path:
        ii = np.array([p[0] for p in path], dtype=int)
        jj = np.array([p[1] for p in path], dtype=int)
        fig.add_trace(
            go.Scatter(x=ts_b[jj], y=ts_a[ii], mode="lines+markers", name="aligned path",
                       line={"color": "#ff4136", "width": 2}, marker={"size": 4})
        )
    for a0, a1, b0, b1 in _segments(explain.get("segments")):
        fig.add_shape(type="rect", x0=b0, x1=b1, y0=a0, y1=a1,
                      line={"color": "#ffffff", "width": 2, "dash": "dot"})
    fig.update_layout(
        title=title, template=TEMPLATE, height=480,
        xaxis={"title": f"{plotly_text(b)} (s)"},
        yaxis={"title": f"{plotly_text(a)} (s)", "autorange": "reversed"},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def _segments(segs: Any) -> list[tuple[float, ...]]:
    if segs is None:
        return []
    if isinstance(segs, Mapping):
        segs = [[segs.get(k) for k in ("a_start", "a_end", "b_start", "b_end")]]
    out = []
    for seg in segs:
        vals = list(seg)[:4]
        if len(vals) == 4 and all(v is not None and np.isfinite(float(v)) for v in vals):
            out.append(tuple(float(v) for v in vals))
    return out


# -- runs ---------------------------------------------------------------------------------------
def failures_table(failures: pd.DataFrame, title: str = "Files that could not be indexed",
                   max_rows: int = 200) -> Any:
    """Each failure (file, stage, error class, message) as a table; every cell is text."""
    import plotly.graph_objects as go

    if failures is None or len(failures) == 0:
        return _empty(title, "no failures: every file was indexed")
    df = failures.head(max_rows)
    values = [_texts(df[c].astype(object).where(df[c].notna(), "")) for c in df.columns]
    # column widths follow the longest text (capped), so paths and messages get the room
    widths = [min(60, max([len(str(c))] + [len(v) for v in col])) + 4 for c, col in zip(df.columns, values, strict=True)]
    fig = go.Figure(
        go.Table(
            columnwidth=widths,
            header={"values": [f"<b>{plotly_text(c)}</b>" for c in df.columns], "align": "left",
                    "fill_color": "#e8e8e8", "height": 28},
            cells={"values": values, "align": "left", "height": 26},
        )
    )
    more = f" (first {max_rows} of {len(failures)})" if len(failures) > max_rows else f" ({len(failures)})"
    lines = sum(max(1, -(-max(len(v) for v in row) // 60)) for row in zip(*values, strict=True))
    fig.update_layout(title=title + more, template=TEMPLATE,
                      height=min(1200, 110 + 28 + 22 * lines + 4 * len(df)),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def throughput(runs: pd.DataFrame, title: str = "Indexing throughput") -> Any:
    """Videos per hour of each indexing run (computed from ``n_indexed``/``seconds`` if absent).

    Rows whose ``kind`` is not ``index`` (match runs) are left out when the column exists.
    """
    import plotly.graph_objects as go

    if runs is not None and "kind" in runs.columns:
        runs = runs[runs["kind"].astype(str) == "index"]
    if runs is None or len(runs) == 0:
        return _empty(title, "no indexing runs recorded")
    df = runs.copy()
    if "videos_per_hour" not in df.columns:
        _require_columns(df, ("n_indexed", "seconds"), "throughput")
        secs = df["seconds"].astype(float)
        df["videos_per_hour"] = np.where(secs > 0, df["n_indexed"].astype(float) * 3600.0 / secs.where(secs > 0, 1.0), np.nan)
    key = "run_id" if "run_id" in df.columns else None
    x = _texts(df[key]) if key else [f"run {i + 1}" for i in range(len(df))]
    hover = []
    for _, r in df.iterrows():
        bits = [f"{c} {plotly_text(r[c])}" for c in ("started", "n_files", "n_indexed", "n_skipped", "n_failed", "seconds")
                if c in df.columns]
        hover.append("<br>".join(bits))
    fig = go.Figure(
        go.Bar(x=x, y=df["videos_per_hour"], marker_color="#1f77b4", hovertext=hover,
               text=[f"{v:,.0f}" if pd.notna(v) else "" for v in df["videos_per_hour"]],
               textposition="auto", name="videos per hour",
               hovertemplate="%{x}<br>%{y:,.0f} videos/hour<br>%{hovertext}<extra></extra>")
    )
    fig.update_layout(title=title, template=TEMPLATE, height=360,
                      xaxis={"title": "run", "type": "category"}, yaxis={"title": "videos per hour"})
    return fig


def metric_bars(metrics: Mapping[str, float], names: Sequence[str] | None = None,
                *, compare: Mapping[str, Mapping[str, float]] | None = None,
                title: str = "Metrics") -> Any:
    """Bar chart of metrics in [0, 1]; ``compare`` adds one bar group per extra run
    (e.g. ``{"default config": {...}, "tuned": {...}}``)."""
    import plotly.graph_objects as go

    series: dict[str, Mapping[str, float]] = {"this run": metrics} if compare is None else dict(compare)
    keys = list(names) if names else [k for k, v in next(iter(series.values())).items()
                                      if isinstance(v, int | float) and 0 <= v <= 1]
    fig = go.Figure()
    for name, vals in series.items():
        ys = [float(vals.get(k, np.nan)) for k in keys]
        fig.add_trace(go.Bar(x=keys, y=ys, name=plotly_text(name),
                             text=[f"{y:.3f}" if not np.isnan(y) else "" for y in ys], textposition="auto"))
    fig.update_layout(title=title, template=TEMPLATE, barmode="group", height=380,
                      yaxis={"range": [0, 1.05]})
    return fig


def corpus_overview(videos: pd.DataFrame, title: str = "Corpus") -> Any:
    """Durations, frame sizes, codecs and audio presence of the indexed videos."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if videos is None or len(videos) == 0:
        return _empty(title, "no videos indexed")
    fig = make_subplots(rows=2, cols=2, subplot_titles=("duration (s)", "frame size", "video codec", "audio"))
    if "duration" in videos.columns:
        fig.add_trace(go.Histogram(x=videos["duration"].astype(float), nbinsx=40, name="duration",
                                   marker_color="#1f77b4", showlegend=False), row=1, col=1)
    if {"width", "height"} <= set(videos.columns):
        size = videos["width"].astype(int).astype(str) + "x" + videos["height"].astype(int).astype(str)
        vc = size.value_counts().head(15)
        fig.add_trace(go.Bar(x=_texts(vc.index), y=vc.to_numpy(), name="frame size",
                             marker_color="#ff7f0e", showlegend=False), row=1, col=2)
    if "video_codec" in videos.columns:
        vc = videos["video_codec"].fillna("?").astype(str).value_counts().head(15)
        fig.add_trace(go.Bar(x=_texts(vc.index), y=vc.to_numpy(), name="codec",
                             marker_color="#2ca02c", showlegend=False), row=2, col=1)
    if "has_audio" in videos.columns:
        ha = videos["has_audio"].astype(bool)
        fig.add_trace(go.Bar(x=["with audio", "silent"], y=[int(ha.sum()), int((~ha).sum())],
                             name="audio", marker_color="#9467bd", showlegend=False), row=2, col=2)
    fig.update_layout(title=f"{title} ({len(videos)} videos)", template=TEMPLATE, height=560)
    return fig


def reviewer_overrides(counts: pd.DataFrame, title: str = "How often reviewers overrode the model") -> Any:
    """Stacked bars per model label of reviewer decisions that agreed with it and that overrode
    it, from :func:`astradup.report.sections.override_counts`."""
    import plotly.graph_objects as go

    _require_columns(counts, ["model label", "agreed", "overrode"], "reviewer override counts")
    rows = counts[counts["model label"] != "all"]
    if not len(rows):
        return _empty(title, "no reviewer decisions yet")
    x = _texts(rows["model label"])
    fig = go.Figure([
        go.Bar(name="agreed", x=x, y=rows["agreed"].tolist(), marker_color="#4c9f70"),
        go.Bar(name="overrode", x=x, y=rows["overrode"].tolist(), marker_color="#d1495b"),
    ])
    total = counts[counts["model label"] == "all"]
    rate = float(total["override rate"].iloc[0]) if len(total) and "override rate" in total else float("nan")
    fig.update_layout(title=f"{title} ({_pct(rate)} of decisions)" if rate == rate else title, barmode="stack",
                      template=TEMPLATE, height=320, xaxis_title="model label", yaxis_title="decisions")
    return fig
