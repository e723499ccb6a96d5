"""Showing figures and tables in a notebook so that the exported HTML is safe and offline.

* A plotly figure is shown as a ``<div>`` plus a ``Plotly.newPlot`` call, without plotly.js: the
  report template (:mod:`astradup.report.render`) puts plotly.js inline once in the page head,
  so every plot draws offline and the page is not 4 MB per figure. The same output also carries
  plotly's own JSON mimetype, which JupyterLab renders when the notebook is opened there.
* A table is HTML built here with every cell escaped (``html.escape``): a video named
  ``<script>alert(1)</script>.mp4`` shows as text. Only cells this package made (thumbnails) are
  inserted as HTML, and they are marked as such with :class:`Html`.
"""

from __future__ import annotations

import html
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class Html:
    """A fragment of HTML this package built (already escaped where it holds user text)."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def esc(value: Any) -> str:
    """``html.escape`` of anything, with ``None``/NaN as an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def figure_html(fig: Any) -> str:
    """The figure as a ``<div>`` and its script, without plotly.js (the page head has it)."""
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        config=PLOTLY_CONFIG,
        div_id=f"astradup-{uuid.uuid4().hex[:12]}",
    )


def _fmt(value: Any, digits: int) -> str:
    if isinstance(value, Html):
        return value.html
    if isinstance(value, bool):
        return esc(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.{digits}f}"
    return esc(value)


def _td(value: Any, digits: int) -> str:
    text = _fmt(value, digits)
    # long text (paths, messages) may wrap; numbers and short labels stay on one line
    if not isinstance(value, Html) and len(text) > 24:
        return f'<td class="astradup-wrap">{text}</td>'
    return f"<td>{text}</td>"


def table_html(
    df: pd.DataFrame,
    *,
    digits: int = 3,
    caption: str | None = None,
    max_rows: int = 500,
    index: bool = False,
) -> Html:
    """An escaped HTML table of ``df``. Cells that are :class:`Html` are inserted as they are."""
    rows = df.head(max_rows)
    cols = list(rows.columns)
    head = "".join(f"<th>{esc(c)}</th>" for c in ([rows.index.name or ""] if index else []) + cols)
    body = []
    for idx, row in rows.iterrows():
        cells = [f"<th>{esc(idx)}</th>"] if index else []
        cells += [_td(row[c], digits) for c in cols]
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    more = (f'<p class="astradup-note">{len(df) - max_rows} more rows not shown.</p>'
            if len(df) > max_rows else "")
    return Html(
        f'<div class="astradup-scroll"><table class="astradup-table">{cap}<thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table></div>{more}'
    )


def kv_table(items: Mapping[str, Any] | Iterable[tuple[str, Any]], *, digits: int = 4,
             caption: str | None = None) -> Html:
    """A two-column (name, value) table, escaped."""
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    df = pd.DataFrame(pairs, columns=["name", "value"]).astype(object)
    return table_html(df, digits=digits, caption=caption)


def heading(text: str, level: int = 2) -> Html:
    level = min(6, max(1, int(level)))
    return Html(f"<h{level}>{esc(text)}</h{level}>")


def note(text: str) -> Html:
    return Html(f'<p class="astradup-note">{esc(text)}</p>')


def show(obj: Any) -> None:
    """Display a figure, :class:`Html`, DataFrame (escaped), text, or a list of those."""
    from IPython.display import display

    if obj is None:
        return
    if isinstance(obj, list | tuple):
        for item in obj:
            show(item)
        return
    if hasattr(obj, "to_plotly_json") and hasattr(obj, "to_html"):
        bundle = {
            "text/html": figure_html(obj),
            "application/vnd.plotly.v1+json": json.loads(obj.to_json()),
            "text/plain": f"<plotly figure: {obj.layout.title.text or ''}>",
        }
        display(bundle, raw=True)
    elif isinstance(obj, Html):
        display({"text/html": obj.html, "text/plain": "<html fragment>"}, raw=True)
    elif isinstance(obj, pd.DataFrame):
        display({"text/html": table_html(obj).html, "text/plain": obj.to_string(max_rows=30)}, raw=True)
    else:
        display({"text/html": f"<pre>{esc(obj)}</pre>", "text/plain": str(obj)}, raw=True)
