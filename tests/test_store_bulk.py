"""Store.write_videos: the bulk write path writes what one write_video call per video writes,
reads back unchanged, and writes nothing of a call that fails."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from astradup.errors import StoreError
from astradup.features.audio import AudioFeatures
from astradup.features.video import VideoFeatures
from astradup.store import Store, VideoRecord
from astradup.store.rows import EMBEDDING_DECIMALS, stored_embedding

FEATURE_TABLES = ("videos", "frames", "descriptors", "audio", "failures")


def _video(rng: np.random.Generator, name: str, n: int, *, emb: bool = True, audio: bool = True,
           quality: bool = True) -> VideoFeatures:
    dim = 8
    return VideoFeatures(
        path=f"/media/{name}", timestamps=np.arange(n) * 0.5 + 0.25,
        info={"duration": n * 0.5, "avg_fps": 25.0, "width": 64, "height": 48, "rotation": 90,
              "variable_fps": bool(n % 2), "video_codec": "h264", "has_audio": audio, "frame_count": 12 * n},
        phash=rng.integers(0, 256, (n, 32), dtype=np.uint8), phash_flip=rng.integers(0, 256, (n, 32), dtype=np.uint8),
        embeddings=rng.standard_normal((n, dim)).astype(np.float32) if emb else None,
        quality=rng.random(n).astype(np.float32) if quality else None,
        descriptor=rng.standard_normal(dim).astype(np.float32) if emb else None,
        audio=AudioFeatures("ok", rng.integers(0, 2**32, 3 * n + 1, dtype=np.uint64).astype(np.uint32),
                            rng.standard_normal(13).astype(np.float32), rng.random(13).astype(np.float32),
                            float(rng.random())) if audio else None,
        decoder="pyav", timings={"decode": float(rng.random())},
        content_box=(0.125, 0.875, 0.0, 1.0) if n % 2 else None,
        # a box that cuts part of the frame keeps the whole frame's hashes too
        phash_full=rng.integers(0, 256, (n, 32), dtype=np.uint8) if n % 2 else None,
        phash_full_flip=rng.integers(0, 256, (n, 32), dtype=np.uint8) if n % 2 else None)


def _records(seed: int = 0, all_embedded: bool = False) -> list[VideoRecord]:
    """Videos of every shape the store holds, explicit and automatic ids, and one path twice
    (``all_embedded``: every video with frames has embeddings, as in a store :meth:`Store.load_features`
    reads, whose videos share one feature config)."""
    rng = np.random.default_rng(seed)
    shapes = [("a.mp4", 5, {}), ("b.mp4", 3, {} if all_embedded else {"emb": False}), ("c.mp4", 4, {"audio": False}),
              ("d.mp4", 1, {"quality": False}), ("e.mp4", 0, {"emb": False, "audio": False}),
              ("f.mp4", 7, {}), ("a.mp4", 6, {})]
    out = []
    for i, (name, n, kw) in enumerate(shapes):
        vf = _video(rng, name, n, **kw)
        out.append(VideoRecord(vf, rel_path=name, size=1000 + i, mtime=1.5 * i, content_hash=f"h{i}",
                               feature_key="k", run_id="r", video_id=None if i % 2 else 20 + i))
    return out


def _seed_store(st: Store) -> None:
    """A store that already holds one of the paths (replaced, keeping its id) and a failure."""
    old = _video(np.random.default_rng(99), "c.mp4", 2)
    st.write_video(old, rel_path="c.mp4", size=1, mtime=0.0, content_hash="old", feature_key="k", run_id="r0")
    st.record_failure("r0", "/media/f.mp4", "decode", "MediaError", "broken")
    st.record_failure("r0", "/media/z.mp4", "decode", "MediaError", "broken")


def _differences(a: str, b: str) -> dict[str, int]:
    """Rows of each feature table that one store has and the other lacks (indexed_at aside)."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    out = {}
    for t in FEATURE_TABLES:
        cols = {"videos": "* EXCLUDE (indexed_at)", "failures": "* EXCLUDE (time)"}.get(t, "*")  # write times
        n = con.execute(f"SELECT (SELECT count(*) FROM (SELECT {cols} FROM a.{t} EXCEPT ALL SELECT {cols} FROM b.{t})) "
                        f"+ (SELECT count(*) FROM (SELECT {cols} FROM b.{t} EXCEPT ALL SELECT {cols} FROM a.{t}))").fetchone()
        out[t] = int(n[0])
    con.close()
    return out


def _counts(path) -> dict[str, int]:
    with Store(path, read_only=True) as st:
        return {t: int(st.sql(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in FEATURE_TABLES}


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_bulk_write_equals_one_write_video_per_video(tmp_path, chunk):
    items = _records()
    single, bulk = tmp_path / "single.duckdb", tmp_path / "bulk.duckdb"
    with Store(single) as st:
        _seed_store(st)
        ids_single = [st.write_video(it.features, rel_path=it.rel_path, size=it.size, mtime=it.mtime,
                                     content_hash=it.content_hash, feature_key=it.feature_key, run_id=it.run_id,
                                     video_id=it.video_id) for it in items]
    with Store(bulk) as st:
        _seed_store(st)
        ids_bulk = [v for lo in range(0, len(items), chunk) for v in st.write_videos(items[lo:lo + chunk])]
    assert ids_bulk == ids_single
    assert ids_single[0] == ids_single[-1]  # a.mp4 twice: one id, the later features
    assert ids_single[2] == 1  # c.mp4 was in the store under id 1 and keeps it
    counts = _counts(bulk)
    assert counts == {"videos": 6, "frames": 6 + 3 + 4 + 1 + 0 + 7, "descriptors": 4, "audio": 4, "failures": 1}
    assert _differences(str(single), str(bulk)) == dict.fromkeys(FEATURE_TABLES, 0)


def test_bulk_write_round_trips_through_load_features(tmp_path):
    items = _records(seed=3, all_embedded=True)
    with Store(tmp_path / "s.duckdb") as st:
        ids = st.write_videos(items)
        back = st.load_features()
    latest = {it.features.path: (vid, it.features) for vid, it in zip(ids, items)}  # a.mp4: the later one
    assert sorted(back) == sorted(v for v, _ in latest.values())
    for vid, vf in latest.values():
        got = back[vid]
        assert got.path == vf.path and got.decoder == vf.decoder
        assert np.array_equal(got.timestamps, vf.timestamps)
        assert np.array_equal(got.phash, vf.phash) and np.array_equal(got.phash_flip, vf.phash_flip)
        want_q = np.full(vf.n_frames, np.nan, np.float32) if vf.quality is None else vf.quality
        assert np.array_equal(got.quality, want_q, equal_nan=True)
        if vf.embeddings is None or not vf.n_frames:
            assert got.embeddings is None or not len(got.embeddings)
        else:
            # kept to EMBEDDING_DECIMALS decimals: exactly the rounded values come back
            assert np.array_equal(got.embeddings, stored_embedding(vf.embeddings))
            assert np.abs(got.embeddings - vf.embeddings).max() <= 0.5 * 10.0 ** -EMBEDDING_DECIMALS + 1e-7
        if vf.descriptor is None:
            assert got.descriptor is None
        else:
            assert np.array_equal(got.descriptor, stored_embedding(vf.descriptor))
        if vf.audio is None:
            assert got.audio is None
        else:
            assert got.audio.status == vf.audio.status and got.audio.rms == vf.audio.rms
            assert np.array_equal(got.audio.fingerprint, vf.audio.fingerprint)
            assert np.array_equal(got.audio.mfcc_mean, vf.audio.mfcc_mean)
            assert np.array_equal(got.audio.mfcc_std, vf.audio.mfcc_std)
        for k in ("duration", "width", "height", "rotation", "video_codec", "frame_count"):
            assert got.info[k] == vf.info[k]
        assert got.content_box == vf.content_box
        for k in ("phash_full", "phash_full_flip"):
            want = getattr(vf, k)
            assert (getattr(got, k) is None) if want is None or not len(want) else np.array_equal(getattr(got, k), want)
    assert {vf.content_box is None for _, vf in latest.values()} == {True, False}
    assert {vf.phash_full is None for _, vf in latest.values()} == {True, False}


def test_a_store_indexed_before_the_content_box_was_kept_reads_none(tmp_path):
    """Schema 3 had no content_box column: opening such a store adds it, and its videos read
    back without a box (the geometric check then decides it from the frames, as before)."""
    from astradup.store.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    for version in range(1, 4):
        for ddl in MIGRATIONS[version]:
            con.execute(ddl)
    con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    con.execute("INSERT INTO videos (video_id, path, n_frames, decoder) VALUES (1, '/media/old.mp4', 0, 'pyav')")
    con.close()
    with Store(path) as st:
        assert st.schema_version() == SCHEMA_VERSION
        assert st.load_features()[1].content_box is None
        st.write_videos(_records(seed=4, all_embedded=True)[:2])
        boxes = {vf.path: vf.content_box for vf in st.load_features().values()}
    assert boxes["/media/b.mp4"] == (0.125, 0.875, 0.0, 1.0) and boxes["/media/old.mp4"] is None


def _snapshot(path) -> dict[str, list]:
    with Store(path, read_only=True) as st:
        return {t: st.sql(f"SELECT * FROM {t} ORDER BY ALL").astype(str).values.tolist() for t in FEATURE_TABLES}


def _bad_cases(items: list[VideoRecord]) -> list[tuple[str, list[VideoRecord], str]]:
    """(what, the call's items, the file the error must name)."""
    good = items[:2]
    c, f = items[2], items[5]
    short_hash = c._replace(features=_replace(c.features, phash=c.features.phash[:-1]))
    bad_width = f._replace(features=_replace(f.features, info={**f.features.info, "width": "wide"}))
    huge_rotation = f._replace(features=_replace(f.features, info={**f.features.info, "rotation": 2**40}))
    stolen_id = f._replace(video_id=1)  # id 1 is c.mp4's
    bad_box = f._replace(features=_replace(f.features, content_box=(0.0, 1.5, 0.0, 1.0)))
    return [
        ("a hash array one row short (checked before the transaction)", [*good, short_hash], "/media/c.mp4"),
        ("a value whose type does not mix with the others' (after c.mp4's old rows were deleted)",
         [*good, c, bad_width], "/media/f.mp4"),
        ("a value out of its column's range (DuckDB's cast fails inside the transaction)",
         [*good, c, huge_rotation], "/media/f.mp4"),
        ("a video_id that belongs to another path", [*good, stolen_id], "/media/f.mp4"),
        ("a content box that is not four fractions", [*good, bad_box], "/media/f.mp4"),
    ]


def _replace(vf: VideoFeatures, **changes) -> VideoFeatures:
    import dataclasses

    return dataclasses.replace(vf, **changes)


@pytest.mark.parametrize("case", range(5))
def test_failing_item_writes_nothing_of_the_call_and_names_the_file(tmp_path, case):
    path = tmp_path / "s.duckdb"
    items = _records(seed=5)
    with Store(path) as st:
        _seed_store(st)
    before = _snapshot(path)
    what, call, culprit = _bad_cases(items)[case]
    with Store(path) as st, pytest.raises(StoreError) as err:
        st.write_videos(call)
    assert culprit in str(err.value), what
    others = {it.features.path for it in call} - {culprit}
    assert not any(o in str(err.value) for o in others), f"{what}: {err.value}"
    assert _snapshot(path) == before, f"{what}: the store changed"
    with Store(path) as st:  # the connection is usable and the same items write once fixed
        st.write_videos(items)
    assert _counts(path)["videos"] == 6


def test_a_store_written_in_many_small_commits_keeps_no_free_blocks_and_compresses(tmp_path):
    """Each commit of an index run is small; DuckDB rewrote the tail of every table at each
    automatic checkpoint and kept the freed blocks, so the file ended up to ~45 % larger than its
    data. The store checkpoints rarely while it writes (once at close here), and its text (the
    pairs' explanation JSON) is zstd-compressed, its embeddings by DuckDB's ALP codec."""
    import pandas as pd

    rng = np.random.default_rng(5)
    path = tmp_path / "s.duckdb"
    with Store(path) as st:
        for i in range(40):  # ~20 MB of 1280-d embeddings in 40 transactions
            vf = _video(rng, f"v{i}.mp4", 100)
            vf.embeddings = rng.standard_normal((100, 1280)).astype(np.float32)
            vf.descriptor = rng.standard_normal(1280).astype(np.float32)
            st.write_videos([VideoRecord(vf, rel_path=f"v{i}.mp4", size=1, mtime=0.0, content_hash=f"h{i}",
                                         feature_key="k", run_id="r")])
        expl = json.dumps({"frames": [[round(float(x), 4) for x in rng.random(8)] for _ in range(20)],
                           "reason": "aligned segment"})
        pairs = pd.DataFrame({"a_id": range(2000), "b_id": range(1, 2001), "a": "a.mp4", "b": "b.mp4",
                              "score": 0.5, "label": "near", "visual": 0.5, "audio": 0.5, "metadata": 0.5,
                              "confidence": 0.5, "a_start": 0.0, "a_end": 1.0, "b_start": 0.0, "b_end": 1.0,
                              "partial": False, "explanation": expl})
        st.write_pairs("run", pairs)
    con = duckdb.connect(str(path), read_only=True)
    try:
        total, free = con.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()").fetchone()
        codecs = {c for (c,) in con.execute("SELECT DISTINCT compression FROM pragma_storage_info('pairs') "
                                            "WHERE column_name = 'explanation' AND segment_type <> 'VALIDITY'").fetchall()}
        emb_codecs = {c for (c,) in con.execute("SELECT DISTINCT compression FROM pragma_storage_info('frames') "
                                                "WHERE column_name = 'embedding' AND segment_type = 'FLOAT'").fetchall()}
        assert con.execute("SELECT count(*) FROM frames").fetchone() == (4000,)
    finally:
        con.close()
    assert free <= 0.05 * total, (free, total)
    assert codecs == {"ZSTD"}
    assert emb_codecs == {"ALP"}  # embeddings kept to 5 decimals pack as integers, not as float bits
