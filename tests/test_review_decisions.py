"""Decisions (append-only, fingerprinted) and the review queue, on a real indexed and matched store."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from astradup.config import AstradupConfig
from astradup.errors import AstradupError, ReviewError
from astradup.execution import run_index, run_match
from astradup.review import DECISIONS, decisions, record_decision, review_queue
from astradup.review.queue import MIN_UNCERTAINTY, UNCERTAINTY_WIDTH
from astradup.store import Store

# hash-only features (no CNN): review logic does not depend on the embedder, and this keeps it quick
CFG = AstradupConfig().replace(**{"features.embedding": ""})


@pytest.fixture(scope="module")
def matched(media_dir, tmp_path_factory):
    """A private copy of the tiny corpus, indexed and matched (min_score 0: every candidate)."""
    d = tmp_path_factory.mktemp("review")
    corpus = d / "media"
    shutil.copytree(media_dir, corpus)
    store = d / "s.duckdb"
    run_index(corpus, store, CFG, eager=True, progress=False)
    run_match(store, CFG, min_score=0.0, progress=False)
    return corpus, store


@pytest.fixture
def store_copy(matched, tmp_path):
    corpus, store = matched
    dst = tmp_path / "s.duckdb"
    shutil.copy(store, dst)
    return corpus, dst


def test_record_decision_by_relative_and_absolute_path(store_copy):
    corpus, store = store_copy
    with Store(store) as st:
        row = record_decision(st, "src.mp4", str(corpus / "reencode.mkv"), "duplicate", reviewer="ann", note="same")
        assert (row["a"], row["b"], row["decision"], row["reviewer"]) == ("reencode.mkv", "src.mp4", "duplicate", "ann")
        assert row["a_size"] == os.path.getsize(corpus / "reencode.mkv") and len(row["a_hash"]) == 32
        assert row["label"] in ("exact", "near", "similar", "different") and 0 <= row["score"] <= 1
        d = decisions(st)
    assert d[["a", "b", "decision", "reviewer", "note"]].values.tolist() == [["reencode.mkv", "src.mp4", "duplicate", "ann", "same"]]
    assert bool(d["standing"].iloc[0]) and pd.notna(d["time"].iloc[0])


def test_bad_input_names_the_path_or_value(store_copy):
    _, store = store_copy
    with Store(store) as st:
        with pytest.raises(ReviewError, match="nope.mp4: not an indexed video"):
            record_decision(st, "src.mp4", "nope.mp4", "duplicate")
        with pytest.raises(ReviewError, match="'dupe' is unknown.*not-duplicate"):
            record_decision(st, "src.mp4", "clip.mp4", "dupe")
        with pytest.raises(ReviewError, match="two different videos"):
            record_decision(st, "src.mp4", "./src.mp4", "skip")
        assert isinstance(ReviewError("x"), AstradupError)
        assert decisions(st).empty


def test_decisions_are_append_only_and_the_latest_stands(store_copy):
    _, store = store_copy
    with Store(store) as st:
        record_decision(st, "src.mp4", "other.mp4", "duplicate", reviewer="ann")
        record_decision(st, "other.mp4", "src.mp4", "not-duplicate", reviewer="bob")
        record_decision(st, "src.mp4", "clip.mp4", "not-duplicate", reviewer="bob")
        record_decision(st, "src.mp4", "clip.mp4", "skip", reviewer="cy")
        every = decisions(st, latest=False)
        latest = decisions(st)
    assert every["decision"].tolist() == ["duplicate", "not-duplicate", "not-duplicate", "skip"]
    assert every["standing"].tolist() == [False, True, False, False]
    assert sorted(zip(latest["a"], latest["decision"], latest["standing"])) == [
        ("clip.mp4", "skip", False), ("other.mp4", "not-duplicate", True)]
    assert set(DECISIONS) == {"duplicate", "not-duplicate", "skip"}


def test_queue_orders_by_uncertainty_times_bytes_and_drops_decided_pairs(store_copy):
    corpus, store = store_copy
    with Store(store) as st:
        q = review_queue(st)
        pairs = st.pairs()
        near = 0.85
        assert len(q) == len(pairs) >= 3
        # oracle: recompute value by hand from the pairs and the file sizes
        size = {p.name: p.stat().st_size for p in corpus.iterdir()}
        for r in q.itertuples():
            u = min(1.0, max(MIN_UNCERTAINTY, 1 - abs(r.score - near) / UNCERTAINTY_WIDTH))
            assert r.value == pytest.approx(u * min(size[r.a], size[r.b]))
        assert list(q["value"]) == sorted(q["value"], reverse=True)
        top = q.iloc[0]
        record_decision(st, top["a"], top["b"], "not-duplicate")
        second = q.iloc[1]
        record_decision(st, second["a"], second["b"], "skip")
        q2 = review_queue(st)
        assert len(q2) == len(q) - 1
        assert not ((q2["a"] == top["a"]) & (q2["b"] == top["b"])).any()
        assert (q2.iloc[-1]["a"], q2.iloc[-1]["b"], bool(q2.iloc[-1]["skipped"])) == (second["a"], second["b"], True)
        assert len(review_queue(st, limit=2)) == 2
    cols = {"a", "b", "score", "label", "visual", "audio", "metadata", "a_start", "a_end", "b_start", "b_end",
            "partial", "explanation", "value"}
    assert cols <= set(q.columns)


def test_not_duplicate_survives_a_rematch_and_lapses_when_a_file_changes(matched, tmp_path):
    src_corpus, _ = matched
    corpus = tmp_path / "media"
    shutil.copytree(src_corpus, corpus)
    store = tmp_path / "s.duckdb"
    run_index(corpus, store, CFG, eager=True, progress=False)
    first = run_match(store, CFG, progress=False)
    dup = first[first["label"].isin(["exact", "near"])]
    assert len(dup) and (first["decision"] == "").all()
    a, b = dup.iloc[0]["a"], dup.iloc[0]["b"]
    with Store(store) as st:
        record_decision(st, a, b, "not-duplicate", reviewer="ann")
    again = run_match(store, CFG, progress=False)
    row = again[(again["a"] == a) & (again["b"] == b)].iloc[0]
    assert row["decision"] == "not-duplicate" and row["label"] in ("exact", "near")
    assert (again.drop(index=row.name)["decision"] == "").all()
    with Store(store) as st:
        assert not ((review_queue(st)["a"] == a) & (review_queue(st)["b"] == b)).any()
    # change one file (same content, new mtime): the decision no longer stands
    t = time.time() + 5
    os.utime(corpus / a, (t, t))
    run_index(corpus, store, CFG, eager=True, progress=False)
    third = run_match(store, CFG, progress=False)
    assert third[(third["a"] == a) & (third["b"] == b)]["decision"].tolist() == [""]
    with Store(store, read_only=True) as st:
        assert not bool(decisions(st)["standing"].iloc[0])
        assert np.isin([a], review_queue(st)["a"]).any()
