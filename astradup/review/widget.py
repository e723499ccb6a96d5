"""The JupyterLab review widget: one pair at a time from the review queue, side by side.

For each pair it shows thumbnails of both videos at the aligned times of the best matching
frames, the offset between them, the per-modality scores and why the pair was called what it
was; buttons record ``duplicate`` / ``not-duplicate`` / ``skip`` (:func:`record_decision`) and
move on. ipywidgets has no key events of its own, so a small text box takes the keyboard: type
``d``, ``n`` or ``s`` there (``j``/``k`` move to the next/previous pair).

The store is opened for each read or decision and closed again, so the CLI can use it between
clicks. ipywidgets is imported when a widget is built, never at import time.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pandas as pd

from astradup.report.display import Html, esc, kv_table
from astradup.review.decisions import record_decision
from astradup.review.queue import review_queue
from astradup.store.store import Store

log = logging.getLogger(__name__)

KEYS = {"d": "duplicate", "n": "not-duplicate", "s": "skip"}


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{float(v):.{digits}f}"


def explain_text(row: pd.Series | dict) -> list[str]:
    """Why the model called the pair what it did, as short lines (from the pairs.csv explanation)."""
    r = dict(row)
    ex = r.get("explanation") or {}
    if isinstance(ex, str):
        try:
            ex = json.loads(ex)
        except ValueError:
            ex = {}
    lines = []
    band, thr = ex.get("band", r.get("label")), ex.get("band_threshold")
    lines.append(f"{band}: fused score {_f(r.get('score'))}" + (f" >= {band} band {_f(thr, 2)}" if thr is not None else ""))
    w = ex.get("weights") or {}
    if w:
        lines.append("weights " + ", ".join(f"{k} {v:.2f}" for k, v in w.items()))
    v = ex.get("visual") or {}
    if v:
        lines.append(f"visual {_f(r.get('visual'))}: aligned path similarity {_f(v.get('path_sim'))} over "
                     f"background {_f(v.get('background'))}, hash agreement {_f(v.get('hash_agreement'))}, "
                     f"coverage a {_f(v.get('coverage_a'), 2)} / b {_f(v.get('coverage_b'), 2)} "
                     f"({v.get('aligned_frames', 0)} frames, {_f(v.get('segment_s'), 1)} s)")
    a = ex.get("audio") or {}
    if a:
        lines.append(f"audio {_f(r.get('audio'))}: {a.get('status_a')} / {a.get('status_b')}"
                     + (f", offset {_f(a.get('offset_s'), 2)} s" if a.get("offset_s") is not None else ""))
    lines.append(f"metadata {_f(r.get('metadata'))}")
    lr = ex.get("learned") or {}
    if lr:
        lines.append(f"learned scorer: probability of a copy {_f(lr.get('p_copy'))}")
    lines += [f"held back from the copy bands: {why}" for why in lr.get("held_back") or []]
    if lr.get("exact_moment"):  # the exact-moment check lifted it (astradup.scoring.exact)
        lines.append(f"exact-moment check: {lr['exact_moment']}")
    for side, box in (ex.get("content_box") or {}).items():  # the region each side's features describe
        if box:
            lines.append(f"{side}: compared inside rows {box[0]:.2f}-{box[1]:.2f}, columns {box[2]:.2f}-{box[3]:.2f} "
                         "of its frame (letterbox or pillarbox bars cut, or a picture-in-picture inset)")
    if bool(r.get("partial")):
        lines.append("partial: one video holds only part of the other (not removable by default)")
    return lines


def offset_s(row: pd.Series | dict) -> float | None:
    """Where b's matched segment starts relative to a's (seconds), or None without an alignment."""
    a0, b0 = row.get("a_start"), row.get("b_start")
    if a0 is None or b0 is None or pd.isna(a0) or pd.isna(b0):
        return None
    return float(b0) - float(a0)


def top_frames(row: pd.Series | dict, n: int = 3) -> list[tuple[float, float, float]]:
    """The best matching (t_a, t_b, similarity) frame pairs of the explanation; the middle of the
    matched segments when there are none."""
    ex = row.get("explanation") or {}
    if isinstance(ex, str):
        try:
            ex = json.loads(ex)
        except ValueError:
            ex = {}
    out = [(float(a), float(b), float(s)) for a, b, s in (ex.get("top_frames") or [])[:n]]
    if not out:
        a0, a1, b0, b1 = (row.get(k) for k in ("a_start", "a_end", "b_start", "b_end"))
        if all(x is not None and not pd.isna(x) for x in (a0, a1, b0, b1)):
            out = [((float(a0) + float(a1)) / 2, (float(b0) + float(b1)) / 2, float("nan"))]  # type: ignore[arg-type]
        else:
            out = [(1.0, 1.0, float("nan"))]
    return out


def pair_card(row: pd.Series | dict, media_root: str = "", *, thumbnails: bool = True, n_frames: int = 3) -> Html:
    """One pair as escaped HTML: paths, scores, offset, explanation and thumbnail pairs."""
    from astradup.report.sections import resolve_media, thumbnail_html

    off = offset_s(row)
    scores = kv_table([("label", row.get("label")), ("score", row.get("score")), ("visual", row.get("visual")),
                       ("audio", row.get("audio")), ("metadata", row.get("metadata")),
                       ("offset b - a (s)", off), ("bytes at stake", row.get("bytes")),
                       ("value", row.get("value"))], digits=3)
    frames = []
    for ta, tb, s in top_frames(row, n_frames):
        cells = []
        for side, t in (("a", ta), ("b", tb)):
            img = (thumbnail_html(resolve_media(str(row[side]), media_root), t).html if thumbnails
                   else f'<span class="astradup-note">{esc(side)} at {t:.1f} s</span>')
            cells.append(f"<td>{img}<br><small>{esc(side)} at {t:.2f} s</small></td>")
        sim = "" if pd.isna(s) else f"frame similarity {s:.3f}"
        frames.append(f"<tr>{''.join(cells)}<td><small>{esc(sim)}</small></td></tr>")
    why = "".join(f"<li>{esc(x)}</li>" for x in explain_text(row))
    return Html(
        f'<div class="astradup-pair"><p><b>a</b> {esc(row["a"])}<br><b>b</b> {esc(row["b"])}</p>'
        f'<table class="astradup-frames">{"".join(frames)}</table>{scores.html}<ul>{why}</ul></div>'
    )


class ReviewWidget:
    """Review the queue of a store in a notebook::

        w = ReviewWidget("data/demo/astradup.duckdb", reviewer="ann")
        w  # shows the first pair; click or type d / n / s

    Attributes:
        queue: the pairs being reviewed (a snapshot of :func:`review_queue` when built).
        position: index of the pair shown.
        buttons: the ``duplicate``, ``not-duplicate``, ``skip``, ``previous`` and ``next`` buttons.
        keys: the text box that takes ``d`` / ``n`` / ``s`` / ``j`` / ``k``.
        recorded: the decisions recorded through this widget (rows as returned by record_decision).
    """

    def __init__(self, store: str | os.PathLike[str], *, limit: int | None = 50, reviewer: str | None = None,
                 thumbnails: bool = True, n_frames: int = 3):
        import ipywidgets as w

        self.store = os.fspath(store)
        self.reviewer = reviewer
        self.thumbnails = thumbnails
        self.n_frames = n_frames
        with Store(self.store, read_only=True) as st:
            self.queue = review_queue(st, limit=limit)
            self.media_root = st.media_root or ""
        self.position = 0
        self.recorded: list[dict] = []
        self.status = w.HTML()
        self.card = w.HTML()
        self.buttons = {
            "duplicate": w.Button(description="duplicate (d)", button_style="danger", tooltip="d"),
            "not-duplicate": w.Button(description="not (n)", button_style="success", tooltip="n"),
            "skip": w.Button(description="skip (s)", tooltip="s"),
            "previous": w.Button(description="< (k)", tooltip="k"),
            "next": w.Button(description="> (j)", tooltip="j"),
        }
        for name in ("duplicate", "not-duplicate", "skip"):
            self.buttons[name].on_click(lambda _b, name=name: self.decide(name))
        self.buttons["previous"].on_click(lambda _b: self.show(self.position - 1))
        self.buttons["next"].on_click(lambda _b: self.show(self.position + 1))
        self.keys = w.Text(placeholder="type d / n / s here (j / k: next / previous)", continuous_update=True)
        self.keys.observe(self._on_key, names="value")
        self.widget = w.VBox([self.status, w.HBox(list(self.buttons.values()) + [self.keys]), self.card])
        self.show(0)

    def _on_key(self, change: dict) -> None:
        text = (change.get("new") or "").strip().lower()
        if not text:
            return
        key = text[-1]
        self.keys.value = ""
        if key in KEYS:
            self.decide(KEYS[key])
        elif key == "j":
            self.show(self.position + 1)
        elif key == "k":
            self.show(self.position - 1)

    @property
    def current(self) -> pd.Series | None:
        return self.queue.iloc[self.position] if 0 <= self.position < len(self.queue) else None

    def show(self, i: int) -> None:
        """Show pair ``i`` of the queue (clamped); past the end, say the queue is done."""
        self.position = max(0, min(int(i), len(self.queue)))
        row = self.current
        n = len(self.queue)
        if row is None:
            self.status.value = f"<b>{n} of {n} reviewed</b>: the queue is done ({len(self.recorded)} decisions recorded)."
            self.card.value = ""
            return
        self.status.value = (f"pair {self.position + 1} of {n}" + (" (skipped before)" if bool(row.get("skipped")) else "")
                             + f" &middot; {len(self.recorded)} decisions recorded")
        self.card.value = pair_card(row, self.media_root, thumbnails=self.thumbnails, n_frames=self.n_frames).html

    def decide(self, decision: str) -> dict | None:
        """Record ``decision`` for the pair shown, then show the next one."""
        row = self.current
        if row is None:
            return None
        with Store(self.store) as st:
            rec = record_decision(st, row["a"], row["b"], decision, reviewer=self.reviewer)
        self.recorded.append(rec)
        self.show(self.position + 1)
        return rec

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def review(store: str | os.PathLike[str], **kwargs: Any) -> ReviewWidget:
    """Build the review widget for ``store`` (see :class:`ReviewWidget` for the options)."""
    return ReviewWidget(store, **kwargs)


# -- notebook helpers: one call per cell (the review notebook only calls these) -----------------

def queue_table(store: str | os.PathLike[str], limit: int | None = 50) -> pd.DataFrame:
    """The review queue of ``store`` as a short table (a, b, label, score, bytes, value)."""
    with Store(store, read_only=True) as st:
        q = review_queue(st, limit=limit)
    return q[["a", "b", "label", "score", "partial", "bytes", "uncertainty", "value", "skipped"]]


def decisions_table(store: str | os.PathLike[str]) -> pd.DataFrame:
    """The latest decision per pair of ``store``: a, b, decision, reviewer, time, standing, label."""
    from astradup.review.decisions import decisions

    with Store(store, read_only=True) as st:
        d = decisions(st)
    return d[["a", "b", "decision", "reviewer", "time", "standing", "label", "score"]]


def plan_preview(store: str | os.PathLike[str], hold: str = "") -> pd.DataFrame:
    """What ``astradup plan`` would do now with the default rules (and ``hold`` on legal hold):
    one row per file with its action and reason. Changes nothing."""
    from astradup.review.plan import KeepRules, make_plan, plan_table

    with Store(store, read_only=True) as st:
        p = make_plan(st, KeepRules(hold=(hold,) if hold else ()))
    return plan_table(p)[["group", "path", "action", "reason", "keeper", "bytes"]]
