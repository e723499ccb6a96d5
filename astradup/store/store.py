"""The feature store: one embedded DuckDB file.

DuckDB sees a single writer (the driver process); every video's rows are written in one
transaction (:meth:`Store.write_videos` writes many videos in one), so a run killed at any point
leaves the store consistent and the next run resumes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from astradup.errors import StoreError
from astradup.features.audio import AudioFeatures
from astradup.features.video import VideoFeatures
from astradup.paths import to_text
from astradup.store.rows import (
    INFO_COLS,
    Rows,
    VideoRecord,
    list_array,
    now,
    video_table,
)
from astradup.store.schema import MIGRATIONS, SCHEMA_VERSION, TABLES, WRITER_SETTINGS

log = logging.getLogger(__name__)



class EmbeddingBatch(NamedTuple):
    """Frame embeddings and descriptors of a batch of videos (see :meth:`Store.iter_embeddings`).

    ``frame_video`` and ``embeddings`` hold one row per embedded frame, grouped by video id and in
    time order within a video; ``descriptor_ids`` names the rows of ``descriptors``.
    """

    video_ids: np.ndarray
    frame_video: np.ndarray
    embeddings: np.ndarray
    descriptor_ids: np.ndarray
    descriptors: np.ndarray


def _batch_bounds(counts: np.ndarray, max_items: int, max_total: int | None) -> list[tuple[int, int]]:
    """Consecutive (lo, hi) slices of at most ``max_items`` items and ``max_total`` summed counts
    (an item over ``max_total`` alone makes a slice)."""
    out = []
    lo, total = 0, 0
    for i, c in enumerate(counts.tolist()):
        if i > lo and (i - lo >= max_items or (max_total is not None and total + c > max_total)):
            out.append((lo, i))
            lo, total = i, 0
        total += c
    if lo < len(counts):
        out.append((lo, len(counts)))
    return out


def _embedding_matrix(t: Any) -> np.ndarray:
    """The ``embedding`` list column of an Arrow table of equal-length rows as an (n, d) float32 array."""
    flat = t.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(len(t), -1)


class Store:
    """A DuckDB feature store. Use as a context manager::

        with Store("corpus.duckdb") as st:
            st.videos()
    """

    def __init__(self, path: str | os.PathLike[str], read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._con: Any = None

    # -- connection ---------------------------------------------------------------------------
    def open(self) -> Store:
        import duckdb

        if self.read_only and not self.path.exists():
            raise StoreError(f"{self.path}: store does not exist (run `astradup index` first)")
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.IOException as exc:
            raise StoreError(f"{self.path}: cannot open store ({exc})") from exc
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: not a DuckDB store or damaged ({exc})") from exc
        if not self.read_only:
            for setting in WRITER_SETTINGS:  # why each: astradup.store.schema
                try:
                    self._con.execute(setting)
                except duckdb.Error as exc:  # a DuckDB without it: the store is larger, not wrong
                    log.debug("%s: %s not applied (%s)", self.path, setting, exc)
            self._migrate()
        else:
            v = self.schema_version()
            if v > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {v} is newer than this AstraDup ({SCHEMA_VERSION})")
        return self

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def con(self):
        if self._con is None:
            self.open()
        return self._con

    def schema_version(self) -> int:
        try:
            row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except Exception:  # noqa: BLE001 - no meta table yet
            return 0
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {current} is newer than this AstraDup ({SCHEMA_VERSION})")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            self.con.execute("BEGIN TRANSACTION")
            try:
                for ddl in MIGRATIONS[version]:
                    self.con.execute(ddl)
                self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)])
                self.con.execute("COMMIT")
            except Exception as exc:
                self.con.execute("ROLLBACK")
                raise StoreError(f"{self.path}: migration to schema {version} failed ({exc})") from exc

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(query, params or []).df()

    # -- meta -----------------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    @property
    def media_root(self) -> str | None:
        """The folder last indexed, as :func:`astradup.paths.to_text` spells it."""
        return self.get_meta("media_root")

    # -- videos ---------------------------------------------------------------------------------
    def known_files(self) -> pd.DataFrame:
        """path, size, mtime, content_hash and feature_key of every indexed video (paths as
        :func:`astradup.paths.to_text` spells them)."""
        return self.sql("SELECT video_id, path, size, mtime, content_hash, feature_key FROM videos")

    def relabel_feature_key(self, old: str, new: str) -> int:
        """Set ``feature_key`` to ``new`` on every video that has ``old`` (a change in how the key
        is spelled, not in the features); returns how many videos changed."""
        n = self.con.execute("SELECT count(*) FROM videos WHERE feature_key = ?", [old]).fetchone()
        if n and n[0]:
            self.con.execute("UPDATE videos SET feature_key = ? WHERE feature_key = ?", [new, old])
        return int(n[0]) if n else 0

    def next_video_id(self) -> int:
        """The smallest video_id above every one in the store (1 in an empty store)."""
        # fetchall, not fetchone: a half-read result blocks register() until the next execute
        return int(self.con.execute("SELECT coalesce(max(video_id), 0) + 1 FROM videos").fetchall()[0][0])

    def write_video(self, vf: VideoFeatures, *, rel_path: str, size: int, mtime: float, content_hash: str,
                    feature_key: str, run_id: str, video_id: int | None = None) -> int:
        """Replace all rows of ``vf.path`` in one transaction; returns its video_id.

        A path already in the store keeps its video_id. A new one gets ``video_id`` when given
        (the index run hands them out in path order, so ids do not depend on which file finished
        first), else :meth:`next_video_id`.

        ``vf.path`` and ``rel_path`` are file-system names; they are stored as
        :func:`astradup.paths.to_text` spells them (bytes that are not UTF-8 escaped, losslessly).
        This is :meth:`write_videos` with one item.

        Raises:
            StoreError: ``video_id`` belongs to another path, or the write failed.
        """
        return self.write_videos([VideoRecord(vf, rel_path, size, mtime, content_hash, feature_key, run_id,
                                              video_id)])[0]

    def write_videos(self, items: Iterable[VideoRecord]) -> list[int]:
        """Replace all rows of many videos in one transaction; returns their video_ids, in order.

        The rows and ids are those of one :meth:`write_video` call per item, in order (a path
        already in the store, or earlier in ``items``, keeps its id; a later item of the same path
        replaces the earlier one), but each table gets one vectorised insert per call instead of
        one per video: a few thousand videos a call write tens of times faster. All or nothing:
        when any item fails, nothing of the call is written.

        Raises:
            StoreError: an item is malformed or its ``video_id`` belongs to another path (the
                message names the file), or the write failed.
        """
        items = list(items)
        if not items:
            return []
        con = self.con
        keys = [to_text(it.features.path) for it in items]
        rows = [Rows.of(it, key, self.path) for it, key in zip(items, keys)]  # errors name the file
        con.execute("BEGIN TRANSACTION")
        try:
            vids = self._write_rows(items, keys, rows)
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{self.path}: writing {self._culprit(items, keys, rows)} failed ({exc})") from exc
        return vids

    def _write_rows(self, items: list[VideoRecord], keys: list[str], rows: list[Rows]) -> list[int]:
        """The body of :meth:`write_videos`, inside its transaction."""
        con = self.con
        paths = pa.table({"path": pa.array(sorted(set(keys)), pa.string())})
        with self.temp_table("_paths_in", paths):
            old = dict(con.execute("SELECT path, video_id FROM videos JOIN _paths_in USING (path)").fetchall())
        vids = self._assign_ids(items, keys, {k: int(v) for k, v in old.items()})
        last = {key: i for i, key in enumerate(keys)}  # a path given twice: the later item wins
        keep = [i for i, key in enumerate(keys) if last[key] == i]
        if old:
            with self.temp_table("_ids_in", pa.table({"video_id": pa.array(sorted(old.values()), pa.int64())})):
                for t in ("frames", "descriptors", "audio", "videos"):
                    con.execute(f"DELETE FROM {t} WHERE video_id IN (SELECT video_id FROM _ids_in)")
        kept = [rows[i] for i in keep]
        kept_ids = [vids[i] for i in keep]
        self._insert("videos", video_table(kept, kept_ids, now(), [keys[i] for i in keep], self.path))
        self._insert("frames", pa.concat_tables([r.frames(v) for r, v in zip(kept, kept_ids)]))
        desc = [(v, r.descriptor) for r, v in zip(kept, kept_ids) if r.descriptor is not None]
        if desc:
            self._insert("descriptors", pa.table({
                "video_id": pa.array([v for v, _ in desc], pa.int64()),
                "embedding": list_array([d for _, d in desc], pa.float32()),
            }))
        aud = [(v, r.audio) for r, v in zip(kept, kept_ids) if r.audio is not None]
        if aud:
            self._insert("audio", pa.table({
                "video_id": pa.array([v for v, _ in aud], pa.int64()),
                "status": pa.array([a.status for _, a in aud], pa.string()),
                "fingerprint": list_array([a.fingerprint for _, a in aud], pa.int64()),
                "mfcc_mean": list_array([a.mfcc_mean for _, a in aud], pa.float64()),
                "mfcc_std": list_array([a.mfcc_std for _, a in aud], pa.float64()),
                "rms": pa.array([a.rms for _, a in aud], pa.float64()),
            }))
        with self.temp_table("_paths_in", paths):
            con.execute("DELETE FROM failures WHERE path IN (SELECT path FROM _paths_in)")
        return vids

    def _culprit(self, items: list[VideoRecord], keys: list[str], rows: list[Rows]) -> str:
        """Which of ``items`` a failed :meth:`write_videos` call could not write: each is tried
        alone in a transaction that is rolled back (only on this error path)."""
        if len(items) == 1:
            return str(items[0].features.path)
        for it, key, r in zip(items, keys, rows):
            self.con.execute("BEGIN TRANSACTION")
            try:
                self._write_rows([it], [key], [r])
            except Exception:  # noqa: BLE001 - this item is the one that fails
                return f"{it.features.path} (one of {len(items)} videos in the call; none was written)"
            finally:
                self.con.execute("ROLLBACK")
        return f"{len(items)} videos ({items[0].features.path} ... {items[-1].features.path}; none was written)"

    def _assign_ids(self, items: list[VideoRecord], keys: list[str], old: dict[str, int]) -> list[int]:
        """The video id of each item, as one :meth:`write_video` call per item would give it."""
        given = sorted({int(it.video_id) for it in items if it.video_id is not None})
        taken: dict[int, str] = {}
        if given:
            with self.temp_table("_ids_in", pa.table({"video_id": pa.array(given, pa.int64())})):
                taken = {int(v): p for v, p in self.con.execute(
                    "SELECT video_id, path FROM videos JOIN _ids_in USING (video_id)").fetchall()}
        top = self.next_video_id() - 1
        known = dict(old)
        vids = []
        for it, key in zip(items, keys):
            if key in known:
                vid = known[key]
            elif it.video_id is not None:
                vid = int(it.video_id)
                if vid in taken:
                    raise StoreError(f"{self.path}: video_id {vid} for {key} is already {taken[vid]}'s")
            else:
                vid = top + 1
            known[key] = vid
            taken[vid] = key
            top = max(top, vid)
            vids.append(vid)
        return vids

    @contextmanager
    def temp_table(self, name: str, rows: pa.Table | pd.DataFrame) -> Iterator[None]:
        """``rows`` readable by SQL as ``name`` inside the block (a DuckDB view of the Arrow table
        or DataFrame, no copy), dropped when the block ends, whatever happens in it."""
        self.con.register(name, rows)
        try:
            yield
        finally:
            self.con.unregister(name)

    def _insert(self, table: str, rows: pa.Table) -> None:
        """Append an Arrow table's rows to ``table`` (columns by name; DuckDB casts each to the
        column's type, as it casts bound parameters)."""
        cols = ", ".join(rows.column_names)
        with self.temp_table("_rows_in", rows):
            self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _rows_in")

    def remove_missing(self, present: set[str]) -> int:
        """Forget videos whose files are gone from the media folder (their files are not touched).
        ``present`` holds file-system names."""
        present = {to_text(p) for p in present}
        df = self.sql("SELECT video_id, path FROM videos")
        gone = df[~df["path"].isin(present)]
        for vid in gone["video_id"]:
            self.con.execute("BEGIN TRANSACTION")
            for t in ("frames", "descriptors", "audio", "videos"):
                self.con.execute(f"DELETE FROM {t} WHERE video_id = ?", [int(vid)])
            self.con.execute("COMMIT")
        return len(gone)

    def record_failure(self, run_id: str, path: str, stage: str, error_class: str, message: str) -> None:
        """Record why ``path`` (a file-system name) failed; the message is stored with any byte
        that is not UTF-8 shown as ``\\udcNN``."""
        path, message = to_text(path), message.encode("utf-8", "backslashreplace").decode("utf-8")
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute("DELETE FROM failures WHERE path = ?", [path])
        self.con.execute("INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?)", [run_id, path, stage, error_class, message, now()])
        self.con.execute("COMMIT")

    # -- reading --------------------------------------------------------------------------------
    def videos(self) -> pd.DataFrame:
        return self.sql("SELECT * EXCLUDE (timings) FROM videos ORDER BY video_id")

    def failures(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM failures ORDER BY path")

    def pairs(self, run_id: str | None = None) -> pd.DataFrame:
        if run_id is None:
            row = self.con.execute("SELECT run_id FROM runs WHERE kind = 'match' AND status = 'ok' ORDER BY started DESC LIMIT 1").fetchone()
            run_id = row[0] if row else None
        if run_id is None:
            return self.sql("SELECT * FROM pairs WHERE false")
        return self.sql("SELECT * FROM pairs WHERE run_id = ? ORDER BY score DESC, a, b", [run_id])

    def runs(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM runs ORDER BY started")

    def labels(self) -> pd.DataFrame:
        return self.sql('SELECT * FROM labels')

    def load_features(self, video_ids: list[int] | None = None) -> dict[int, VideoFeatures]:
        """Read features back as :class:`VideoFeatures`, keyed by video_id."""
        where = ""
        params: list[Any] = []
        if video_ids is not None:
            if not video_ids:
                return {}
            where = f"WHERE video_id IN ({', '.join('?' * len(video_ids))})"
            params = [int(v) for v in video_ids]
        vids = self.con.execute(f"SELECT * FROM videos {where} ORDER BY video_id", params).df()
        fr = self.con.sql(f"SELECT video_id, t, phash, phash_flip, embedding, quality, phash_full, phash_full_flip FROM frames "
                          f"{where} ORDER BY video_id, idx", params=params).to_arrow_table()
        desc = self.con.execute(f"SELECT video_id, embedding FROM descriptors {where}", params).df()
        aud = self.con.execute(f"SELECT * FROM audio {where}", params).df()
        vid_col = fr.column("video_id").to_numpy()
        t_col = fr.column("t").to_numpy()
        # NULL (indexed before frame quality existed) reads as NaN: unknown
        q_col = np.asarray(fr.column("quality").to_numpy(zero_copy_only=False), dtype=np.float32)
        ph = np.frombuffer(b"".join(fr.column("phash").to_pylist()), dtype=np.uint8) if len(fr) else np.zeros(0, np.uint8)
        phf = np.frombuffer(b"".join(fr.column("phash_flip").to_pylist()), dtype=np.uint8) if len(fr) else np.zeros(0, np.uint8)
        nbytes = len(ph) // max(len(fr), 1)
        ph = ph.reshape(len(fr), nbytes) if len(fr) else ph.reshape(0, 32)
        phf = phf.reshape(len(fr), nbytes) if len(fr) else phf.reshape(0, 32)
        full = _full_hashes(fr, nbytes)
        emb_chunks = fr.column("embedding").combine_chunks()
        has_emb = emb_chunks.null_count < len(emb_chunks) if len(fr) else False
        if has_emb:
            flat = emb_chunks.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
            dim = len(flat) // len(fr)
            emb_all = flat.reshape(len(fr), dim)
        bounds = np.searchsorted(vid_col, vids["video_id"].to_numpy(), side="left"), np.searchsorted(vid_col, vids["video_id"].to_numpy(), side="right")
        desc_map = {int(r.video_id): np.asarray(r.embedding, dtype=np.float32) for r in desc.itertuples()}
        aud_map = {
            int(r.video_id): AudioFeatures(
                r.status,
                np.asarray(r.fingerprint if r.fingerprint is not None else [], dtype=np.int64).astype(np.uint32),
                np.asarray(r.mfcc_mean if r.mfcc_mean is not None else [], dtype=np.float32),
                np.asarray(r.mfcc_std if r.mfcc_std is not None else [], dtype=np.float32),
                float(r.rms),
            )
            for r in aud.itertuples()
        }
        out: dict[int, VideoFeatures] = {}
        for k, row in enumerate(vids.to_dict("records")):
            lo, hi = bounds[0][k], bounds[1][k]
            vid = int(row["video_id"])
            info = {c: (None if pd.isna(row[c]) else row[c]) for c in INFO_COLS}
            info["path"] = row["path"]
            whole = full is not None and hi > lo and bool(full[2][lo:hi].all())  # every frame has them
            out[vid] = VideoFeatures(
                path=row["path"],
                info=info,
                timestamps=t_col[lo:hi],
                phash=ph[lo:hi],
                phash_flip=phf[lo:hi],
                embeddings=emb_all[lo:hi] if has_emb else None,
                quality=q_col[lo:hi],
                descriptor=desc_map.get(vid),
                audio=aud_map.get(vid),
                decoder=row["decoder"] or "",
                content_box=_box(row.get("content_box")),
                phash_full=full[0][lo:hi] if full is not None and whole else None,
                phash_full_flip=full[1][lo:hi] if full is not None and whole else None,
            )
        return out

    def video_ids(self) -> np.ndarray:
        """Every video id, ascending (int64)."""
        ids = self.con.execute("SELECT video_id FROM videos ORDER BY video_id").fetchnumpy()["video_id"]
        return np.asarray(ids, dtype=np.int64)

    def frame_counts(self) -> pd.DataFrame:
        """video_id and n_frames (sampled frames) of every video, by video_id."""
        return self.sql("SELECT video_id, n_frames FROM videos ORDER BY video_id")

    def video_fingerprints(self) -> pd.DataFrame:
        """video_id, content_hash and feature_key of every video, by video_id: what changes when a
        video is re-indexed under the same id."""
        return self.sql("SELECT video_id, content_hash, feature_key FROM videos ORDER BY video_id")

    def embedding_dim(self) -> int | None:
        """Dimension of the stored frame embeddings (None when no frame has one)."""
        row = self.con.execute("SELECT len(embedding) FROM frames WHERE embedding IS NOT NULL LIMIT 1").fetchone()
        return int(row[0]) if row else None

    def embedded_frame_count(self) -> int:
        """Sampled frames that carry an embedding: the rows a full frame index would hold."""
        row = self.con.execute("SELECT count(*) FROM frames WHERE embedding IS NOT NULL").fetchone()
        return int(row[0]) if row else 0

    def iter_embeddings(self, video_ids: Sequence[int] | np.ndarray | None = None, batch: int = 1024,
                        max_frames: int | None = 32768) -> Iterator[EmbeddingBatch]:
        """Frame embeddings and descriptors, a batch of videos at a time, in video-id order.

        Only embeddings and descriptors are read, and a batch closes at ``batch`` videos or
        ``max_frames`` sampled frames (whichever comes first; a longer video is a batch alone), so a
        pass over a large library holds one batch at a time (32768 frames x 1280 floats = 168 MB),
        not the whole store.

        Args:
            video_ids: the videos to read (default: all).
            batch: most videos per yielded batch.
            max_frames: most sampled frames per batch, or None for no bound.
        """
        if batch < 1:
            raise StoreError(f"batch must be >= 1, but got {batch}")
        if max_frames is not None and max_frames < 1:
            raise StoreError(f"max_frames must be >= 1 or None, but got {max_frames}")
        ids = self.video_ids() if video_ids is None else np.unique(np.asarray(video_ids, dtype=np.int64))
        fc = self.frame_counts()
        n_frames = pd.Series(fc["n_frames"].fillna(0).to_numpy(np.int64), index=fc["video_id"].to_numpy(np.int64))
        counts = n_frames.reindex(ids, fill_value=0).to_numpy()
        for lo, hi in _batch_bounds(counts, batch, max_frames):
            chunk = [int(v) for v in ids[lo:hi]]
            # BETWEEN lets DuckDB skip row groups outside the range; IN keeps the batch exact
            where = f"WHERE video_id BETWEEN ? AND ? AND video_id IN ({', '.join('?' * len(chunk))})"
            params = [chunk[0], chunk[-1], *chunk]
            fvid, emb = self._embeddings("frames", where, "video_id, idx", params)
            did, dvecs = self._embeddings("descriptors", where, "video_id", params)
            yield EmbeddingBatch(np.asarray(chunk, dtype=np.int64), fvid, emb, did, dvecs)

    def frame_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(video id of each frame, float32 embeddings) of every frame that has an embedding, by
        video id then frame index: the rows of a full frame index, read in one pass."""
        cur = self.con.cursor()  # a result another call left unfetched on the connection does not block it
        try:
            t = cur.sql("SELECT video_id, idx, embedding FROM frames WHERE embedding IS NOT NULL").to_arrow_table()
        finally:
            cur.close()
        vid = np.asarray(t.column("video_id").to_numpy(), dtype=np.int64)
        if not len(t):
            return vid, np.zeros((0, 0), np.float32)
        order = np.lexsort((np.asarray(t.column("idx").to_numpy()), vid))  # sorted here: cheaper than ORDER BY
        return vid[order], _embedding_matrix(t)[order]

    def _embeddings(self, table: str, where: str, order: str, params: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(video ids, float32 embeddings) of the ``table`` rows matching ``where`` that have one."""
        t = self.con.sql(
            f"SELECT video_id, embedding FROM {table} {where} AND embedding IS NOT NULL ORDER BY {order}",
            params=params,
        ).to_arrow_table()
        vid = np.asarray(t.column("video_id").to_numpy(), dtype=np.int64)
        if not len(t):
            return vid, np.zeros((0, 0), np.float32)
        return vid, _embedding_matrix(t)

    # -- runs and pairs ---------------------------------------------------------------------------
    def start_run(self, run_id: str, kind: str, config: dict, versions: dict, media_root: str | None = None,
                  scheduler: str | None = None) -> None:
        self.con.execute(
            "INSERT INTO runs (run_id, kind, config, versions, started, status, media_root, scheduler) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
            [run_id, kind, json.dumps(config), json.dumps(versions), now(), media_root, scheduler],
        )

    def end_run(self, run_id: str, status: str, **counts: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in counts)
        self.con.execute(
            f"UPDATE runs SET ended = ?, status = ?{', ' + sets if sets else ''} WHERE run_id = ?",
            [now(), status, *counts.values(), run_id],
        )

    def write_pairs(self, run_id: str, pairs: pd.DataFrame) -> None:
        cols = ["a_id", "b_id", "a", "b", "score", "label", "visual", "audio", "metadata", "confidence",
                "a_start", "a_end", "b_start", "b_end", "partial", "explanation"]
        df = pairs[cols].copy()
        df.insert(0, "run_id", run_id)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM pairs WHERE run_id = ?", [run_id])
            with self.temp_table("_pairs_in", df):
                self.con.execute("INSERT INTO pairs SELECT * FROM _pairs_in")
            self.con.execute("COMMIT")
        except Exception as exc:
            self.con.execute("ROLLBACK")
            raise StoreError(f"{self.path}: writing pairs failed ({exc})") from exc

    def write_labels(self, truth: pd.DataFrame, source: str = "generator", reviewer: str | None = None) -> int:
        cols = ["a", "b", "relation", "transform", "a_start", "a_end", "b_start", "b_end", "group"]
        df = truth.reindex(columns=cols).copy()
        df["source"] = source
        df["reviewer"] = reviewer
        df["time"] = now()
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute("DELETE FROM labels WHERE source = ?", [source])
        with self.temp_table("_labels_in", df):
            self.con.execute('INSERT INTO labels SELECT * FROM _labels_in')
        self.con.execute("COMMIT")
        return len(df)

    def export_parquet(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write every table as ``<table>.parquet`` in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        present = set(self.sql("SELECT table_name FROM information_schema.tables")["table_name"])
        for t in TABLES:
            if t not in present:  # a read-only store of an older schema
                continue
            p = out / f"{t}.parquet"
            self.con.execute(f"COPY {t} TO '{str(p).replace(chr(39), chr(39) * 2)}' (FORMAT PARQUET)")
            written.append(p)
        return written


def _full_hashes(fr: pa.Table, nbytes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The frames' whole-frame hashes (phash_full, phash_full_flip) as (N, nbytes) arrays (zeros
    where NULL) and which rows hold them; None when no row does."""
    col = fr.column("phash_full")
    if len(fr) == 0 or col.null_count == len(fr):
        return None
    has = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    out = []
    for name in ("phash_full", "phash_full_flip"):
        vals = fr.column(name).to_pylist()
        out.append(np.frombuffer(b"".join(v if v is not None else bytes(nbytes) for v in vals), dtype=np.uint8).reshape(len(fr), nbytes))
    return out[0], out[1], has


def _box(value: object) -> tuple[float, float, float, float] | None:
    """A stored ``content_box`` as a tuple, or None where it is NULL (indexed before it was kept)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    t, b, l_, r = (float(v) for v in value)  # type: ignore[attr-defined]
    return t, b, l_, r
