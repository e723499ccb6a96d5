"""Evaluation metrics on examples small enough to check by hand, plus a brute-force oracle."""

from __future__ import annotations

import itertools
import json
import logging
import math
import time

import numpy as np
import pandas as pd
import pytest

from astradup.evaluation import (
    TableError,
    average_precision,
    evaluate,
    load_pairs,
    load_truth,
    precision_recall_curve,
    recall_at_precision,
)
from astradup.evaluation.metrics import interval_iou

VIDEOS = ["v1", "v2", "v3", "v4", "v5"]


@pytest.fixture
def truth() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": ["v1", "v1", "v4", "v3"],
            "b": ["v2", "v3", "v2", "v5"],
            "relation": ["exact", "near", "partial", "similar"],
            "transform": ["reencode", "crop", "crop", ""],
            # (v4, v2) is listed the other way round: its segment sides must swap with it
            "a_start": [0.0, 0.0, 10.0, np.nan],
            "a_end": [30.0, 30.0, 20.0, np.nan],
            "b_start": [0.0, 0.0, 0.0, np.nan],
            "b_end": [30.0, 30.0, 10.0, np.nan],
        }
    )


@pytest.fixture
def pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": ["v2", "v1", "v4", "v3", "v4", "v1"],
            "b": ["v1", "v3", "v2", "v5", "v5", "v2"],
            "score": [0.97, 0.80, 0.90, 0.88, 0.50, 0.40],
            "label": ["exact", "similar", "near", "near", "different", "different"],
            "visual": [0.97, 0.8, 0.9, 0.88, 0.5, 0.4],
            "a_start": [np.nan, np.nan, 10.0, np.nan, np.nan, np.nan],
            "a_end": [np.nan, np.nan, 20.0, np.nan, np.nan, np.nan],
            "b_start": [np.nan, np.nan, 0.0, np.nan, np.nan, np.nan],
            "b_end": [np.nan, np.nan, 5.0, np.nan, np.nan, np.nan],
        }
    )


def test_hand_computed_metrics(truth, pairs):
    r = evaluate(truth, pairs, videos=VIDEOS)
    m = r.metrics
    # 5 videos -> 10 pairs; positives (v1,v2) exact, (v1,v3) near, (v2,v4) partial
    assert (m["n_videos"], m["n_pairs_total"], m["n_positive"], m["n_negative"]) == (5, 10, 3, 7)
    # predicted duplicates: (v1,v2) TP, (v2,v4) TP, (v3,v5) FP (truth similar)
    assert m["n_pred_duplicate"] == 3
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 7)
    assert m["fp_per_1000"] == pytest.approx(200.0)
    # ranking 0.97 P, 0.90 P, 0.88 N, 0.80 P, 0.50 N ((v1,v2) at 0.40 is a duplicate row: max wins)
    assert m["micro_ap"] == pytest.approx((1 + 1 + 3 / 4) / 3)
    assert m["recall_at_p99"] == pytest.approx(2 / 3)
    assert m["partial_recall"] == 1.0
    # recalled with truth segments: (v1,v2) has no reported segment -> 0; (v2,v4): v2 [0,10] vs
    # [0,5] -> 0.5, v4 [10,20] vs [10,20] -> 1 -> 0.75. (v1,v3) is not recalled.
    assert m["mean_tiou"] == pytest.approx((0.0 + 0.75) / 2)


def test_confusion_matrix_by_hand(truth, pairs):
    c = evaluate(truth, pairs, videos=VIDEOS).confusion
    assert list(c.index) == list(c.columns) == ["exact", "near", "similar", "different"]
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 0] = 1  # (v1,v2) exact -> exact
    expected[1, 2] = 1  # (v1,v3) near -> similar
    expected[1, 1] = 1  # (v2,v4) partial counts as near -> near
    expected[2, 1] = 1  # (v3,v5) similar -> near
    expected[3, 3] = 1 + 5  # (v4,v5) listed, plus the 5 pairs neither table names
    np.testing.assert_array_equal(c.to_numpy(), expected)
    assert c.to_numpy().sum() == 10


def test_per_transform_recall(truth, pairs):
    pt = evaluate(truth, pairs, videos=VIDEOS).per_transform
    assert pt.to_dict("records") == [
        {"transform": "crop", "relation": "near", "n": 1, "recalled": 0, "recall": 0.0},
        {"transform": "crop", "relation": "partial", "n": 1, "recalled": 1, "recall": 1.0},
        {"transform": "reencode", "relation": "exact", "n": 1, "recalled": 1, "recall": 1.0},
    ]


def test_joined_is_normalised(truth, pairs):
    j = evaluate(truth, pairs, videos=VIDEOS).joined
    assert (j["a"] < j["b"]).all()
    assert len(j) == 5 and not j.duplicated(["a", "b"]).any()
    row = j[(j["a"] == "v2") & (j["b"] == "v4")].iloc[0]
    assert (row["true_a_start"], row["true_a_end"], row["true_b_start"], row["true_b_end"]) == (0, 10, 10, 20)
    assert (row["pred_a_start"], row["pred_a_end"], row["pred_b_start"], row["pred_b_end"]) == (0, 5, 10, 20)
    assert row["relation"] == "partial" and row["truth_class"] == "near" and row["tiou"] == 0.75
    unlisted = j[(j["a"] == "v4") & (j["b"] == "v5")].iloc[0]
    assert unlisted["relation"] == "different" and not unlisted["in_truth"]
    top = j[(j["a"] == "v1") & (j["b"] == "v2")].iloc[0]
    assert top["score"] == 0.97 and top["label"] == "exact"


def test_missing_truth_pair_is_predicted_different(truth, pairs):
    r = evaluate(truth, pairs[pairs["b"] != "v3"], videos=VIDEOS)
    row = r.joined[(r.joined["a"] == "v1") & (r.joined["b"] == "v3")].iloc[0]
    assert row["label"] == "different" and math.isnan(row["score"]) and not row["in_pairs"]
    assert r.confusion.loc["near", "different"] == 1
    # the unranked positive still counts in the denominator: 0.97 P, 0.90 P, 0.88 N, 0.50 N
    assert r.metrics["micro_ap"] == pytest.approx(2 / 3)


def test_ties_rank_negatives_first():
    assert average_precision(np.array([0.9, 0.9]), np.array([True, False]), 1) == 0.5
    assert average_precision(np.array([0.9, 0.9]), np.array([False, True]), 1) == 0.5
    t, p, r = precision_recall_curve(np.array([0.9, 0.9, 0.5]), np.array([True, False, True]), 2)
    np.testing.assert_allclose(t, [0.9, 0.5])
    np.testing.assert_allclose(p, [0.5, 2 / 3])
    np.testing.assert_allclose(r, [0.5, 1.0])


def test_positive_never_predicted_costs_recall():
    assert average_precision(np.array([0.8]), np.array([True]), 2) == 0.5
    assert recall_at_precision(np.array([0.8, 0.7]), np.array([True, False]), 2, 0.99) == 0.5
    assert recall_at_precision(np.array([0.8]), np.array([False]), 2, 0.99) == 0.0
    assert average_precision(np.array([0.8]), np.array([False]), 0) == 0.0


def test_interval_iou():
    got = interval_iou(np.array([0, 0, 0, 0, np.nan]), np.array([10, 10, 10, 0, 1]),
                       np.array([5, 10, 20, 0, 0]), np.array([15, 20, 30, 0, 1]))
    np.testing.assert_allclose(got[:4], [5 / 15, 0, 0, 0])
    assert math.isnan(got[4])


def test_video_count_sources(tmp_path, truth, pairs, caplog):
    # from truth.attrs via videos.csv beside ground_truth.csv
    truth.to_csv(tmp_path / "ground_truth.csv", index=False)
    pd.DataFrame({"path": [*VIDEOS, "v6"], "source": ["", "v1", "v1", "v1", "", ""]}).to_csv(
        tmp_path / "videos.csv", index=False)
    loaded = load_truth(tmp_path / "ground_truth.csv")
    assert loaded.attrs["videos"] == [*VIDEOS, "v6"]
    assert loaded.attrs["video_groups"] == {"v2": "v1", "v3": "v1", "v4": "v1"}
    assert evaluate(loaded, pairs).metrics["n_videos"] == 6
    # nothing given: the union of named paths, with a warning
    with caplog.at_level(logging.WARNING):
        assert evaluate(truth, pairs).metrics["n_videos"] == 5
    assert "no video list" in caplog.text
    # paths outside the list are counted too
    assert evaluate(truth, pairs, videos=["v1", "v2", "v9"]).metrics["n_videos"] == 6


def test_load_pairs_csv_and_json_segments(tmp_path, pairs):
    p = pairs.drop(columns=["a_start", "a_end", "b_start", "b_end"])
    p["segments"] = ["", "[]", "[[10, 15, 0, 5], [15, 20, 4, 5]]", "", "", ""]
    p.to_csv(tmp_path / "pairs.csv", index=False)
    loaded = load_pairs(tmp_path / "pairs.csv")
    assert loaded.loc[2, ["a_start", "a_end", "b_start", "b_end"]].tolist() == [10, 20, 0, 5]
    assert loaded.loc[:1, "a_start"].isna().all()


def test_bad_tables_raise_table_error(truth, pairs, tmp_path):
    with pytest.raises(TableError, match="relation.*'dup'"):
        evaluate(truth.assign(relation=["exact", "dup", "near", "near"]), pairs)
    with pytest.raises(TableError, match=r"missing column\(s\) \['label'\]"):
        evaluate(truth, pairs.drop(columns=["label"]))
    with pytest.raises(TableError, match="no score"):
        evaluate(truth, pairs.assign(score=np.nan))
    with pytest.raises(TableError, match="does not exist"):
        load_truth(tmp_path / "nope.csv")


def test_to_dict_is_strict_json(truth, pairs, tmp_path):
    r = evaluate(truth, pairs.assign(a_start=np.nan), videos=VIDEOS)
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["metrics"]["f1"] == pytest.approx(2 / 3)
    assert d["confusion"]["different"]["different"] == 6
    r.to_json(tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["n_videos"] == 5
    table = r.table()
    assert "micro_ap" in table and "0.9167" in table and "Confusion" in table and "partial" in table


def test_nan_metrics_when_nothing_to_average():
    t = pd.DataFrame({"a": ["x"], "b": ["y"], "relation": ["near"]})
    p = pd.DataFrame({"a": ["x"], "b": ["y"], "score": [0.9], "label": ["near"]})
    m = evaluate(t, p, videos=["x", "y"]).metrics
    assert math.isnan(m["partial_recall"]) and math.isnan(m["mean_tiou"])
    assert m["fpr"] == 0.0 and m["n_negative"] == 0
    assert evaluate(t, p, videos=["x", "y"]).to_dict()["metrics"]["mean_tiou"] is None


def _brute_force(truth: pd.DataFrame, pairs: pd.DataFrame, videos: list[str]) -> dict:
    """The definitions, written out over every unordered pair of the corpus."""
    rel = {tuple(sorted((a, b))): r for a, b, r in zip(truth.a, truth.b, truth.relation, strict=True)}
    best: dict = {}
    for a, b, s, lab in zip(pairs.a, pairs.b, pairs.score, pairs.label, strict=True):
        k = tuple(sorted((a, b)))
        if k not in best or s > best[k][0]:
            best[k] = (s, lab)
    cls = {"exact": 0, "near": 1, "partial": 1, "similar": 2, "different": 3}
    lab_i = {"exact": 0, "near": 1, "similar": 2, "different": 3}
    conf = np.zeros((4, 4), dtype=int)
    tp = fp = n_pos = 0
    for k in itertools.combinations(sorted(videos), 2):
        r = rel.get(k, "different")
        lab = best.get(k, (None, "different"))[1]
        conf[cls[r], lab_i[lab]] += 1
        pos, dup = r in ("exact", "near", "partial"), lab in ("exact", "near")
        n_pos += pos
        tp += pos and dup
        fp += (not pos) and dup
    ranked = sorted(((s, rel.get(k, "different") in ("exact", "near", "partial")) for k, (s, _) in best.items()),
                    key=lambda x: (-x[0], x[1]))
    hits, ap = 0, 0.0
    for i, (_, pos) in enumerate(ranked, 1):
        if pos:
            hits += 1
            ap += hits / i
    return {"confusion": conf, "tp": tp, "fp": fp, "n_pos": n_pos, "ap": ap / n_pos if n_pos else 0.0}


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    videos = [f"clip{i}.mp4" for i in range(12)]
    all_pairs = list(itertools.combinations(videos, 2))
    idx = rng.choice(len(all_pairs), 20, replace=False)
    truth = pd.DataFrame([all_pairs[i][::-1] if rng.random() < 0.5 else all_pairs[i] for i in idx], columns=["a", "b"])
    truth["relation"] = rng.choice(["exact", "near", "partial", "similar", "different"], len(truth))
    idx = rng.choice(len(all_pairs), 30, replace=True)  # repeats: duplicates keep the max score
    pairs = pd.DataFrame([all_pairs[i] for i in idx], columns=["a", "b"])
    pairs["score"] = rng.choice([0.3, 0.5, 0.7, 0.9, 0.95], len(pairs))  # many ties
    pairs["label"] = rng.choice(["exact", "near", "similar", "different"], len(pairs))
    # a duplicated pair keeps the whole row of its highest score; make labels agree with that
    pairs = pairs.sort_values("score", ascending=False, kind="stable")
    pairs["label"] = pairs.groupby(pairs[["a", "b"]].apply(lambda r: tuple(sorted(r)), axis=1))["label"].transform("first")
    r = evaluate(truth, pairs, videos=videos)
    bf = _brute_force(truth, pairs, videos)
    np.testing.assert_array_equal(r.confusion.to_numpy(), bf["confusion"])
    assert r.metrics["n_positive"] == bf["n_pos"]
    assert r.metrics["micro_ap"] == pytest.approx(bf["ap"])
    assert r.metrics["precision"] == pytest.approx(bf["tp"] / (bf["tp"] + bf["fp"]) if bf["tp"] + bf["fp"] else 0.0)
    assert r.metrics["fpr"] == pytest.approx(bf["fp"] / (66 - bf["n_pos"]))


@pytest.mark.slow
def test_million_rows_is_vectorised():
    rng = np.random.default_rng(0)
    names = np.array([f"videos/clip_{i:06d}.mp4" for i in range(50_000)], dtype=object)
    n = 1_000_000
    a, b = rng.integers(0, len(names), n), rng.integers(0, len(names), n)
    pos = rng.random(n) < 0.05
    score = rng.random(n)
    pairs = pd.DataFrame({"a": names[a], "b": names[b], "score": score,
                          "label": np.where(score > 0.85, "near", "different")})
    truth = pd.DataFrame({"a": names[b[pos]], "b": names[a[pos]], "relation": "near"})
    start = time.perf_counter()
    r = evaluate(truth, pairs, videos=list(names))
    # about 3 s on a 2-core CI box; a Python loop over rows would take minutes
    assert time.perf_counter() - start < 60
    assert r.confusion.to_numpy().sum() == r.metrics["n_pairs_total"]


def test_warns_when_truth_and_pairs_share_no_path(truth, pairs, caplog):
    with caplog.at_level(logging.WARNING):
        evaluate(truth, pairs.assign(a="/abs/" + pairs["a"], b="/abs/" + pairs["b"]))
    assert "no video in common" in caplog.text
