"""Neighbours of neighbours: copies of a common video are verified even when the search missed them."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from astradup.config import AstradupConfig
from astradup.errors import ConfigError
from astradup.execution import run_index, run_match
from astradup.scoring.graph import apply_graph, expansion_pairs, promotable_stubs, promote_by_hubs
from astradup.store import Store


def _row(a: int, b: int, score: float, label: str = "near", partial: bool = False, hash_hit: float = 0.0,
         spread: float = 0.4) -> dict:
    return {"a_id": a, "b_id": b, "score": score, "label": label, "partial": partial,
            "explanation": json.dumps({"evidence": {"hash_hit": hash_hit, "spread": spread}})}


def _top(n: int) -> AstradupConfig:
    return AstradupConfig().replace(**{"match.expand_top": n})


def _cand(*pairs: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame({"a": [a for a, _ in pairs], "b": [b for _, b in pairs]})


def _pairs(df: pd.DataFrame) -> list[tuple[int, int]]:
    return list(zip(df["a"].tolist(), df["b"].tolist()))


def test_whole_copies_of_a_common_video_become_candidates():
    # 1 is the source: 2, 3 and 4 are whole copies of it, 5 a partial copy, 6 only similar
    rows = [_row(1, 2, 0.97, "exact"), _row(3, 1, 0.9), _row(1, 4, 0.88), _row(1, 5, 0.93, partial=True),
            _row(6, 1, 0.8, "similar"), _row(2, 3, 0.95, "exact")]
    cand = _cand((1, 2), (3, 1), (1, 4), (1, 5), (6, 1), (2, 3), (5, 6))
    # (2, 3) was searched already; 6 (similar) pulls nothing in; 5 (partial) is proposed with the
    # whole copies 2, 3 and 4 (its own evidence decides those pairs), not with 6
    assert _pairs(expansion_pairs(rows, cand, _top(40))) == [(2, 4), (2, 5), (3, 4), (3, 5), (4, 5)]


def test_a_partial_copy_is_proposed_with_whole_copies_and_promoted_only_with_pixels_and_motion():
    # 2 and 3 are whole copies of 1; 4, 5, 6, 7 partial copies of it: 4 and 7 confirmed by their
    # hashes in a moving picture, 5 only by its subject (hashes at chance, as for a quote sampled
    # out of phase), 6 a still shot
    rows = [_row(1, 2, 0.97, "exact"), _row(1, 3, 0.9), _row(1, 4, 0.9, partial=True, hash_hit=0.8),
            _row(1, 5, 0.92, partial=True, hash_hit=0.1), _row(1, 6, 0.92, partial=True, hash_hit=1.0, spread=0.05),
            _row(1, 7, 0.91, partial=True, hash_hit=0.9)]
    got = _pairs(expansion_pairs(rows, _cand(*[(r["a_id"], r["b_id"]) for r in rows]), _top(40)))
    # every partial copy is proposed with the whole copies 2 and 3, never with another partial
    # copy (two stretches may not overlap): verification judges each pair on its own evidence
    assert got == [(2, 3), (2, 4), (2, 5), (2, 6), (2, 7), (3, 4), (3, 5), (3, 6), (3, 7)]
    # promotion needs the confirmed link: verified as "similar", (2, 4) and (2, 7) become near,
    # (2, 5) and (2, 6) keep their own verdict
    cfg = AstradupConfig()
    table = _etable([(str(r["a_id"]), str(r["b_id"]), r["score"], r["label"], r["partial"],
                      json.loads(r["explanation"])["evidence"]["hash_hit"], json.loads(r["explanation"])["evidence"]["spread"])
                     for r in rows] + [("2", str(v), 0.8, "similar", False, 0.0, 0.4) for v in (4, 5, 6, 7)])
    out = promote_by_hubs(table, cfg).set_index(["a", "b"])["label"]
    assert [out.loc[("2", str(v))] for v in (4, 5, 6, 7)] == ["near", "similar", "similar", "near"]


def test_each_common_video_lends_only_its_best_copies():
    rows = [_row(1, 2, 0.97, "exact"), _row(1, 3, 0.9), _row(1, 4, 0.86)]
    assert _pairs(expansion_pairs(rows, _cand((1, 2), (1, 3), (1, 4)), _top(2))) == [(2, 3)]
    assert _pairs(expansion_pairs(rows, _cand((1, 2), (1, 3), (1, 4)), _top(1))) == []


def test_expansion_is_sorted_and_independent_of_row_order():
    rng = random.Random(3)
    rows = [_row(a, b, round(rng.uniform(0.86, 0.99), 3), rng.choice(["exact", "near", "similar"]),
                 rng.random() < 0.2)
            for a in range(12) for b in range(a + 1, 12) if rng.random() < 0.35]
    cand = _cand(*[(r["a_id"], r["b_id"]) for r in rows])
    want = expansion_pairs(rows, cand, _top(5))
    got = _pairs(want)
    assert got == sorted(got) and all(a < b for a, b in got)
    assert not set(got) & set(_pairs(cand))
    for _ in range(3):
        rng.shuffle(rows)
        assert _pairs(expansion_pairs(rows, cand, _top(5))) == got


def test_expand_top_is_checked():
    with pytest.raises(ConfigError, match="expand_top"):
        AstradupConfig().replace(**{"match.expand_top": -1})


def test_match_verifies_a_pair_the_search_missed(media_dir, tmp_path, monkeypatch):
    """The re-encode and the mirror image are both whole copies of the source: with the search
    made to miss that pair, the expansion still verifies it and reports it a duplicate."""
    import astradup.execution.runner as runner

    store = tmp_path / "s.duckdb"
    run_index(media_dir, store, eager=True, progress=False)
    with Store(store, read_only=True) as st:
        ids = st.videos().set_index("rel_path")["video_id"]
    missed = {int(ids["reencode.mkv"]), int(ids["mirror.mp4"])}
    real = runner.find_candidates

    def blind(*args, **kw):
        cand = real(*args, **kw)
        keep = [{int(a), int(b)} != missed for a, b in zip(cand["a"], cand["b"])]
        return cand[keep].reset_index(drop=True)

    monkeypatch.setattr(runner, "find_candidates", blind)
    off = run_match(store, AstradupConfig().replace(**{"match.expand_top": 0}), min_score=0.0, progress=False)
    on = run_match(store, min_score=0.0, progress=False)
    key = ("mirror.mp4", "reencode.mkv")
    assert key not in set(zip(off["a"], off["b"]))
    found = on.set_index(["a", "b"]).loc[key]
    assert found["label"] in ("exact", "near")
    assert on.attrs["n_candidates"] == off.attrs["n_candidates"] + 1
    # the pairs the search found are scored as before
    both = on.merge(off, on=["a", "b"], suffixes=("", "_off"))
    assert len(both) == len(off) and (both["score"] == both["score_off"]).all()


def _table(rows: list[tuple[str, str, float, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame({"a": [r[0] for r in rows], "b": [r[1] for r in rows], "score": [r[2] for r in rows],
                         "label": [r[3] for r in rows], "partial": [r[4] for r in rows],
                         "explanation": [json.dumps({"band": r[3], "visual": {"coverage_a": 1.0, "coverage_b": 0.5}})
                                         for r in rows]})


def test_a_similar_pair_of_two_whole_copies_of_one_video_is_near():
    cfg = AstradupConfig()
    df = _table([("s", "x", 0.97, "exact", False), ("s", "y", 0.9, "near", False), ("x", "y", 0.8, "similar", False),
                 ("s", "p", 0.92, "near", True), ("p", "x", 0.8, "similar", False),  # p is a partial copy of s
                 ("q", "x", 0.6, "different", False), ("q", "s", 0.86, "near", False)])
    out = promote_by_hubs(df, cfg).set_index(["a", "b"])
    xy = out.loc[("x", "y")]
    assert xy["label"] == "near" and xy["score"] == pytest.approx(0.9)  # the weaker link
    assert bool(xy["partial"])  # its own path covers half of y
    ex = json.loads(xy["explanation"])
    assert ex["transitive"] == {"via": "s", "links": [0.97, 0.9], "own_score": 0.8, "own_label": "similar"}
    assert ex["band"] == "near"
    # a partial copy lends nothing; a pair its own evidence calls different is promoted like a
    # similar one (q and x are both whole copies of s), its own verdict kept in the explanation
    assert out.loc[("p", "x"), "label"] == "similar"
    qx = out.loc[("q", "x")]
    assert qx["label"] == "near" and json.loads(qx["explanation"])["transitive"]["own_label"] == "different"
    # ... unless the match kept only its verdict (a stub under match.min_score: no evidence)
    stub = df.assign(explanation=[e if a != "q" or b != "x" else "" for a, b, e in zip(df["a"], df["b"], df["explanation"])])
    assert promote_by_hubs(stub, cfg).set_index(["a", "b"]).loc[("q", "x"), "label"] == "different"
    # everything else as it was, in the same order; off with match.expand_top 0
    assert list(zip(out.index.get_level_values(0), out.index.get_level_values(1))) == list(zip(df["a"], df["b"]))
    assert (promote_by_hubs(df, cfg.replace(**{"match.expand_top": 0}))["label"] == df["label"]).all()


def _etable(rows: list[tuple[str, str, float, str, bool, float, float]]) -> pd.DataFrame:
    """Pairs with their evidence: (a, b, score, label, partial, hash_hit, spread)."""
    return pd.DataFrame({"a": [r[0] for r in rows], "b": [r[1] for r in rows], "score": [r[2] for r in rows],
                         "label": [r[3] for r in rows], "partial": [r[4] for r in rows],
                         "explanation": [json.dumps({"band": r[3], "visual": {"coverage_a": 1.0, "coverage_b": 1.0},
                                                     "evidence": {"hash_hit": r[5], "spread": r[6]}}) for r in rows]})


def test_stubs_the_graph_would_promote_are_verified_again():
    """A verdict-only stub (under match.min_score) between two whole copies of a common video is
    sent back for its evidence, so the threshold does not change what the graph promotes."""
    stub = {"a_id": 3, "b_id": 2, "score": 0.2, "label": "different", "partial": False, "explanation": ""}
    lone = {"a_id": 2, "b_id": 9, "score": 0.1, "label": "different", "partial": False, "explanation": ""}
    rows = [_row(1, 2, 0.97, "exact"), _row(1, 3, 0.9), stub, lone, _row(2, 4, 0.3, "different")]
    assert _pairs(promotable_stubs(rows, _top(40))) == [(2, 3)]  # 9 has no link; (2, 4) is whole already
    assert promotable_stubs(rows, _top(0)).empty


def test_a_stretch_that_looks_like_another_video_lends_no_link():
    """x holds a stretch of h (hashes agree, the picture moves) and is also a duplicate of g's
    copies (another stretch of a still shot that looks the same): most of x's duplicates are not
    h's, so h cannot claim x's stretch and y (a whole copy of h) is not promoted."""
    cfg = AstradupConfig()
    whole = [("h", "h1", 0.95, "near", False, 1.0, 0.4), ("h", "y", 0.95, "near", False, 1.0, 0.4),
             ("g", "g1", 0.95, "near", False, 1.0, 0.4), ("g", "g2", 0.95, "near", False, 1.0, 0.4)]
    link = [("h", "x", 0.93, "near", True, 1.0, 0.4), ("x", "y", 0.8, "similar", False, 1.0, 0.4)]
    still = [("g", "x", 0.9, "near", True, 1.0, 0.1), ("g1", "x", 0.9, "near", True, 1.0, 0.1),
             ("g2", "x", 0.9, "near", True, 1.0, 0.1)]  # a still shot: not links, but duplicates
    out = promote_by_hubs(_etable(whole + link + still), cfg).set_index(["a", "b"])
    assert out.loc[("x", "y"), "label"] == "similar"
    # with one duplicate of g's only, most of x's duplicates are h's: the link stands
    out = promote_by_hubs(_etable(whole + link + still[:1] + [("h1", "x", 0.9, "near", True, 0.2, 0.4)]), cfg)
    assert out.set_index(["a", "b"]).loc[("x", "y"), "label"] == "near"


def test_promotion_is_one_hop_and_undone_when_the_links_go():
    cfg = AstradupConfig()
    # s - x - y: x and y whole copies of s; z a whole copy of y only
    df = _table([("s", "x", 0.97, "near", False), ("s", "y", 0.9, "near", False), ("x", "y", 0.8, "similar", False),
                 ("y", "z", 0.9, "near", False), ("x", "z", 0.8, "similar", False), ("s", "z", 0.8, "similar", False)])
    once = promote_by_hubs(df, cfg)
    labels = dict(zip(zip(once["a"], once["b"]), once["label"]))
    assert labels[("x", "y")] == "near" and labels[("s", "z")] == "near"  # via y
    # x - z would need two hops (x - s - y - z): it stays as its own evidence says
    assert labels[("x", "z")] == "similar"
    # matched again without the link that promoted it, a pair goes back to its own verdict
    gone = once[~((once["a"] == "s") & (once["b"] == "x"))]
    again = apply_graph(gone.assign(label=lambda d: d["label"].where(~((d["a"] == "x") & (d["b"] == "y")), "similar")), cfg)
    xy = again[(again["a"] == "x") & (again["b"] == "y")].iloc[0]
    assert xy["label"] == "similar" and "transitive" not in json.loads(xy["explanation"])


def test_explain_says_which_common_video_made_a_pair_near(media_dir, tmp_path, monkeypatch):
    """``astradup explain`` must show the verdict pairs.csv shows: where the last match promoted
    the pair through a common video, the explanation names it."""
    import dataclasses

    import astradup.execution.runner as runner
    from astradup.execution import explain_pair

    store = tmp_path / "s.duckdb"
    run_index(media_dir, store, eager=True, progress=False)
    run_match(store, min_score=0.0, progress=False)
    via = {"via": "src.mp4", "links": [0.97, 0.91], "own_score": 0.8, "own_label": "similar"}
    with Store(store) as st:
        st.con.execute("UPDATE pairs SET explanation = ?, label = 'near', score = 0.91 "
                       "WHERE a = 'mirror.mp4' AND b = 'reencode.mkv'", [json.dumps({"transitive": via})])
    real = runner.score_pair

    def own_similar(fa, fb, cfg):  # the pair's own evidence, as if it said only "similar"
        return dataclasses.replace(real(fa, fb, cfg), label="similar", score=0.8)

    monkeypatch.setattr(runner, "score_pair", own_similar)
    ex = explain_pair(store, "reencode.mkv", "mirror.mp4")
    assert ex["scores"]["label"] == "near" and ex["scores"]["score"] == pytest.approx(0.91)
    assert ex["explanation"]["transitive"] == via
    other = explain_pair(store, "clip.mp4", "other.mp4")  # not promoted: its own verdict
    assert other["scores"]["label"] == "similar" and "transitive" not in other["explanation"]


def _ptable(rows: list[tuple[str, str, float, str, bool, float, float]]) -> pd.DataFrame:
    """Pairs with the coverage of each side: (a, b, score, label, partial, coverage_a, coverage_b)."""
    return pd.DataFrame({"a": [r[0] for r in rows], "b": [r[1] for r in rows], "score": [r[2] for r in rows],
                         "label": [r[3] for r in rows], "partial": [r[4] for r in rows],
                         "explanation": [json.dumps({"band": r[3], "visual": {"coverage_a": r[5], "coverage_b": r[6]},
                                                     "evidence": {"hash_hit": 0.0, "spread": 0.4}}) for r in rows]})


def test_a_partial_match_the_graph_contradicts_is_held_back():
    """e matches a stretch of y, a whole copy of s; but e against s says "different" (and against
    z only "similar", which counts neither way): e's match with y is the odd one out."""
    cfg = AstradupConfig()
    rows = [("s", "y", 0.97, "exact", False, 1.0, 1.0), ("s", "z", 0.95, "near", False, 1.0, 1.0),
            ("y", "z", 0.95, "near", False, 1.0, 1.0),
            ("e", "y", 0.93, "near", True, 0.3, 0.3), ("e", "s", 0.6, "different", False, 0.2, 0.2),
            ("e", "z", 0.8, "similar", False, 0.3, 0.3),
            # c is a clip of s: its own match against y is backed by s and z
            ("c", "y", 0.9, "near", True, 1.0, 0.4), ("c", "s", 0.92, "near", True, 1.0, 0.4),
            ("c", "z", 0.91, "near", True, 1.0, 0.4)]
    out = apply_graph(_ptable(rows), cfg).set_index(["a", "b"])
    ey = out.loc[("e", "y")]
    assert ey["label"] == "similar" and not ey["partial"]
    assert cfg.fusion.similar <= ey["score"] < cfg.fusion.near
    assert json.loads(ey["explanation"])["inconsistent"] == {"checked": 1, "not_copies": 1, "own_score": 0.93}
    assert out.loc[("c", "y"), "label"] == "near" and "inconsistent" not in out.loc[("c", "y"), "explanation"]
    # the order of held-back pairs is kept (a squeeze, not a cap)
    two = _ptable(rows[:6] + [("s2", "y2", 0.96, "near", False, 1.0, 1.0), ("e2", "y2", 0.88, "near", True, 0.3, 0.3),
                              ("e2", "s2", 0.5, "different", False, 0.2, 0.2)])
    got = apply_graph(two, cfg).set_index(["a", "b"])
    assert (got.loc[[("e", "y"), ("e2", "y2")], "label"] == "similar").all()
    assert got.loc[("e", "y"), "score"] > got.loc[("e2", "y2"), "score"]
    assert (apply_graph(_ptable(rows), cfg.replace(**{"match.expand_top": 0}))["label"] == [r[3] for r in rows]).all()


def test_graph_notes_of_an_earlier_match_are_judged_again():
    cfg = AstradupConfig()
    df = _ptable([("s", "x", 0.97, "exact", False, 1.0, 1.0), ("s", "y", 0.9, "near", False, 1.0, 1.0),
                  ("x", "y", 0.8, "similar", False, 1.0, 1.0)])
    once = apply_graph(df, cfg)
    assert once["label"].tolist() == ["exact", "near", "near"]
    # matched again, x no longer a copy of s: the promotion goes with the link
    again = once.copy()
    again.loc[0, ["label", "score"]] = ["different", 0.3]
    again.loc[2, ["label", "score"]] = ["similar", 0.8]  # the pair's own verdict, as rescoring gives it
    out = apply_graph(again, cfg)
    assert out.loc[2, "label"] == "similar" and "transitive" not in out.loc[2, "explanation"]


def test_verdicts_under_the_threshold_travel_as_stubs(media_dir, tmp_path):
    """The pair graph weighs pairs the match does not write: under ``match.min_score`` a
    ``different`` row keeps its verdict (ids, score, label) and drops its explanation."""
    from astradup.execution import stages

    store = tmp_path / "s.duckdb"
    run_index(media_dir, store, eager=True, progress=False)
    cfg = AstradupConfig()
    with Store(store, read_only=True) as st:
        feats = st.load_features()
    ids = sorted(feats)
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]  # every pair: some are different
    full = stages.score_chunk(pairs, feats, cfg, 0.0)
    cut = max(r["score"] for r in full if r["label"] == "different") + 1e-9
    kept = stages.score_chunk(pairs, feats, cfg, cut, stubs=True)
    dropped = stages.score_chunk(pairs, feats, cfg, cut)
    assert len(kept) == len(full) > len(dropped)
    for whole, row in zip(full, kept):
        assert (row["a_id"], row["b_id"], row["score"], row["label"]) == (whole["a_id"], whole["b_id"], whole["score"], whole["label"])
        if row["score"] < cut and row["label"] == "different":
            assert row["explanation"] == "" and row["partial"] is False
        else:
            assert row == whole


def test_a_partial_link_the_exact_moment_check_confirms_promotes_like_one_the_hashes_confirm():
    """A quote of fast footage: hashes at chance along the path, but the exact-moment check found
    its frames at their moments. Its link promotes, unless the match pins no moment (a still) or
    the check is off."""
    def table(exact: dict) -> pd.DataFrame:
        rows = [("1", "2", 0.97, "exact", False, {"hash_hit": 1.0, "spread": 0.4}),
                ("1", "5", 0.92, "near", True, {"hash_hit": 0.1, "spread": 0.4, **exact}),
                ("2", "5", 0.8, "similar", False, {"hash_hit": 0.0, "spread": 0.4})]
        return pd.DataFrame({"a": [r[0] for r in rows], "b": [r[1] for r in rows], "score": [r[2] for r in rows],
                             "label": [r[3] for r in rows], "partial": [r[4] for r in rows],
                             "explanation": [json.dumps({"band": r[3], "visual": {"coverage_a": 1.0, "coverage_b": 1.0},
                                                         "evidence": r[5]}) for r in rows]})

    moment = {"exact_bits": 4.0, "exact_moves": 60.0, "exact_pin": 20.0}
    label = lambda df, cfg: promote_by_hubs(df, cfg).set_index(["a", "b"])["label"].loc[("2", "5")]  # noqa: E731
    assert label(table(moment), AstradupConfig()) == "near"
    assert label(table({**moment, "exact_pin": 0.0}), AstradupConfig()) == "similar"
    assert label(table({}), AstradupConfig()) == "similar"
    assert label(table(moment), AstradupConfig().replace(**{"match.exact_check": False})) == "similar"
