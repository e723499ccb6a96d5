"""Pipelines: YAML checks and references, dated run folders, the latest link, HTML per notebook,
and a failing notebook that stops the run with a clear message and keeps what ran."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from astradup.errors import ConfigError
from astradup.orchestration.pipeline import (
    PipelineError,
    find_pipeline,
    load_pipeline,
    plan,
    run_pipeline,
    substitute,
)
from astradup.testing.browser import check_page, find_chromium

ROOT = Path(__file__).resolve().parents[1]
NASTY = "<script>alert(1)</script>.mp4"


def write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def csv_run(d: Path) -> dict[str, Path]:
    """A truth table and a pairs table, enough for 04_evaluation_report without a store."""
    d.mkdir(parents=True, exist_ok=True)
    truth = pd.DataFrame({"a": ["a.mp4", "c.mp4"], "b": ["b.mp4", NASTY], "relation": ["near", "exact"]})
    pairs = pd.DataFrame({"a": ["a.mp4", "c.mp4", "d.mp4"], "b": ["b.mp4", NASTY, "e.mp4"],
                          "score": [0.9, 0.97, 0.88], "label": ["near", "exact", "near"]})
    truth.to_csv(d / "truth.csv", index=False)
    pairs.to_csv(d / "pairs.csv", index=False)
    return {"truth": d / "truth.csv", "pairs": d / "pairs.csv"}


def report_step(pairs: str, truth: str = "${truth}", title: str = "csv report") -> dict:
    return {"notebook": "04_evaluation_report",
            "parameters": {"store": "", "pairs": pairs, "truth": truth, "title": title, "top_n": 3}}


# -- the file and its references -------------------------------------------------------------------
def test_shipped_pipelines_resolve():
    for name in ("demo", "nightly"):
        path = find_pipeline(name)
        assert path == ROOT / "pipelines" / f"{name}.yaml"
        steps = plan(load_pipeline(path), name, Path("/r/run"), "T", source=name)
        assert steps[0]["stem"] == "01_dedup_run"
        assert steps[0]["parameters"]["out"] == "/r/run/pairs.csv"
        assert steps[-1]["stem"] == "04_evaluation_report"
        assert steps[-1]["parameters"]["pairs"] == "/r/run/pairs.csv"


def test_substitute_keeps_types_of_whole_references():
    env = {"n": 5, "flag": False, "dir": "/x"}
    assert substitute("${n}", env, "w") == 5
    assert substitute("${flag}", env, "w") is False
    assert substitute("${dir}/pairs.csv", env, "w") == "/x/pairs.csv"
    assert substitute("top ${n}", env, "w") == "top 5"
    assert substitute({"a": ["${n}", 1]}, env, "w") == {"a": [5, 1]}
    with pytest.raises(ConfigError, match=r"w: \$\{nope\} is not defined; defined: \['dir', 'flag', 'n'\]"):
        substitute("${nope}", env, "w")


def test_plan_checks_parameters_before_running(tmp_path):
    spec = {"params": {"pairs": "p.csv"}, "notebooks": [report_step("${pairs}", truth="")]}
    spec["notebooks"][0]["parameters"]["topn"] = 3
    path = write(tmp_path / "bad.yaml", spec)
    with pytest.raises(ConfigError, match=r"step 1 \(04_evaluation_report\).*unknown parameter\(s\) \['topn'\]"):
        run_pipeline(path, reports_dir=tmp_path / "reports")
    assert not (tmp_path / "reports").exists(), "a bad file creates no run folder"


def test_overrides(tmp_path):
    spec = load_pipeline(write(tmp_path / "p.yaml", {"params": {"pairs": "p.csv", "n": 3},
                                                       "notebooks": [report_step("${pairs}", truth="")]}))
    spec["notebooks"][0]["parameters"]["top_n"] = "${n}"
    steps = plan(spec, "p", tmp_path, "T", {"n": "7", "pairs": "q.csv"})
    assert steps[0]["parameters"]["top_n"] == 7  # text from the command line, read as the param's type
    assert steps[0]["parameters"]["pairs"] == "q.csv"
    with pytest.raises(ConfigError, match=r"cannot override \['media'\]; the pipeline's params are \['n', 'pairs'\]"):
        plan(spec, "p", tmp_path, "T", {"media": "x"})
    with pytest.raises(ConfigError, match="override n: expected int, but got 'many'"):
        plan(spec, "p", tmp_path, "T", {"n": "many"})


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ([], "must be a mapping"),
        ({"notebooks": []}, "'notebooks' must be a non-empty list"),
        ({"notebooks": [{"parameters": {}}]}, "step 1 must be a mapping with a 'notebook' key"),
        ({"notebooks": [{"notebook": "04_evaluation_report", "params": {}}]}, r"step 1: unknown key\(s\) \['params'\]"),
        ({"steps": []}, r"unknown key\(s\) \['steps'\]"),
        ({"params": {"run_dir": "x"}, "notebooks": [{"notebook": "x"}]}, "built-in names"),
    ],
)
def test_load_pipeline_rejects_bad_files(tmp_path, spec, match):
    with pytest.raises(ConfigError, match=match):
        load_pipeline(write(tmp_path / "bad.yaml", spec))


def test_unknown_pipeline_and_notebook(tmp_path):
    with pytest.raises(ConfigError, match=r"pipeline 'nope' not found; choose one of \[.*'demo'.*'nightly'"):
        find_pipeline("nope")
    path = write(tmp_path / "p.yaml", {"notebooks": [{"notebook": "99_nothing"}]})
    with pytest.raises(ConfigError, match=r"notebook '99_nothing' not found; choose one of \['01_dedup_run'"):
        run_pipeline(path, reports_dir=tmp_path / "reports")


# -- runs ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_run_folder_latest_link_and_html(tmp_path):
    files = csv_run(tmp_path / "in")
    spec = {"description": "two reports", "params": {"truth": str(files["truth"]), "pairs": str(files["pairs"])},
            "notebooks": [report_step("${pairs}", title="with truth"), report_step("${pairs}", truth="", title="no truth")]}
    path = write(tmp_path / "csvdemo.yaml", spec)
    run_dir = run_pipeline(path, reports_dir=tmp_path / "reports")

    base = tmp_path / "reports" / "csvdemo"
    assert run_dir.parent == base and len(run_dir.name) == len("20261121T020000Z")
    latest = base / "latest"
    assert latest.is_symlink() and os.readlink(latest) == run_dir.name  # relative: the folder can move
    assert latest.resolve() == run_dir.resolve()
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["04_evaluation_report-2.html", "04_evaluation_report-2.ipynb", "04_evaluation_report.html",
                     "04_evaluation_report.ipynb", "index.html", "run.json"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "ok" and [s["status"] for s in record["steps"]] == ["ok", "ok"]
    assert record["steps"][1]["parameters"]["truth"] == ""
    first = (run_dir / "04_evaluation_report.html").read_text()
    assert "micro average precision" in first and "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in first
    assert "No truth table" in (run_dir / "04_evaluation_report-2.html").read_text()
    index = (run_dir / "index.html").read_text()
    assert 'href="04_evaluation_report.html"' in index and 'href="04_evaluation_report-2.html"' in index

    # a second run (one step, to keep the test short) gets its own folder and moves the link
    spec["notebooks"] = spec["notebooks"][1:]
    again = run_pipeline(write(path, spec), reports_dir=tmp_path / "reports")
    assert again != run_dir and again.parent == base
    assert os.readlink(latest) == again.name


@pytest.mark.slow
def test_failing_notebook_stops_and_keeps_partial_outputs(tmp_path):
    files = csv_run(tmp_path / "in")
    spec = {"params": {"truth": str(files["truth"]), "pairs": str(files["pairs"])},
            "notebooks": [report_step("${pairs}", title="first"),
                          report_step(str(tmp_path / "missing.csv"), title="second"),
                          report_step("${pairs}", title="never runs")]}
    path = write(tmp_path / "breaks.yaml", spec)
    with pytest.raises(PipelineError) as info:
        run_pipeline(path, reports_dir=tmp_path / "reports")
    err = info.value
    msg = str(err)
    assert "pipeline 'breaks' stopped at step 2 of 3: 04_evaluation_report.ipynb cell" in msg
    assert "(run = runs.load_report(params)) raised TableError" in msg and "missing.csv: file does not exist" in msg
    assert str(err.run_dir) in msg and err.notebook == "04_evaluation_report"

    run_dir = err.run_dir
    assert (run_dir / "04_evaluation_report.html").is_file()  # step 1 kept
    failed = run_dir / "04_evaluation_report-2.ipynb"
    assert failed.is_file() and "TableError" in failed.read_text()  # the traceback is kept
    assert (run_dir / "04_evaluation_report-2.html").is_file()
    assert not (run_dir / "04_evaluation_report-3.ipynb").exists()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed"
    assert [s["status"] for s in record["steps"]] == ["ok", "failed"]
    assert not (run_dir.parent / "latest").exists(), "latest only points at runs that finished"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_demo_pipeline_end_to_end(media_dir, tmp_path, monkeypatch):
    """pipelines/demo.yaml on a tiny corpus: index + match, then the report, opened in chromium."""
    corpus = tmp_path / "corpus"
    shutil.copytree(media_dir, corpus)
    (corpus / "<script>alert(1)<").mkdir()
    shutil.copyfile(corpus / "src.mp4", corpus / NASTY)
    pd.DataFrame({"a": ["reencode.mkv", NASTY], "b": ["src.mp4", "src.mp4"], "relation": ["near", "exact"]}).to_csv(
        tmp_path / "ground_truth.csv", index=False)
    monkeypatch.chdir(ROOT)  # pipelines/ and notebooks/ resolve from the checkout, as from the CLI
    run_dir = run_pipeline("demo", {"media_dir": str(corpus), "store": str(tmp_path / "store.duckdb"),
                                    "truth": str(tmp_path / "ground_truth.csv"), "top_n": "3",
                                    "workers": "1"},
                           reports_dir=tmp_path / "reports")
    assert (tmp_path / "reports" / "demo" / "latest").resolve() == run_dir.resolve()
    assert (run_dir / "pairs.csv").is_file()
    assert {"01_dedup_run.html", "04_evaluation_report.html", "index.html"} <= {p.name for p in run_dir.iterdir()}
    page = check_page(run_dir / "04_evaluation_report.html")
    assert page.ok, (page.console_errors, page.exceptions, page.dialogs, page.external_requests)
    assert page.n_plots >= 7 and NASTY in page.text
