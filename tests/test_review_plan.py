"""Groups without daisy chains, keep rules, legal holds and the plan (which changes nothing)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from astradup.errors import ReviewError
from astradup.review import (
    KeepRules,
    duplicate_groups,
    make_plan,
    plan_table,
    read_plan,
    record_decision,
    write_plan,
)
from astradup.review.groups import build_groups
from astradup.review.plan import choose_keeper
from astradup.store import Store
from tests.review_helpers import library, snapshot


def edges(*rows):
    return pd.DataFrame([(a, b, s, "near", "") for a, b, s in rows], columns=["a", "b", "score", "label", "decision"])


def vids(**sizes):
    return pd.DataFrame({"size": sizes, "duration": {k: 10.0 for k in sizes}})


def test_groups_have_no_daisy_chains():
    # A~B, B~C, C~D: B is the center; A and C match it; D matches only C, so it is chained, not a member
    g = build_groups(edges(("A", "B", 0.9), ("B", "C", 0.9), ("C", "D", 0.9)), edges(), vids(A=1, B=1, C=1, D=1))
    assert g[["group", "role", "path", "match"]].values.tolist() == [
        [1, "center", "B", ""], [1, "member", "A", "B"], [1, "member", "C", "B"], [1, "chained", "D", "C"]]


def test_every_member_matches_its_center_on_random_graphs():
    import numpy as np

    rng = np.random.default_rng(0)
    names = [f"v{i}" for i in range(12)]
    for _ in range(30):
        rows = [(a, b, float(rng.uniform(0.85, 1))) for i, a in enumerate(names) for b in names[i + 1:] if rng.random() < 0.2]
        e = edges(*rows)
        g = build_groups(e, edges(), vids(**{n: 1 for n in names}))
        pairs = {frozenset((a, b)) for a, b, _ in rows}
        centers = g[g["role"] == "center"].set_index("group")["path"]
        for r in g[g["role"] == "member"].itertuples():
            assert frozenset((r.path, centers[r.group])) in pairs
        # each video is in at most one group as center or member
        cm = g[g["role"].isin(["center", "member"])]["path"]
        assert cm.is_unique
        # every video with an edge is listed
        assert set(g["path"]) == {v for a, b, _ in rows for v in (a, b)}


def test_partial_copies_are_listed_apart_under_the_longer_video():
    part = edges(("clip", "long", 0.9))
    v = pd.DataFrame({"size": {"clip": 1, "long": 2, "x": 2}, "duration": {"clip": 4.0, "long": 9.0, "x": 9.0}})
    g = build_groups(edges(("long", "x", 0.95)), part, v)
    assert g[["role", "path", "match"]].values.tolist() == [["center", "long", ""], ["member", "x", "long"], ["partial", "clip", "long"]]


def cands(**rows):
    return pd.DataFrame([{"path": k, "abs_path": "/m/" + k, **v} for k, v in rows.items()])


def test_keep_rules_first_deciding_rule_wins_and_ties_are_reported():
    c = cands(a={"width": 640, "height": 360, "bit_rate": 1e6, "duration": 10, "mtime": 5, "size": 10},
              b={"width": 1280, "height": 720, "bit_rate": 1e6, "duration": 10, "mtime": 9, "size": 20},
              c={"width": 1280, "height": 720, "bit_rate": 2e6, "duration": 9, "mtime": 1, "size": 30})
    assert choose_keeper(c, ["resolution", "bitrate"]) == ("c", "bitrate", [])
    assert choose_keeper(c, ["oldest", "resolution"]) == ("c", "oldest", [])
    assert choose_keeper(c, ["longest", "resolution", "oldest"]) == ("b", "resolution", [])
    assert choose_keeper(c, ["longest", "bitrate", "oldest"]) == ("a", "oldest", [])
    assert choose_keeper(c, [{"path": "b"}]) == ("b", "path: b", [])
    assert choose_keeper(c, ["protected", "resolution", "oldest"], ["/m/a"]) == ("a", "protected", [])
    assert choose_keeper(c, ["resolution"]) == (None, "tie", ["b", "c"])
    with pytest.raises(ReviewError, match="'biggest' is unknown.*resolution"):
        KeepRules(rules=("biggest",))


def test_rules_file(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text("rules: [protected, {path: 'originals/*'}, longest]\nprotect: [keep]\nhold: [legal]\n")
    kr = KeepRules.from_file(f, hold=["/abs/x.mp4"])
    assert kr.rules == ("protected", {"path": "originals/*"}, "longest") and kr.protect == ("keep",)
    assert kr.hold == ("legal", "/abs/x.mp4")
    f.write_text("rule: [longest]\n")
    with pytest.raises(ReviewError, match="rules.yaml: unknown key"):
        KeepRules.from_file(f)


@pytest.fixture(scope="module")
def lib(media_dir, tmp_path_factory):
    # a byte copy in a sub-folder makes a three-way group with the source and its re-encode
    return library(media_dir, tmp_path_factory.mktemp("plan"), {"copies/src copy.mp4": "src.mp4"})


def test_plan_changes_nothing_and_adds_up(lib, tmp_path):
    corpus, store = lib
    before = snapshot(corpus)
    with Store(store, read_only=True) as st:
        g = duplicate_groups(st)
        p = make_plan(st)
    assert snapshot(corpus) == before
    assert set(g["role"]) >= {"center", "member"}
    t = plan_table(p)
    removed = t[t["action"] == "remove"]
    assert len(removed) >= 1 and p["totals"]["files_to_remove"] == len(removed)
    assert p["totals"]["bytes_to_free"] == sum((corpus / r).stat().st_size for r in removed["path"])
    # each removed file duplicates its group's keeper directly, and keepers are never removed
    keepers = {grp["group"]: grp["keeper"] for grp in p["groups"]}
    assert not set(removed["path"]) & set(keepers.values())
    assert all(r.keeper == keepers[r.group] and "duplicate of" in r.reason for r in removed.itertuples())
    js, csv = write_plan(p, tmp_path / "plan.json")
    assert read_plan(js)["totals"] == p["totals"] and pd.read_csv(csv)["action"].tolist() == t["action"].tolist()
    assert json.loads(js.read_text())["rules"]["rules"] == ["protected", "resolution", "bitrate", "longest", "oldest"]


def test_held_files_and_folders_are_never_removed(lib):
    corpus, store = lib
    with Store(store, read_only=True) as st:
        free = plan_table(make_plan(st))
        removed = free[free["action"] == "remove"]["path"].tolist()
        assert removed
        held = plan_table(make_plan(st, KeepRules(hold=tuple(removed))))
        by_folder = plan_table(make_plan(st, KeepRules(hold=(str(corpus),))))
    assert (held["action"] == "keep").all()
    assert set(held[held["path"].isin(removed)]["reason"]) == {"legal hold"}
    assert (by_folder["action"] == "keep").all()


def test_a_tie_removes_nothing_in_its_group(lib):
    _, store = lib
    with Store(store, read_only=True) as st:
        p = make_plan(st, KeepRules(rules=("largest",)))
    exact = [g for g in p["groups"] if g["keeper"] is None]
    # "copies/src copy.mp4" and "src.mp4" are byte copies: the size rule cannot tell them apart
    assert exact and all(e["action"] == "keep" for g in exact for e in g["entries"])
    assert all("tie after rules" in e["reason"] for g in exact for e in g["entries"] if e["role"] in ("center", "member"))
    assert any("src.mp4" in g["tie"] for g in exact)


def test_a_not_duplicate_decision_takes_the_pair_out_of_groups_and_plans(lib, tmp_path):
    import shutil

    corpus, store0 = lib
    store = tmp_path / "s.duckdb"
    shutil.copy(store0, store)
    with Store(store) as st:
        g = duplicate_groups(st)
        m = g[g["role"] == "member"].iloc[0]
        record_decision(st, m["path"], m["match"], "not-duplicate", reviewer="ann")
        g2 = duplicate_groups(st)
        p = make_plan(st)
    pairs2 = {frozenset((r.path, r.match)) for r in g2.itertuples() if r.match}
    assert frozenset((m["path"], m["match"])) not in pairs2
    for grp in p["groups"]:
        for e in grp["entries"]:
            if e["action"] == "remove":
                assert frozenset((e["path"], grp["keeper"])) != frozenset((m["path"], m["match"]))
