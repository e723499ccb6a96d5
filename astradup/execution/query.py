"""Looking videos up in the library with the frame index loaded once and kept.

:func:`astradup.execution.runner.run_query` opens the index for one call; a long-lived process
(the query service) keeps a :class:`QueryIndex` and calls :func:`query_features` for each upload,
so the index is read from disk once, not per request. Both compose the same stages
(:mod:`astradup.execution.stages`). :meth:`QueryIndex.changed` and :meth:`QueryIndex.is_stale` say when
the files beside the store or the store's videos moved on since the index was loaded.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.errors import AstradupError, IndexError_, MediaError
from astradup.execution.extract import Failure, extract_video
from astradup.features.video import VideoFeatures
from astradup.store.rows import as_stored
from astradup.store.store import Store

log = logging.getLogger(__name__)


def _stamp(*paths: Path) -> tuple[tuple[int, int], ...]:
    """(mtime_ns, size) of each file, (0, 0) when missing: what says a file was rewritten."""
    out = []
    for p in paths:
        try:
            s = p.stat()
            out.append((s.st_mtime_ns, s.st_size))
        except OSError:
            out.append((0, 0))
    return tuple(out)


@dataclass
class QueryIndex:
    """The frame index of a store, loaded for searching.

    Attributes:
        store_path: the store the index belongs to.
        index: the loaded :class:`astradup.index.VectorIndex`.
        ids, counts: indexed video ids and index rows per video (from the manifest).
        mode: ``"full"`` (every sampled frame) or ``"reduced"`` (PCA-projected keyframes).
        pca, keyframe_sim: the reduced index's projection and keyframe rule (None when full).
        videos_sha1: digest of the indexed videos' content hashes and feature keys.
        stamp: the index files' (mtime_ns, size) when they were read.
        loaded_at: UNIX time of the load; load_seconds: how long it took.
        how: ``"loaded"``, or ``"built"`` / ``"extended"`` when the files were (re)written first.
    """

    store_path: str
    index: Any
    ids: np.ndarray
    counts: np.ndarray
    mode: str
    pca: Any = None
    keyframe_sim: float | None = None
    videos_sha1: str | None = None
    stamp: tuple = ()
    loaded_at: float = 0.0
    load_seconds: float = 0.0
    how: str = "loaded"
    _owner: np.ndarray | None = field(default=None, repr=False)

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, store_path: str | os.PathLike[str], config: AstradupConfig | None = None,
             st: Store | None = None, refresh: bool = False) -> QueryIndex:
        """Read the frame index kept beside the store, building it first when it is missing.

        Args:
            store_path: the DuckDB store.
            config: decides full or reduced mode when the index has to be built.
            st: an open store to read (one is opened read-only when None).
            refresh: also rebuild (incrementally) when the store's videos changed since the
                index was written, as after a new ``astradup index`` run.
        """
        if st is None:
            with Store(store_path, read_only=True) as own:
                return cls.load(store_path, config, own, refresh)
        from astradup.index.frames import index_files, load_or_build, read_manifest, saved_pca

        cfg = config or AstradupConfig()
        t0 = time.perf_counter()
        index_path, manifest, pca_path = index_files(store_path)
        state = read_manifest(manifest) if index_path.exists() and manifest.exists() else None
        pca = None
        how = "loaded"
        if state is not None and state.get("mode", "full") == "reduced":
            pca, why = saved_pca(state, pca_path, None)
            if pca is None:
                log.warning("%s; rebuilding the frame index", why)
                state = None
        if state is not None and refresh and _store_digest(st) != state.get("videos_sha1"):
            log.info("%s: the store's videos changed since the frame index was written; updating it", store_path)
            state = None
        stamp = _stamp(index_path, manifest)
        idx, state, built = load_or_build(st, store_path, cfg, state)
        if built != "loaded":
            how, stamp = built, _stamp(index_path, manifest)
            pca = saved_pca(state, pca_path, None)[0] if state.get("mode", "full") == "reduced" else None
        counts = np.asarray(state["counts"], dtype=np.int64)
        if idx.ntotal != int(counts.sum()):
            raise IndexError_(f"{index_path} holds {idx.ntotal} vectors, but its manifest lists {int(counts.sum())}")
        return cls(
            store_path=os.fspath(store_path), index=idx, ids=np.asarray(state["ids"], dtype=np.int64),
            counts=counts, mode=state.get("mode", "full"), pca=pca,
            keyframe_sim=float(state["keyframe_sim"]) if pca is not None else None,
            videos_sha1=state.get("videos_sha1"), stamp=stamp, loaded_at=time.time(),
            load_seconds=time.perf_counter() - t0, how=how,
        )

    # -- freshness -------------------------------------------------------------------------------
    def changed(self) -> bool:
        """Whether the index files beside the store were rewritten since this was loaded."""
        from astradup.index.frames import index_files

        index_path, manifest, _ = index_files(self.store_path)
        return _stamp(index_path, manifest) != self.stamp

    def is_stale(self, st: Store) -> bool:
        """Whether the store's videos differ from the indexed ones (a newer ``index`` run)."""
        return self.videos_sha1 is None or _store_digest(st) != self.videos_sha1

    # -- searching -------------------------------------------------------------------------------
    @property
    def n_vectors(self) -> int:
        return int(self.counts.sum())

    @property
    def n_videos(self) -> int:
        return len(self.ids)

    @property
    def owner(self) -> np.ndarray:
        """Video id of every index row."""
        if self._owner is None:
            self._owner = np.repeat(self.ids, self.counts)
        return self._owner

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Frame embeddings as the index holds them (keyframes, PCA-projected, when reduced)."""
        if self.pca is None:
            return np.ascontiguousarray(vectors, dtype=np.float32)
        from astradup.index.frames import project_keyframes

        out, _ = project_keyframes(vectors, np.zeros(len(vectors), np.int64), self.pca, float(self.keyframe_sim or 1.0))
        return out

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, rows) of the ``k`` nearest index rows of each (already projected) vector."""
        return self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)

    def candidates(self, embeddings: np.ndarray, k: int, min_sim: float, n: int) -> list[int]:
        """Up to ``n`` library video ids whose frames are nearest the query's, most votes first."""
        from astradup.execution.stages import search_votes

        return search_votes(self.index, self.owner, self.project(embeddings), k, min_sim, n)


def _store_digest(st: Store) -> str:
    from astradup.index.frames import videos_digest

    fp = st.video_fingerprints()
    return videos_digest(fp, len(fp))


def query_features(query: VideoFeatures, qi: QueryIndex, st: Store, config: AstradupConfig | None = None,
                   top: int = 10, min_score: float = 0.5, name: str | None = None) -> pd.DataFrame:
    """Match one extracted video against the loaded index and verify the best candidates.

    Returns rows like pairs.csv (``a`` = ``name`` or the query's path, ``b`` = the library video's
    relative path), best first, at most ``top`` with a fused score of at least ``min_score``.
    """
    from astradup.execution.stages import verify_query

    cfg = config or AstradupConfig()
    if query.embeddings is None:
        raise AstradupError("query needs frame embeddings (features.embedding is empty)")
    cand = qi.candidates(query.embeddings, cfg.match.k, cfg.match.min_candidate_sim, max(top * 3, top))
    feats = st.load_features(cand)
    cand = [v for v in cand if v in feats]  # a video forgotten by an index run since the load
    names = st.sql("SELECT video_id, rel_path FROM videos").set_index("video_id")["rel_path"]
    return verify_query(query, name or query.path, cand, feats, names, cfg, min_score, top)


def query_threads() -> int:
    """Threads one query's extraction uses: ``OMP_NUM_THREADS`` when set (a Dask worker's 1),
    else every core this process may run on."""
    from astradup.execution.cluster import default_workers
    from astradup.media.probe import decoder_threads

    return decoder_threads() or default_workers()


def extract_query(path: str | os.PathLike[str], config: AstradupConfig | None = None) -> VideoFeatures:
    """Extract one query video with :func:`query_threads` threads (the features equal those
    ``astradup index`` stores for the file, embeddings kept to the store's decimals); a bad file
    raises :class:`MediaError` naming it and the problem."""
    res = extract_video(os.fspath(path), config or AstradupConfig(), threads=query_threads())
    if isinstance(res, Failure):
        raise MediaError(res.path, res.message.split(": ", 1)[-1])
    return as_stored(res)


def store_config(st: Store) -> AstradupConfig | None:
    """The configuration of the store's last successful ``index`` run (None before any)."""
    try:
        row = st.con.execute(
            "SELECT config FROM runs WHERE kind = 'index' AND status = 'ok' ORDER BY started DESC LIMIT 1"
        ).fetchone()
    except Exception:  # noqa: BLE001 - an empty store without a runs table
        return None
    if not row or not row[0]:
        return None
    try:
        return AstradupConfig.from_dict(json.loads(row[0]))
    except (ValueError, AstradupError) as exc:
        log.warning("%s: the last index run's config cannot be read (%s); using the defaults", st.path, exc)
        return None
