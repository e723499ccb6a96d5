"""Report figures, tables, HTML rendering and the page a reader opens (headless chromium)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from astradup.config import AstradupConfig, FusionConfig
from astradup.errors import AstradupError, ConfigError
from astradup.evaluation import evaluate
from astradup.orchestration import render_report
from astradup.orchestration.params import ReportParams, check_params
from astradup.report import figures, sections
from astradup.report.display import Html, figure_html, kv_table, table_html
from astradup.report.render import export_png, notebook_to_html
from astradup.testing.browser import check_page, find_chromium

NASTY = "<script>alert(1)</script>.mp4"
NASTY_IMG = '<img src=x onerror="alert(2)">.mp4'

needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="Debian's chromium is not installed "
                                    "(apt-get install -y chromium; `make system-deps` does it)")


# -- hand-made tables ---------------------------------------------------------------------------
def make_truth() -> pd.DataFrame:
    rows = [
        ("v00.mp4", "v01.mp4", "exact", "reencode"),
        ("v00.mp4", "v02.mp4", "near", "crop"),
        ("v03.mp4", "v04.mp4", "near", "speed"),
        ("v05.mp4", "v06.mp4", "partial", "trim"),
        ("v07.mp4", NASTY, "near", "crop"),
        ("v08.mp4", "v09.mp4", "similar", ""),
    ]
    t = pd.DataFrame(rows, columns=["a", "b", "relation", "transform"])
    t["a_start"] = [np.nan, np.nan, np.nan, 2.0, np.nan, np.nan]
    t["a_end"] = [np.nan, np.nan, np.nan, 8.0, np.nan, np.nan]
    t["b_start"] = [np.nan, np.nan, np.nan, 0.0, np.nan, np.nan]
    t["b_end"] = [np.nan, np.nan, np.nan, 6.0, np.nan, np.nan]
    return t


def make_pairs() -> pd.DataFrame:
    rows = [
        ("v00.mp4", "v01.mp4", 0.99, "exact", 0.99, 0.98, 1.0),
        ("v00.mp4", "v02.mp4", 0.90, "near", 0.90, 0.85, 0.9),
        ("v03.mp4", "v04.mp4", 0.80, "similar", 0.80, np.nan, 0.7),
        ("v05.mp4", "v06.mp4", 0.88, "near", 0.88, 0.90, 0.5),
        ("v07.mp4", NASTY, 0.91, "near", 0.90, 0.95, 0.6),
        ("v08.mp4", "v09.mp4", 0.75, "similar", 0.70, 0.80, 0.9),
        ("v10.mp4", NASTY_IMG, 0.87, "near", 0.86, 0.90, 0.8),
    ]
    p = pd.DataFrame(rows, columns=["a", "b", "score", "label", "visual", "audio", "metadata"])
    p["a_start"] = [np.nan, np.nan, np.nan, 2.5, np.nan, np.nan, np.nan]
    p["a_end"] = [np.nan, np.nan, np.nan, 8.0, np.nan, np.nan, np.nan]
    p["b_start"] = [np.nan, np.nan, np.nan, 0.5, np.nan, np.nan, np.nan]
    p["b_end"] = [np.nan, np.nan, np.nan, 6.0, np.nan, np.nan, np.nan]
    return p


VIDEOS = [f"v{i:02d}.mp4" for i in range(20)] + [NASTY, NASTY_IMG]


@pytest.fixture()
def truth() -> pd.DataFrame:
    return make_truth()


@pytest.fixture()
def pairs() -> pd.DataFrame:
    return make_pairs()


@pytest.fixture()
def result(truth, pairs):
    return evaluate(truth, pairs, videos=VIDEOS)


@pytest.fixture(scope="module")
def rendered_report(tmp_path_factory) -> Path:
    """``report.html`` of the hand-made run, rendered once through papermill and nbconvert."""
    d = tmp_path_factory.mktemp("report")
    make_truth().to_csv(d / "truth.csv", index=False)
    pd.DataFrame({"path": VIDEOS}).to_csv(d / "videos.csv", index=False)
    make_pairs().to_csv(d / "pairs.csv", index=False)
    return render_report(None, d / "truth.csv", d / "pairs.csv", d / "out", config=AstradupConfig(),
                         title="Report <script>alert(3)</script>")


# -- figures ------------------------------------------------------------------------------------
def test_plotly_text_escapes_markup():
    assert figures.plotly_text(NASTY) == "&lt;script&gt;alert(1)&lt;/script&gt;.mp4"
    assert figures.plotly_text("a & b") == "a &amp; b"
    assert figures.plotly_text(None) == ""


def test_pr_curve_traces_and_operating_point():
    pr = pd.DataFrame({"threshold": [0.95, 0.9, 0.8, 0.7], "precision": [1.0, 1.0, 0.75, 0.6],
                       "recall": [0.25, 0.5, 0.75, 0.75]})
    fig = figures.pr_curve(pr, threshold=0.82, average_precision=0.8125)
    curve, point = fig.data
    assert list(curve.x) == [0.25, 0.5, 0.75, 0.75]
    # equal recall: the higher threshold (higher precision) comes first on the step curve
    assert list(curve.y) == [1.0, 1.0, 0.75, 0.6]
    assert list(curve.customdata) == [0.95, 0.9, 0.8, 0.7]
    # the nearest threshold to 0.82 is 0.8: recall 0.75, precision 0.75
    assert (point.x[0], point.y[0]) == (0.75, 0.75)
    assert "0.82" in point.name
    assert "0.812" in fig.layout.title.text


def test_pr_curve_empty_says_so():
    fig = figures.pr_curve(pd.DataFrame(columns=["threshold", "precision", "recall"]))
    assert len(fig.data) == 0
    assert "nothing to rank" in fig.layout.annotations[0].text


def test_confusion_heatmap_counts_and_row_shares():
    labels = ["exact", "near", "similar", "different"]
    counts = pd.DataFrame([[2, 0, 0, 0], [0, 3, 1, 0], [0, 0, 1, 0], [0, 1, 0, 199]], index=labels, columns=labels)
    fig = figures.confusion_heatmap(counts)
    hm = fig.data[0]
    assert list(hm.x) == labels and list(hm.y) == labels
    np.testing.assert_allclose(np.asarray(hm.customdata), counts.to_numpy())
    np.testing.assert_allclose(np.asarray(hm.z)[1], [0, 0.75, 0.25, 0])
    assert hm.text[1][1] == "3<br>(75%)"
    # 1 of 200: shown as under one percent, not rounded to 0%
    assert hm.text[3][1] == "1<br>(&lt;1%)"
    assert fig.layout.yaxis.autorange == "reversed"


def test_confusion_from_evaluation(result):
    fig = figures.confusion_heatmap(result.confusion)
    assert np.asarray(fig.data[0].customdata).sum() == result.metrics["n_pairs_total"]


def test_transform_recall_bars(result):
    fig = figures.transform_recall(result.per_transform)
    by_rel = {t.name: t for t in fig.data}
    assert set(by_rel) == {"exact", "near", "partial"}
    near = by_rel["near"]
    got = dict(zip(near.y, near.x, strict=True))
    assert got == {"crop": 1.0, "speed": 0.0}
    assert dict(zip(near.y, near.text, strict=True)) == {"crop": "2/2", "speed": "0/1"}
    # lowest recall is listed first (bottom) so the weak transforms stand out
    assert list(fig.layout.yaxis.categoryarray)[0] == "speed"


def test_many_transforms_are_counted_per_part():
    rows = [(f"t{i}+t{j}", "near", 2, (i + j) % 3) for i in range(8) for j in range(i + 1, 8)]
    rows += [(f"t{i}", "near", 2, 2) for i in range(8)]
    pt = pd.DataFrame(rows, columns=["transform", "relation", "n", "recalled"])
    pt["recall"] = pt["recalled"] / pt["n"]
    parts = figures.by_component(pt)
    t0 = parts.set_index("transform").loc["t0"]
    # t0 alone (2/2) and in 7 pairs with t1..t7: recalled (0+j) % 3 for j = 1..7
    assert t0["n"] == 2 + 7 * 2 and t0["recalled"] == 2 + sum(j % 3 for j in range(1, 8))
    fig = figures.transform_recall(pt, max_bars=10)
    assert "composites counted under each part" in fig.layout.title.text
    assert sorted(fig.data[0].y) == [f"t{i}" for i in range(8)]
    assert len(figures.transform_recall(pt, max_bars=100).data[0].y) == len(pt)


def test_transform_matrix_cells():
    pt = pd.DataFrame({"transform": ["crop", "hflip", "crop+hflip", "crop+blur+hflip"], "relation": ["near"] * 4,
                       "n": [4, 4, 2, 2], "recalled": [4, 2, 1, 0]})
    pt["recall"] = pt["recalled"] / pt["n"]
    hm = figures.transform_matrix(pt).data[0]
    assert list(hm.x) == ["blur", "crop", "hflip"]
    z = np.asarray(hm.z, dtype=float)
    assert z[1, 1] == 1.0 and z[2, 2] == 0.5  # alone
    assert z[1, 2] == z[2, 1] == pytest.approx(1 / 4)  # crop with hflip: 1/2 and 0/2
    assert z[0, 1] == 0.0 and np.isnan(z[0, 0])  # blur only inside the triple
    assert hm.text[1][2] == "1/4"


def test_transform_names_are_escaped():
    pt = pd.DataFrame({"transform": ["<b>crop</b>"], "relation": ["near"], "n": [2], "recalled": [1], "recall": [0.5]})
    fig = figures.transform_recall(pt)
    assert list(fig.data[0].y) == ["&lt;b&gt;crop&lt;/b&gt;"]


def test_score_histograms_per_class_and_bands(result):
    fig = figures.score_histograms(result.joined, FusionConfig())
    counts = {t.name.split(" (")[0]: len(t.x) for t in fig.data}
    # scored pairs only: the unlabelled extra pair counts as "different"
    assert counts == {"exact": 1, "near": 3, "partial": 1, "similar": 1, "different": 1}
    near = next(t for t in fig.data if t.name.startswith("near"))
    assert sorted(near.x) == [0.8, 0.9, 0.91]
    lines = sorted(s.x0 for s in fig.layout.shapes)
    assert lines == [0.7, 0.85, 0.95]


def test_score_histograms_without_truth_use_labels(pairs):
    fig = figures.score_histograms(pairs, {"near": 0.85}, by="label")
    assert {t.name.split(" (")[0] for t in fig.data} == {"exact", "near", "similar"}
    assert [s.x0 for s in fig.layout.shapes] == [0.85]


def test_partial_copies_recall_and_tiou(result):
    fig = figures.partial_copies(result.joined)
    bars, hist = fig.data
    assert list(bars.y) == [1, 0]
    # truth a 2-8 / b 0-6, predicted a 2.5-8 / b 0.5-6: IoU 5.5/6 on both sides
    np.testing.assert_allclose(list(hist.x), [5.5 / 6])
    assert "recall 1/1" in fig.layout.annotations[0].text


def test_partial_copies_none():
    j = pd.DataFrame({"relation": ["near"], "label": ["near"], "tiou": [np.nan]})
    fig = figures.partial_copies(j)
    assert len(fig.data) == 0 and "no partial" in fig.layout.annotations[0].text


def test_alignment_heatmap_path_and_segment():
    sim = np.array([[0.9, 0.1, 0.0], [0.2, 0.95, 0.1], [0.0, 0.3, 0.8], [0.1, 0.0, 0.2]])
    explain = {"sim_matrix": sim, "ts_a": np.array([0.0, 1.0, 2.0, 3.0]), "ts_b": np.array([10.0, 11.0, 12.0]),
               "path": [(0, 0), (1, 1), (2, 2)],
               "segments": {"a_start": 0.0, "a_end": 2.5, "b_start": 10.0, "b_end": 12.5}}
    fig = figures.alignment_heatmap(explain, a=NASTY, b="b.mp4")
    hm, path = fig.data
    np.testing.assert_allclose(np.asarray(hm.z), sim)
    assert list(path.x) == [10.0, 11.0, 12.0] and list(path.y) == [0.0, 1.0, 2.0]
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (10.0, 12.5, 0.0, 2.5)
    assert "<script>" not in fig.layout.title.text and "&lt;script&gt;" in fig.layout.title.text
    assert "&lt;script&gt;" in fig.layout.yaxis.title.text


def test_alignment_heatmap_missing_segment_draws_no_box():
    explain = {"sim_matrix": np.eye(2), "ts_a": [0, 1], "ts_b": [0, 1], "path": [],
               "segments": {"a_start": None, "a_end": None, "b_start": None, "b_end": None}}
    fig = figures.alignment_heatmap(explain)
    assert len(fig.layout.shapes) == 0 and len(fig.data) == 1


def test_failures_table_escapes_cells():
    failures = pd.DataFrame({"path": [NASTY, "b.mp4"], "stage": ["open", "decode"],
                             "error_class": ["EmptyFileError", "DecodeError"],
                             "message": ["file is empty (0 bytes)", None]})
    fig = figures.failures_table(failures)
    cells = fig.data[0].cells.values
    assert cells[0] == ["&lt;script&gt;alert(1)&lt;/script&gt;.mp4", "b.mp4"]
    assert cells[3] == ["file is empty (0 bytes)", ""]
    assert "(2)" in fig.layout.title.text
    assert "no failures" in figures.failures_table(failures.iloc[0:0]).layout.annotations[0].text


def test_throughput_computes_rate_and_skips_match_runs():
    runs = pd.DataFrame({"run_id": ["r1", "r2", "r3"], "kind": ["index", "match", "index"],
                         "n_indexed": [100, 5000, 30], "seconds": [360.0, 10.0, 0.0]})
    fig = figures.throughput(runs)
    bar = fig.data[0]
    assert list(bar.x) == ["r1", "r3"]
    assert bar.y[0] == pytest.approx(1000.0)
    assert np.isnan(bar.y[1])  # zero seconds: no rate rather than a division by zero


def test_corpus_overview_panels():
    videos = pd.DataFrame({"duration": [4.0, 6.0, 6.0], "width": [96, 96, 64], "height": [64, 64, 48],
                           "video_codec": ["h264", "h264", "mpeg4"], "has_audio": [True, False, True]})
    fig = figures.corpus_overview(videos)
    hist, sizes, codecs, audio = fig.data
    assert list(hist.x) == [4.0, 6.0, 6.0]
    assert dict(zip(sizes.x, sizes.y, strict=True)) == {"96x64": 2, "64x48": 1}
    assert dict(zip(codecs.x, codecs.y, strict=True)) == {"h264": 2, "mpeg4": 1}
    assert list(audio.y) == [2, 1]


def test_metric_bars_compare():
    fig = figures.metric_bars({}, names=["f1", "recall"], compare={"default": {"f1": 0.5, "recall": 0.4},
                                                                    "tuned": {"f1": 0.7}})
    default, tuned = fig.data
    assert list(default.y) == [0.5, 0.4]
    assert tuned.y[0] == 0.7 and np.isnan(tuned.y[1])


# -- tables and display -------------------------------------------------------------------------
def test_table_html_escapes_everything_but_package_html():
    df = pd.DataFrame({"a": [NASTY], "score": [0.91234], "img": [Html('<img src="data:image/png;base64,AA">')]})
    out = table_html(df, caption="<i>caption</i>").html
    assert "<script>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in out
    assert "&lt;i&gt;caption&lt;/i&gt;" in out
    assert "<td>0.912</td>" in out
    assert '<img src="data:image/png;base64,AA">' in out


def test_kv_table_and_figure_html():
    assert "<td>&lt;b&gt;</td>" in kv_table({"x": "<b>"}).html
    div = figure_html(figures.pr_curve(pd.DataFrame({"threshold": [0.9], "precision": [1.0], "recall": [1.0]})))
    assert "Plotly.newPlot" in div
    assert len(div) < 50_000  # plotly.js itself is not repeated per figure


def test_check_params():
    full = check_params("04_evaluation_report", {"store": "s.duckdb", "top_n": 3})
    assert full["top_n"] == 3 and full["title"] == ReportParams().title
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['topn'\].*valid:.*top_n"):
        check_params("04_evaluation_report", {"topn": 3})
    with pytest.raises(ConfigError, match="'top_n' must be int, but got str"):
        check_params("04_evaluation_report", {"top_n": "3"})
    with pytest.raises(ConfigError, match="top_n must be >= 1, but got 0"):
        check_params("04_evaluation_report", {"top_n": 0})
    with pytest.raises(ConfigError, match="notebook '05_x' is unknown"):
        check_params("05_x", {})


# -- sections -----------------------------------------------------------------------------------
def test_false_positives_and_negatives(result):
    fp = sections.false_positives(result.joined)
    assert list(zip(fp["a"], fp["b"], strict=True)) == [(NASTY_IMG, "v10.mp4")]
    fn = sections.false_negatives(result.joined)
    assert list(zip(fn["a"], fn["b"], strict=True)) == [("v03.mp4", "v04.mp4")]


def test_false_negatives_near_misses_first():
    j = pd.DataFrame({"a": ["x", "y", "z"], "b": ["1", "2", "3"], "positive": [True, True, True],
                      "label": ["different", "similar", "similar"], "score": [np.nan, 0.6, 0.8]})
    assert list(sections.false_negatives(j)["a"]) == ["z", "y", "x"]


def test_examples_table_thumbnails_and_escaping(result, monkeypatch):
    import astradup.media

    seen = []

    def fake_thumbnail(path, t, size=160):
        seen.append((str(path), float(t)))
        return np.full((size * 9 // 16, size, 3), 200, dtype=np.uint8)

    monkeypatch.setattr(astradup.media, "thumbnail", fake_thumbnail, raising=False)
    rows = result.joined[result.joined["relation"].isin(["partial", "near"]) & result.joined["in_pairs"]]
    out = sections.examples_table(rows, media_root="/media", caption="Examples").html
    assert "<script>alert" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in out
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', out)
    assert len(imgs) == 2 * len(rows)
    from PIL import Image

    assert Image.open(io.BytesIO(base64.b64decode(imgs[0]))).size == (160, 90)
    # relative paths are resolved under the media root; the frame is the middle of the matched range
    assert ("/media/v05.mp4", (2.5 + 8.0) / 2) in seen
    assert "a 2.5-8.0 s / b 0.5-6.0 s" in out


def test_thumbnail_failure_is_a_note(monkeypatch):
    import astradup.media

    def broken(path, t, size=160):
        raise OSError("gone")

    monkeypatch.setattr(astradup.media, "thumbnail", broken, raising=False)
    assert "no thumbnail (OSError)" in sections.thumbnail_html("x.mp4", 1.0).html


def test_summary_without_truth(pairs):
    data = sections.RunData(pairs=pairs, config=AstradupConfig())
    assert sections.false_positives(data.joined) is None
    assert "Top false positives: needs a truth table." in sections.examples_table(
        sections.false_positives(data.joined), caption="Top false positives").html
    assert "FN: none." in sections.examples_table(pairs.iloc[0:0], caption="FN").html
    out = sections.summary(data).html
    assert "No truth table" in out
    assert "<td>near</td><td>4</td>" in out and "<td>exact</td><td>1</td>" in out
    assert data.class_column == "label" and data.pr_curve.empty


def test_versions_and_run_info(pairs):
    from astradup.provenance import versions

    v = versions()
    assert v["astradup"] and v["python"]
    info = sections.run_info(sections.RunData(pairs=pairs, config=AstradupConfig())).html
    assert "fusion:" in info and "near: 0.85" in info and "Versions" in info


# -- HTML rendering ------------------------------------------------------------------------------
def _executed_notebook(tmp_path: Path, n_figs: int = 2) -> Path:
    """A notebook with outputs as the kernel would leave them, without running a kernel."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from astradup.report.display import figure_html

    cells = [new_markdown_cell("# A report"), new_code_cell("x = 1", metadata={"tags": ["parameters"]})]
    pr = pd.DataFrame({"threshold": [0.9, 0.8], "precision": [1.0, 0.5], "recall": [0.5, 0.5]})
    for _ in range(n_figs):
        c = new_code_cell("show(fig)")
        c.outputs = [new_output("display_data", data={"text/html": figure_html(figures.pr_curve(pr)),
                                                      "text/plain": "fig"})]
        cells.append(c)
    c = new_code_cell("show(table)")
    c.outputs = [new_output("display_data", data={"text/html": table_html(pd.DataFrame({"a": [NASTY]})).html}),
                 new_output("stream", name="stderr", text="progress 100%\n")]
    cells.append(c)
    nb = new_notebook(cells=cells)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def test_notebook_to_html_is_offline(tmp_path):
    html_path = notebook_to_html(_executed_notebook(tmp_path), title="<b>T</b> & co")
    page = html_path.read_text()
    assert page.count("Plotly.newPlot") == 2
    # plotly.js is inline exactly once; nothing is fetched from a CDN
    assert page.count("* plotly.js v") == 1
    from plotly.offline import get_plotlyjs

    rest = page.replace(get_plotlyjs(), "")  # plotly.js names map-tile servers it never uses here
    assert not re.search(r"<script[^>]+src=", rest)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|import\s*\(""", rest)
    for cdn in ("cdnjs", "unpkg", "jsdelivr", "require.min.js", "MathJax.js", "mermaid"):
        assert cdn not in rest, cdn
    assert "<title>&lt;b&gt;T&lt;/b&gt; &amp; co</title>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in page and "<script>alert(1)" not in page
    assert "progress 100%" not in page  # stderr (progress bars, warnings) stays in the .ipynb only
    assert "x = 1" not in page  # code is hidden


@pytest.mark.slow
def test_render_report_from_csv(rendered_report):
    out = rendered_report.parent
    assert rendered_report.name == "report.html"
    assert (out / "04_evaluation_report.ipynb").is_file()
    assert (out / "config.yaml").is_file()  # the AstradupConfig given, as the notebook read it
    page = rendered_report.read_text()
    assert "<script>alert(" not in page
    assert "micro average precision" in page and "0.9667" in page  # µAP of the hand-made run
    assert page.count("* plotly.js v") == 1


def test_render_report_rejects_bad_params(tmp_path):
    with pytest.raises(ConfigError, match="top_n must be >= 1"):
        render_report(None, None, tmp_path / "p.csv", tmp_path / "out", top_n=0)


@pytest.mark.slow
def test_render_report_names_the_failing_cell(tmp_path):
    with pytest.raises(AstradupError, match=r"04_evaluation_report.ipynb: cell \d+ \(run = runs.load_report\(params\)\) raised TableError: .*missing.csv: file does not exist"):
        render_report(None, None, tmp_path / "missing.csv", tmp_path / "out")


# -- the page in a browser ------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_report_page_in_chromium(rendered_report):
    html = rendered_report
    page = check_page(html, screenshot=True)
    n_divs = Path(html).read_text().count('class="plotly-graph-div"')
    assert n_divs >= 7
    assert page.n_plots == n_divs, "every plot drew"
    assert page.n_main_svg >= 2 * n_divs
    assert page.console_errors == [] and page.exceptions == []
    assert page.dialogs == [], "injected script ran"
    assert page.external_requests == [], "the report must open offline"
    assert page.title == "Report <script>alert(3)</script>"
    assert NASTY in page.text and NASTY_IMG in page.text  # shown as text
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.browser
@needs_chromium
def test_check_page_sees_injected_script_and_cdn(tmp_path):
    """The checker itself: a page that alerts, throws and loads from a CDN is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><head><title>bad</title><script src='https://cdn.example.invalid/x.js'></script>"
                   "</head><body><p>hi</p><script>alert('x'); console.error('boom'); undefinedFn();</script>"
                   "</body></html>")
    page = check_page(bad, timeout=30, settle=0.5)
    assert page.dialogs == ["alert: x"]
    assert any("boom" in e for e in page.console_errors)
    assert any("undefinedFn" in e for e in page.exceptions)
    assert page.external_requests == ["https://cdn.example.invalid/x.js"]
    assert not page.ok and page.text.strip() == "hi"


@pytest.mark.browser
@needs_chromium
def test_export_png(tmp_path):
    labels = ["exact", "near", "similar", "different"]
    fig = figures.confusion_heatmap(pd.DataFrame(np.eye(4, dtype=int), index=labels, columns=labels))
    out = export_png(fig, tmp_path / "confusion.png", width=640, height=400)
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (640, 400)
        # not blank: the heat map's dark diagonal and white background are both there
        lo, hi = im.convert("L").getextrema()
        assert hi - lo > 100


def test_export_png_without_kaleido_says_how(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_kaleido(name, *args, **kwargs):
        if name == "kaleido":
            raise ImportError("no kaleido")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kaleido)
    with pytest.raises(AstradupError, match=r"pip install 'kaleido>=1.0'"):
        export_png(figures.pr_curve(pd.DataFrame()), tmp_path / "x.png")
