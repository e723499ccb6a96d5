"""The reduced frame index of large libraries (PCA-projected keyframes), forced on a tiny corpus
with ``match.reduce_above=0``: same verdicts as the full index, incremental runs with the saved
PCA, rebuilds on a changed ``index_dim`` or a damaged PCA file, and queries through the PCA."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from astradup.config import AstradupConfig, MatchConfig
from astradup.errors import ConfigError
from astradup.execution import run_index, run_match, run_query
from astradup.index import PCAReducer, VectorIndex
from astradup.index.frames import index_files
from astradup.store import Store
from tests.conftest import transcode

# 16-d: the tiny corpus samples ~35 frames, too few to fit 64 meaningful axes
REDUCED = AstradupConfig().replace(**{"match.reduce_above": 0, "match.index_dim": 16})
EMB_DIM = AstradupConfig().features.compact_dim or 1280  # what the default embedder stores
COPIES = {  # pairs of the corpus that are copies of one source, and the class the full index gives
    ("mirror.mp4", "src.mp4"), ("reencode.mkv", "src.mp4"), ("mirror.mp4", "reencode.mkv"),
    ("clip.mp4", "src.mp4"), ("clip.mp4", "mirror.mp4"), ("clip.mp4", "reencode.mkv"),
}
LOG = "astradup.index.frames"


def labels(df) -> dict[tuple[str, str], str]:
    return {(r.a, r.b): r.label for r in df.itertuples()}


def manifest(store: Path) -> dict:
    return json.loads(index_files(store)[1].read_text())


@pytest.fixture(scope="module")
def indexed(media_dir, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("reduced") / "s.duckdb"
    run_index(media_dir, store, eager=True, progress=False)
    return store


@pytest.fixture
def store(indexed, tmp_path) -> Path:
    """A private copy of the indexed store: each test keeps its own index files beside it."""
    return Path(shutil.copy(indexed, tmp_path / "s.duckdb"))


def test_match_config_validates_the_reduced_index_fields():
    m = MatchConfig()
    assert (m.reduce_above, m.index_dim, m.keyframe_sim) == (2_000_000, 64, 0.9)
    for kw, msg in (({"reduce_above": -1}, "match.reduce_above must be an integer >= 0"),
                    ({"reduce_above": 1.5}, "match.reduce_above must be an integer >= 0"),
                    ({"index_dim": 0}, "match.index_dim must be an integer >= 1, but got 0"),
                    ({"keyframe_sim": 0.0}, r"match.keyframe_sim must be a cosine in \(0, 1\], but got 0.0"),
                    ({"keyframe_sim": 1.5}, r"match.keyframe_sim must be a cosine in \(0, 1\]")):
        with pytest.raises(ConfigError, match=msg):
            MatchConfig(**kw)
    with pytest.raises(ConfigError, match="index_dim"):
        AstradupConfig.from_dict({"match": {"index_dim": -3}})


def test_iter_embeddings_streams_what_load_features_reads(indexed):
    with Store(indexed, read_only=True) as st:
        feats = st.load_features()
        batches = list(st.iter_embeddings(batch=2))
    assert [len(b.video_ids) for b in batches] == [2, 2, 1]
    ids = sorted(feats)
    assert np.concatenate([b.video_ids for b in batches]).tolist() == ids
    emb = np.concatenate([b.embeddings for b in batches])
    assert np.array_equal(emb, np.concatenate([feats[i].embeddings for i in ids]))
    assert np.concatenate([b.frame_video for b in batches]).tolist() == [i for i in ids for _ in range(feats[i].n_frames)]
    desc = np.concatenate([b.descriptors for b in batches])
    assert np.allclose(desc, np.stack([feats[i].descriptor for i in ids]))
    with Store(indexed, read_only=True) as st:
        by_frames = list(st.iter_embeddings(max_frames=2 * min(f.n_frames for f in feats.values()) - 1))
        alone = list(st.iter_embeddings(max_frames=1))  # a video over the bound is a batch alone
        two = list(st.iter_embeddings(max_frames=feats[ids[0]].n_frames + feats[ids[1]].n_frames))
    assert two[0].video_ids.tolist() == ids[:2]
    assert [len(b.video_ids) for b in by_frames] == [1] * 5 == [len(b.video_ids) for b in alone]
    assert np.array_equal(np.concatenate([b.embeddings for b in alone]), emb)


def test_chunked_verification_equals_in_memory_scoring(indexed, monkeypatch):
    from astradup.execution import stages

    cfg = AstradupConfig()
    with Store(indexed, read_only=True) as st:
        feats = st.load_features()
        cand = stages.find_candidates(feats, cfg)
        whole = stages.score_candidates(zip(cand["a"], cand["b"]), feats, cfg)
        monkeypatch.setattr(stages, "VERIFY_PAIRS", 2)
        chunked = stages.verify_streamed(st, cand.sample(frac=1.0, random_state=0), cfg, threshold=0.0)
        high = stages.verify_streamed(st, cand, cfg, threshold=0.8)
    key = lambda r: (r["a_id"], r["b_id"])  # noqa: E731
    assert len(whole) == len(cand) >= 6
    assert sorted(chunked, key=key) == sorted(whole, key=key)
    assert sorted(high, key=key) == sorted((r for r in whole if r["score"] >= 0.8), key=key) != []
    monkeypatch.setattr(stages, "VERIFY_FRAMES", 10)
    n = {1: 4, 2: 4, 3: 4, 4: 1, 5: 1, 9: 20, 10: 1}
    a, b = np.array([1, 1, 1, 1, 2, 2, 9]), np.array([2, 3, 4, 5, 3, 4, 10])
    monkeypatch.setattr(stages, "VERIFY_PAIRS", 3)
    assert list(stages.pair_chunks(a, b, n)) == [(0, 1), (1, 4), (4, 6), (6, 7)]


def test_reduced_match_finds_the_copies_the_full_index_finds(store, tmp_path):
    full_store = Path(shutil.copy(store, tmp_path / "full.duckdb"))
    full = run_match(full_store, min_score=0.0, progress=False)
    assert full.attrs["index_mode"] == "full"  # the defaults keep a small library on the full index
    assert not index_files(full_store)[2].exists()
    out = tmp_path / "pairs.csv"
    red = run_match(store, REDUCED, out=out, min_score=0.0, progress=False)
    assert red.attrs["index_mode"] == "reduced" and red.attrs["frame_index"] == "built"
    assert list(red.columns) == list(full.columns)
    lf, lr = labels(full), labels(red)
    assert lf[("mirror.mp4", "src.mp4")] in ("exact", "near") and lf[("clip.mp4", "src.mp4")] == "near"
    for pair in COPIES:
        assert lr.get(pair) == lf[pair], pair
    # verification is the same in both modes: same scores and segments for the copies
    both = full.merge(red, on=["a", "b"], suffixes=("_f", "_r"))
    both = both[[(a, b) in COPIES for a, b in zip(both.a, both.b)]]
    assert len(both) == len(COPIES)
    assert np.allclose(both.score_f, both.score_r) and np.allclose(both.a_start_f, both.a_start_r)
    assert all(lr.get(p, "different") == "different" for p in lr if "other.mp4" in p)
    # what was indexed: 16-d keyframes only, mapped back to videos by the manifest
    state = manifest(store)
    assert (state["mode"], state["dim"], state["keyframe_sim"], state["in_dim"]) == ("reduced", 16, 0.9, EMB_DIM)
    idx = VectorIndex.load(index_files(store)[0])
    with Store(store, read_only=True) as st:
        n_frames = st.embedded_frame_count()
        assert state["ids"] == st.video_ids().tolist()
    assert idx.dim == 16 and idx.ntotal == sum(state["counts"]) < n_frames
    assert all(c >= 1 for c in state["counts"])
    pca = PCAReducer.load(index_files(store)[2])
    assert (pca.in_dim, pca.out_dim) == (EMB_DIM, 16)
    assert list(json.loads(red["explanation"][0])) == list(json.loads(full["explanation"][0]))
    assert out.read_text().splitlines()[0].split(",")[:3] == ["a", "b", "score"]


@pytest.mark.slow
def test_incremental_run_extends_with_the_saved_pca(media_dir, tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for name in ("src.mp4", "mirror.mp4", "other.mp4"):
        shutil.copy(media_dir / name, corpus / name)
    store = tmp_path / "s.duckdb"
    index_path, _, pca_path = index_files(store)
    run_index(corpus, store, eager=True, progress=False)
    first = run_match(store, REDUCED, min_score=0.0, progress=False)
    assert first.attrs["frame_index"] == "built"
    saved = pca_path.read_bytes()
    assert run_match(store, REDUCED, min_score=0.0, progress=False).attrs["frame_index"] == "reused"
    n_before = VectorIndex.load(index_path).ntotal
    shutil.copy(media_dir / "clip.mp4", corpus / "clip.mp4")
    run_index(corpus, store, eager=True, progress=False)
    extended = run_match(store, REDUCED, min_score=0.0, progress=False)
    assert extended.attrs["frame_index"] == "extended"
    assert pca_path.read_bytes() == saved  # the new video was projected with the saved PCA
    state = manifest(store)
    assert len(state["ids"]) == 4 and VectorIndex.load(index_path).ntotal == n_before + state["counts"][-1]
    assert labels(extended)[("clip.mp4", "src.mp4")] == "near"
    # from scratch: the PCA refitted on 4 videos differs, the verdicts do not
    for f in index_files(store):
        f.unlink()
    rebuilt = run_match(store, REDUCED, min_score=0.0, progress=False)
    assert rebuilt.attrs["frame_index"] == "built" and pca_path.read_bytes() != saved
    assert labels(rebuilt) == labels(extended)


def test_changing_index_dim_rebuilds_with_a_warning(store, caplog):
    first = run_match(store, REDUCED, min_score=0.0, progress=False)
    other = REDUCED.replace(**{"match.index_dim": 8})
    with caplog.at_level(logging.WARNING, logger=LOG):
        again = run_match(store, other, min_score=0.0, progress=False)
    assert again.attrs["frame_index"] == "built"
    assert any("index_dim=16" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert manifest(store)["dim"] == 8 and PCAReducer.load(index_files(store)[2]).out_dim == 8
    assert VectorIndex.load(index_files(store)[0]).dim == 8
    assert all(labels(again).get(p) == labels(first)[p] for p in COPIES)
    # back on the default config the library is small: the full index replaces the reduced one
    with caplog.at_level(logging.WARNING, logger=LOG):
        full = run_match(store, min_score=0.0, progress=False)
    assert full.attrs["index_mode"] == "full" and full.attrs["frame_index"] == "built"
    assert manifest(store)["mode"] == "full" and manifest(store)["dim"] == EMB_DIM
    assert VectorIndex.saved_without_vectors(index_files(store)[0])  # the store holds the full index's vectors


def test_reindexed_video_rebuilds_the_index_with_the_saved_pca(store):
    run_match(store, REDUCED, min_score=0.0, progress=False)
    saved = index_files(store)[2].read_bytes()
    assert run_match(store, REDUCED, min_score=0.0, progress=False).attrs["frame_index"] == "reused"
    with Store(store) as st:  # what run_index leaves when a file's content changed: same id, new hash
        st.con.execute("UPDATE videos SET content_hash = 'changed' WHERE rel_path = 'other.mp4'")
    again = run_match(store, REDUCED, min_score=0.0, progress=False)
    assert again.attrs["frame_index"] == "built" and index_files(store)[2].read_bytes() == saved


@pytest.mark.parametrize("damage", ["garbage", "missing"])
def test_damaged_pca_file_rebuilds_with_a_warning(store, caplog, damage):
    first = run_match(store, REDUCED, min_score=0.0, progress=False)
    pca_path = index_files(store)[2]
    if damage == "garbage":
        pca_path.write_bytes(b"not a PCA file")
    else:
        pca_path.unlink()
    with caplog.at_level(logging.WARNING, logger=LOG):
        again = run_match(store, REDUCED, min_score=0.0, progress=False)
    assert again.attrs["frame_index"] == "built"
    assert any(str(pca_path) in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert PCAReducer.load(pca_path).out_dim == 16
    assert labels(again) == labels(first)


def test_query_projects_with_the_saved_pca(store, media_dir, tmp_path, caplog):
    copy = transcode(media_dir / "src.mp4", tmp_path / "new copy.mp4",
                     ["-vf", "crop=iw*0.85:ih*0.85,scale=96:64", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
    run_match(store, REDUCED, min_score=0.0, progress=False)
    # the saved index is reduced: the query goes through its PCA whatever the config says
    hits = run_query(copy, store, AstradupConfig())
    assert manifest(store)["mode"] == "reduced"
    assert hits["b"].iloc[0] in ("src.mp4", "reencode.mkv", "mirror.mp4")
    assert hits["label"].iloc[0] in ("exact", "near") and "other.mp4" not in set(hits["b"])
    # a damaged PCA: rebuilt (in the mode the config asks for), with a warning, then searched
    index_files(store)[2].write_bytes(b"\0" * 64)
    with caplog.at_level(logging.WARNING, logger=LOG):
        again = run_query(copy, store, REDUCED)
    assert any("PCA" in r.getMessage() or "pca" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert again["b"].iloc[0] == hits["b"].iloc[0]
    assert PCAReducer.load(index_files(store)[2]).out_dim == 16
