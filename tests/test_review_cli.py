"""The review commands end to end: groups, decide, match (decisions kept), plan, apply, export,
a removed copy coming back, undo, and tune with reviewer decisions."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from astradup.cli import app
from astradup.execution import run_index, run_match
from tests.review_helpers import CFG, library, snapshot

runner = CliRunner()


def cli(*args: str, input: str | None = None, code: int = 0):
    res = runner.invoke(app, [str(a) for a in args], input=input)
    assert res.exit_code == code, (res.output, res.exception)
    return res


@pytest.mark.slow
def test_review_flow_from_groups_to_undo(media_dir, tmp_path):
    corpus, store = library(media_dir, tmp_path, {"copies/src copy.mp4": "src.mp4"})
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CFG.to_dict()))
    before = snapshot(corpus)

    out = cli("groups", "--store", store, "--out", tmp_path / "groups.csv").output
    g = pd.read_csv(tmp_path / "groups.csv", keep_default_na=False)
    assert "groups written" in out and {"center", "member", "partial"} <= set(g["role"])
    assert set(g.columns) >= {"group", "role", "path", "match", "score", "label", "decision", "size"}

    # a decision by relative and absolute path; bad input names the problem
    out = cli("decide", "--store", store, "clip.mp4", corpus / "src.mp4", "--as", "not-duplicate", "--reviewer", "ann").output
    assert out.startswith("not-duplicate: clip.mp4 | src.mp4 (by ann")
    assert "is unknown" in cli("decide", "--store", store, "clip.mp4", "src.mp4", "--as", "maybe", code=2).output
    assert "nope.mp4: not an indexed video" in cli("decide", "--store", store, "nope.mp4", "src.mp4", "--as", "skip", code=2).output

    # the decision survives a re-match (pairs.csv carries it)
    cli("match", "--store", store, "--config", cfg, "--min-score", "0", "--out", tmp_path / "pairs.csv", "-q")
    p = pd.read_csv(tmp_path / "pairs.csv", keep_default_na=False)
    row = p[(p["a"] == "clip.mp4") & (p["b"] == "src.mp4")]
    assert row["decision"].tolist() == ["not-duplicate"]

    # a plan with a rules file and a hold; then the real one
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: [{path: src.mp4}, oldest]\n")
    out = cli("plan", "--store", store, "--out", tmp_path / "held.json", "--rules", rules, "--hold", "copies").output
    held = pd.read_csv(tmp_path / "held.csv", keep_default_na=False)
    assert set(held[held["path"] == "copies/src copy.mp4"]["reason"]) == {"legal hold"}
    out = cli("plan", "--store", store, "--out", tmp_path / "plan.json", "--rules", rules).output
    plan = json.loads((tmp_path / "plan.json").read_text())
    removed = [e["path"] for grp in plan["groups"] for e in grp["entries"] if e["action"] == "remove"]
    assert removed and f"{len(removed)} files to remove" in out and snapshot(corpus) == before
    assert "src.mp4" not in removed and "copies/src copy.mp4" in removed  # the path rule keeps src.mp4

    # apply asks first; "n" does nothing
    q = tmp_path / "quarantine"
    cli("apply", tmp_path / "plan.json", "--quarantine", q, input="n\n", code=1)
    assert snapshot(corpus) == before
    out = cli("apply", tmp_path / "plan.json", "--quarantine", q, "--yes").output
    assert f"done     {len(removed)}" in out and "undo with: astradup undo" in out
    assert all(not (corpus / r).exists() for r in removed)

    # every review table is exported
    cli("export", "--store", store, "--parquet", tmp_path / "pq")
    for t, n in (("decisions", 1), ("actions", 1), ("audit", 2 * len(removed)), ("tombstones", len(removed))):
        assert len(pd.read_parquet(tmp_path / "pq" / f"{t}.parquet")) == n, t

    # a removed file copied back under another name is flagged as a known removed duplicate
    back = corpus / "back again.mp4"
    moved = next(q.rglob(removed[0].rsplit("/", 1)[-1]))
    shutil.copy2(moved, back)
    run_index(corpus, store, CFG, eager=True, progress=False)
    run_match(store, CFG, min_score=0.0, progress=False)
    out = cli("groups", "--store", store, "--out", tmp_path / "groups2.csv").output
    assert f"known removed duplicate: back again.mp4 is a copy of {corpus / removed[0]}" in out
    g2 = pd.read_csv(tmp_path / "groups2.csv", keep_default_na=False)
    assert g2[g2["path"] == "back again.mp4"]["returned"].tolist()[0] == str(corpus / removed[0])
    back.unlink()

    out = cli("undo", "--store", store).output
    assert f"undone   {len(removed)}" in out
    assert snapshot(corpus) == before


@pytest.mark.slow
def test_tune_learns_from_reviewer_decisions(media_dir, tmp_path):
    corpus, store = library(media_dir, tmp_path)
    pairs = tmp_path / "pairs.csv"
    run_match(store, CFG, min_score=0.0, progress=False, out=pairs)
    truth = pd.DataFrame([("reencode.mkv", "src.mp4", "near"), ("mirror.mp4", "src.mp4", "near"),
                          ("clip.mp4", "src.mp4", "partial"), ("other.mp4", "src.mp4", "different")],
                         columns=["a", "b", "relation"])
    truth.to_csv(tmp_path / "truth.csv", index=False)
    cli("decide", "--store", store, "other.mp4", "reencode.mkv", "--as", "not-duplicate")
    cli("decide", "--store", store, "mirror.mp4", "src.mp4", "--as", "not-duplicate")  # the reviewer disagrees
    res = runner.invoke(app, ["tune", "--truth", str(tmp_path / "truth.csv"), "--pairs", str(pairs),
                              "--decisions", str(store), "--trials", "3", "--fusion-only", "--quiet",
                              "--out", str(tmp_path / "tuned.yaml")])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "4 generated pairs + reviewer decisions -> 5 labelled pairs" in res.output
    assert (tmp_path / "tuned.yaml").is_file()
