"""Migrating a store's full MobileNetV2 embeddings to compact ones (astradup.store.compact)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from astradup.config import AstradupConfig
from astradup.execution import run_index
from astradup.features.specs import feature_key
from astradup.store import Store
from astradup.store import compact as cs

FULL = AstradupConfig().replace(**{"features.audio": None})
SMALL = FULL.replace(**{"features.compact_dim": 96})


@pytest.fixture(scope="module")
def full_store(media_dir, tmp_path_factory):
    store = tmp_path_factory.mktemp("compact") / "full.duckdb"
    run_index(media_dir, store, FULL, eager=True, progress=False)
    return store


def _features(store):
    with Store(store, read_only=True) as st:
        v = st.videos().set_index("rel_path")
        return {p: f for p, f in zip(v.index, (st.load_features([int(i)])[int(i)] for i in v["video_id"]))}, \
            dict(zip(v.index, v["feature_key"]))


def test_a_migrated_store_holds_what_indexing_with_compact_embeddings_stores(full_store, media_dir, tmp_path):
    fresh = tmp_path / "fresh.duckdb"
    run_index(media_dir, fresh, SMALL, eager=True, progress=False)
    moved = tmp_path / "moved.duckdb"
    shutil.copy(full_store, moved)
    with Store(moved) as st:
        assert len(cs.compactable(st, SMALL)[0]) == 5
        assert cs.compact_store(st, SMALL, batch=2) == 5  # three transactions
        assert cs.compactable(st, SMALL)[0] == [] and cs.compact_store(st, SMALL) == 0
    want, want_keys = _features(fresh)
    got, got_keys = _features(moved)
    assert set(got) == set(want)
    assert set(got_keys.values()) == set(want_keys.values()) == {feature_key(SMALL)}
    for p in want:
        assert got[p].embeddings.shape == want[p].embeddings.shape == (want[p].n_frames, 96)
        # the migration projects the stored full embeddings (kept to 5 decimals), and both sides
        # keep theirs to 5 decimals: a few 1e-5 apart at most
        np.testing.assert_allclose(got[p].embeddings, want[p].embeddings, atol=3e-5)
        np.testing.assert_allclose(got[p].descriptor, want[p].descriptor, atol=3e-5)
        np.testing.assert_array_equal(got[p].phash, want[p].phash)


def test_index_migrates_instead_of_extracting_again_and_full_settings_leave_it_alone(full_store, media_dir, tmp_path):
    store = tmp_path / "lib.duckdb"
    shutil.copy(full_store, store)
    with Store(store) as st:
        assert cs.compact_store(st, FULL) == 0  # full embeddings wanted: nothing to do
    res = run_index(media_dir, store, SMALL, eager=True, progress=False)
    assert res.n_indexed == 0 and res.n_skipped == 5
    with Store(store, read_only=True) as st:
        assert st.embedding_dim() == 96


def test_a_batch_that_fails_is_rolled_back_whole_and_the_next_call_finishes(full_store, tmp_path, monkeypatch):
    store = tmp_path / "lib.duckdb"
    shutil.copy(full_store, store)
    real, calls = cs.project_video_rows, []

    def flaky(frames, dim):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(frames, dim)

    monkeypatch.setattr(cs, "project_video_rows", flaky)
    with Store(store) as st:
        with pytest.raises(RuntimeError, match="disk full"):
            cs.compact_store(st, SMALL, batch=2)
        left = cs.compactable(st, SMALL)[0]
        assert len(left) == 3  # the first batch of two went through, the failed one did not
        dims = st.sql("SELECT v.feature_key = ? AS moved, len(f.embedding) AS d FROM frames f "
                      "JOIN videos v USING (video_id) GROUP BY ALL", [feature_key(SMALL)])
        assert sorted(map(tuple, dims.to_numpy().tolist())) == [(False, 1280), (True, 96)]
        monkeypatch.setattr(cs, "project_video_rows", real)
        assert cs.compact_store(st, SMALL) == 3
        assert st.embedding_dim() == 96
