"""The review widget (clicked in this process and in a real kernel) and the review notebook
(run under papermill)."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from astradup.review import decisions, review_queue
from astradup.review.widget import ReviewWidget, explain_text, offset_s, pair_card, top_frames
from astradup.store import Store
from tests.review_helpers import library

NASTY = "<b>x</b>.mp4"


@pytest.fixture(scope="module")
def lib(media_dir, tmp_path_factory):
    return library(media_dir, tmp_path_factory.mktemp("widget"), {NASTY: "src.mp4"})


@pytest.fixture
def store_copy(lib, tmp_path):
    _, store = lib
    dst = tmp_path / "s.duckdb"
    shutil.copy(store, dst)
    return dst


def test_pair_card_shows_frames_offset_scores_and_why_escaped(lib):
    _, store = lib
    with Store(store, read_only=True) as st:
        q = review_queue(st)
        root = st.media_root
    row = q[(q["a"] == NASTY) | (q["b"] == NASTY)].iloc[0]
    html = pair_card(row, root).html
    assert "&lt;b&gt;x&lt;/b&gt;.mp4" in html and "<b>x</b>.mp4" not in html
    assert html.count("data:image/png;base64,") == 2 * len(top_frames(row))
    assert "offset b - a (s)" in html and "fused score" in html
    lines = explain_text(row)
    assert lines[0].startswith(row["label"]) and any(x.startswith("visual") for x in lines)
    assert offset_s({"a_start": 1.0, "b_start": 3.5}) == 2.5 and offset_s({"a_start": None, "b_start": 1}) is None


def test_buttons_and_keys_record_decisions_in_the_store(store_copy):
    w = ReviewWidget(store_copy, reviewer="ann", thumbnails=False)
    first, second, third = (w.queue.iloc[i] for i in range(3))
    w.buttons["not-duplicate"].click()
    w.keys.value = "d"  # the keyboard box: d = duplicate
    w.keys.value = "j"  # next without deciding
    assert w.keys.value == "" and w.position == 3
    w.buttons["previous"].click()
    w.buttons["skip"].click()
    with Store(store_copy, read_only=True) as st:
        d = decisions(st).set_index(["a", "b"])["decision"]
    assert d[(first["a"], first["b"])] == "not-duplicate"
    assert d[(second["a"], second["b"])] == "duplicate"
    assert d[(third["a"], third["b"])] == "skip"
    assert [r["reviewer"] for r in w.recorded] == ["ann"] * 3
    w.show(len(w.queue))
    assert "the queue is done" in w.status.value


def test_widget_clicked_in_a_real_kernel(store_copy, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from astradup.review.widget import review\n"
        f"w = review({str(store_copy)!r}, reviewer='kernel', n_frames=1)\n"
        "w\n"),
        nbformat.v4.new_code_cell("w.buttons['duplicate'].click()\nw.buttons['not-duplicate'].click()\n"
                                  "print(len(w.recorded), w.position)")]
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[1].outputs[0]["text"].strip() == "2 2"
    shown = nb.cells[0].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in shown
    with Store(store_copy, read_only=True) as st:
        d = decisions(st)
    assert sorted(d["decision"]) == ["duplicate", "not-duplicate"] and set(d["reviewer"]) == {"kernel"}


@pytest.mark.slow
def test_review_notebook_runs_under_papermill(store_copy, tmp_path):
    from astradup.orchestration import execute_notebook

    out = execute_notebook("05_review", tmp_path / "05.ipynb",
                           {"store": str(store_copy), "limit": 5, "reviewer": "pm", "n_frames": 1},
                           cwd=tmp_path)
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "application/vnd.jupyter.widget-view+json" in str(outputs)
    assert "&lt;b&gt;x&lt;/b&gt;.mp4" in html and "<b>x</b>.mp4" not in html
    assert "keeper" in html and "remove" in html  # the plan preview
