"""The index and match jobs: drive media, features, store, index and scoring, on Dask or eagerly."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.errors import AstradupError, ConfigError, IndexError_, MediaError, StoreError
from astradup.execution.extract import Failure, extract_video
from astradup.execution.verify import DASK_MATCH_ABOVE, Chunk, verify_chunks
from astradup.execution.verify import score_candidates as score_candidates  # re-exported
from astradup.features.video import VideoFeatures
from astradup.media.files import check_file, content_hash, discover
from astradup.scoring.pair import score_pair
from astradup.store.store import Store

log = logging.getLogger(__name__)

PAIR_COLUMNS = [
    "a", "b", "score", "label", "visual", "audio", "metadata", "confidence",
    "a_start", "a_end", "b_start", "b_end", "partial", "explanation",
]


@dataclass
class IndexSummary:
    """What an index run did. ``videos_per_hour`` counts indexed (not skipped) videos."""

    run_id: str
    store: str
    n_files: int
    n_indexed: int
    n_skipped: int
    n_failed: int
    n_removed: int
    seconds: float
    videos_per_hour: float
    dashboard: str | None = None

    def lines(self) -> list[str]:
        return [
            f"files found      {self.n_files}",
            f"indexed          {self.n_indexed}",
            f"unchanged        {self.n_skipped}",
            f"failed           {self.n_failed}  (see the failures table)",
            f"removed          {self.n_removed}  (files gone from the folder)",
            f"time             {self.seconds:.1f} s  ({self.videos_per_hour:,.0f} videos/hour)",
            f"store            {self.store}",
        ]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("astradup", "torch", "av", "faiss-cpu", "duckdb", "dask", "distributed", "numpy", "transformers", "librosa", "optuna"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def feature_key(cfg: AstradupConfig) -> str:
    """Hash of the settings that change extracted features: changing them re-indexes."""
    s, f = cfg.sampling, cfg.features
    parts: list[Any] = [s.fps, s.frame_size, s.max_frames, s.audio_rate, f.hash, f.hash_size, f.embedding, f.model, f.audio]
    if s.keyframes_only:  # appended only when set, so keys of existing stores stay the same
        parts.append("keyframes_only")
    if f.embedding and f.mirror != "two_pass":  # two_pass made every store before mirror existed
        parts.append(f"mirror={f.mirror}")
    if f.embedding == "mobilenetv2" and f.compact_dim:
        parts.append(f"compact={f.compact_dim}")
    blob = json.dumps(parts)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def check_feature_keys(st: Store, cfg: AstradupConfig) -> int:
    """Warn when videos in the store were extracted with other feature settings than ``cfg``'s
    (for example by an AstraDup that embedded frames in two passes, before ``features.mirror``):
    their features are not comparable with new ones. ``astradup index`` re-extracts exactly those
    videos. Returns how many there are."""
    want = feature_key(cfg.replace(**{"sampling.keyframes_only": False}))
    keys = st.sql("SELECT feature_key, count(*) AS n FROM videos GROUP BY feature_key")
    stale = int(keys.loc[keys["feature_key"] != want, "n"].sum()) if len(keys) else 0
    if stale:
        log.warning("%s: %d of %d videos were indexed with other feature settings than this config's "
                    "(feature key %s; an AstraDup before one-pass embeddings used features.mirror=two_pass): "
                    "run `astradup index` again to re-extract them", st.path, stale, int(keys["n"].sum()), want)
    return stale


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool, unit: str = "video") -> Iterator:
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True)


def _eager_map(fn: Callable, paths: list[str], cfg: AstradupConfig) -> Iterator[tuple[str, Any]]:
    for p in paths:
        yield p, fn(p, cfg)


def _dask_map(client, fn: Callable, paths: list[str], cfg: AstradupConfig, in_flight: int) -> Iterator[tuple[str, Any]]:
    """Submit with a bounded window and yield (path, result) as they finish (any order)."""
    from distributed import as_completed

    cfg_future = client.scatter(cfg, broadcast=True)
    todo = list(paths)
    futures = {}

    def submit(p: str):
        fut = client.submit(fn, p, cfg_future, key=f"extract-{hashlib.sha1(p.encode()).hexdigest()}-{uuid.uuid4().hex[:6]}", pure=False)
        futures[fut] = p
        return fut

    ac = as_completed([submit(p) for p in todo[:in_flight]])
    rest = iter(todo[in_flight:])
    for fut in ac:
        p = futures.pop(fut)
        try:
            res = fut.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker and friends: record and go on
            res = Failure(p, "worker", type(exc).__name__, f"{p}: worker failed while extracting ({exc})")
        fut.release()
        yield p, res
        nxt = next(rest, None)
        if nxt is not None:
            ac.add(submit(nxt))


def run_index(
    media_dir: str | os.PathLike[str],
    store_path: str | os.PathLike[str],
    config: AstradupConfig | None = None,
    scheduler: str | None = None,
    gpus: bool = False,
    workers: int | None = None,
    progress: bool = True,
    eager: bool = False,
    on_dashboard: Callable[[str], None] | None = None,
) -> IndexSummary:
    """Index every video under ``media_dir`` into the store, incrementally.

    Unchanged files (same path, size, mtime, content hash and feature settings) are skipped; bad
    files are recorded in the ``failures`` table and the run goes on. Extraction runs on Dask
    (a LocalCluster unless ``scheduler`` names one; ``eager=True`` runs in this process); results
    stream back and this process is the store's only writer.
    """
    cfg = config or AstradupConfig()
    root = Path(media_dir).resolve()
    t0 = time.perf_counter()
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    fkey = feature_key(cfg)
    files = discover(root)
    n_failed = 0
    with Store(store_path) as st:
        prev_root = st.media_root
        if prev_root and Path(prev_root) != root:
            log.warning("store %s was indexed from %s; now indexing %s", store_path, prev_root, root)
        st.set_meta("media_root", str(root))
        st.start_run(run_id, "index", cfg.to_dict(), versions(), str(root), scheduler or ("eager" if eager else "local"))
        known = {r.path: r for r in st.known_files().itertuples()}
        pending: list[str] = []
        stats: dict[str, tuple[int, float, str]] = {}
        n_skipped = 0
        for f in files:
            p = str(f)
            try:
                sr = check_file(p)
                digest = content_hash(p, sr.st_size)
            except MediaError as exc:
                st.record_failure(run_id, p, "open", type(exc).__name__, str(exc))
                n_failed += 1
                continue
            stats[p] = (sr.st_size, sr.st_mtime, digest)
            k = known.get(p)
            if k is not None and k.size == sr.st_size and abs(k.mtime - sr.st_mtime) < 1e-6 and k.content_hash == digest and k.feature_key == fkey:
                n_skipped += 1
                continue
            pending.append(p)
        n_removed = st.remove_missing({str(f) for f in files})
        n_indexed = 0
        dashboard = None

        def consume(results: Iterator[tuple[str, Any]]) -> None:
            nonlocal n_indexed, n_failed
            for p, res in _progress(results, len(pending), "index", progress):
                if isinstance(res, Failure):
                    st.record_failure(run_id, p, res.stage, res.error_class, res.message)
                    log.warning("%s", res.message)
                    n_failed += 1
                    continue
                size, mtime, digest = stats[p]
                st.write_video(res, rel_path=os.path.relpath(p, root), size=size, mtime=mtime,
                               content_hash=digest, feature_key=fkey, run_id=run_id)
                n_indexed += 1

        status = "failed"
        try:
            if pending and not eager:
                from astradup.execution.cluster import dask_client

                with dask_client(scheduler, gpus, workers) as client:
                    dashboard = client.dashboard_link
                    if on_dashboard:
                        on_dashboard(dashboard)
                    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
                    consume(_dask_map(client, extract_video, pending, cfg, in_flight=4 * n_workers))
            elif pending:
                consume(_eager_map(extract_video, pending, cfg))
            status = "ok"
        finally:
            secs = time.perf_counter() - t0
            vph = n_indexed / secs * 3600 if secs > 0 else 0.0
            st.end_run(run_id, status, n_files=len(files), n_indexed=n_indexed, n_skipped=n_skipped,
                       n_failed=n_failed, seconds=secs, videos_per_hour=vph)
    return IndexSummary(run_id, str(store_path), len(files), n_indexed, n_skipped, n_failed, n_removed, secs, vph, dashboard)


# -- matching -----------------------------------------------------------------------------------

def _stack(features: dict[int, VideoFeatures]) -> dict[str, np.ndarray]:
    ids = sorted(features)
    out: dict[str, Any] = {"ids": np.asarray(ids, dtype=np.int64)}
    emb = [e for e in (features[i].embeddings for i in ids) if e is not None]
    if emb and len(emb) == len(ids):
        if len({e.shape[1] for e in emb}) > 1:
            raise StoreError(f"the store holds frame embeddings of {sorted({e.shape[1] for e in emb})} dimensions "
                             "(videos indexed with different features.compact_dim); run `astradup index` again")
        out["frame_vecs"] = np.concatenate(emb).astype(np.float32)
        out["frame_video"] = np.concatenate([np.full(len(e), i, dtype=np.int64) for i, e in zip(ids, emb)])
        out["video_vecs"] = np.stack([features[i].descriptor for i in ids]).astype(np.float32)  # type: ignore[misc]
    out["hash_codes"] = np.concatenate([features[i].phash for i in ids]) if ids else np.zeros((0, 32), np.uint8)
    out["hash_video"] = np.concatenate([np.full(features[i].n_frames, i, dtype=np.int64) for i in ids]) if ids else np.zeros(0, np.int64)
    return out


def frame_index(store_path: str | os.PathLike[str] | None, ids: np.ndarray, frame_video: np.ndarray,
                frame_vecs: np.ndarray, fingerprints: pd.DataFrame | None = None) -> tuple[Any, str]:
    """The FAISS frame index, kept beside the store (``<store>.frames.faiss``) and extended
    incrementally: when the indexed videos are a prefix of the current ones (new videos get higher
    ids), only the new rows are added; otherwise it is rebuilt. Returns (index, "reused" |
    "extended" | "built"). This is the full index (every frame, full dimension) kept up to
    ``match.reduce_above`` frames; :func:`reduced_frame_index` serves larger libraries.

    ``fingerprints`` (``Store.video_fingerprints()`` of exactly ``ids``) lets the manifest notice a
    video re-indexed under its old id with as many frames as before: its rows are stale."""
    from astradup.index import ALL_PAIRS_FLAT_MAX, VectorIndex

    rows = np.arange(len(frame_vecs), dtype=np.int64)
    counts = np.bincount(np.searchsorted(ids, frame_video), minlength=len(ids)).tolist()
    state: dict[str, Any] = {"ids": ids.tolist(), "counts": counts, "dim": int(frame_vecs.shape[1])}
    fp = None
    if fingerprints is not None:
        fp = fingerprints[fingerprints["video_id"].isin(ids)].reset_index(drop=True)
        state["videos_sha1"] = _videos_digest(fp, len(fp))
    if store_path is None:
        fresh = VectorIndex(frame_vecs.shape[1], flat_max=ALL_PAIRS_FLAT_MAX)
        fresh.add(frame_vecs, rows)
        return fresh, "built"
    path = Path(f"{store_path}.frames.faiss")
    manifest = Path(f"{path}.json")
    how = "built"
    idx: VectorIndex | None = None
    if path.exists() and manifest.exists():
        try:
            old = json.loads(manifest.read_text())
            n_old = len(old["ids"])
            if old.get("mode", "full") != "full":
                log.warning("%s holds a %s frame index; building the full one (every frame, full dimension)",
                            path, old["mode"])
            elif (old["dim"] == state["dim"] and old["ids"] == state["ids"][:n_old] and old["counts"] == counts[:n_old]
                  and (fp is None or old.get("videos_sha1") == _videos_digest(fp, n_old))):
                idx = VectorIndex.load(path)
                start = int(sum(old["counts"]))
                if start < len(frame_vecs):
                    idx.add(frame_vecs[start:], rows[start:])
                    how = "extended"
                else:
                    how = "reused"
        except (OSError, ValueError, KeyError, AstradupError) as exc:
            log.warning("%s: cannot reuse the frame index (%s); rebuilding", path, exc)
            idx = None
    if idx is None:
        idx = VectorIndex(frame_vecs.shape[1], flat_max=ALL_PAIRS_FLAT_MAX)
        idx.add(frame_vecs, rows)
    if how != "reused":
        idx.save(path)
        manifest.write_text(json.dumps(state))
    return idx, how


def find_candidates(features: dict[int, VideoFeatures], cfg: AstradupConfig,
                    store_path: str | os.PathLike[str] | None = None,
                    fingerprints: pd.DataFrame | None = None) -> pd.DataFrame:
    """Candidate pairs (a, b video ids) from FAISS: frame neighbours, video descriptors, hashes."""
    from astradup.index import candidate_pairs

    s = _stack(features)
    m = cfg.match
    kwargs: dict[str, Any] = {"k": m.k, "min_sim": m.min_candidate_sim, "hash_codes": s["hash_codes"],
                              "hash_video": s["hash_video"], "hash_radius": m.hash_radius}
    if "frame_vecs" in s:
        index, how = frame_index(store_path, s["ids"], s["frame_video"], s["frame_vecs"], fingerprints)
        log.info("frame index %s (%d vectors)", how, index.ntotal)
        kwargs.update(frame_vecs=s["frame_vecs"], frame_video=s["frame_video"], video_vecs=s["video_vecs"],
                      video_ids=s["ids"], index=index)
        out = candidate_pairs(**kwargs)
        out.attrs["frame_index"] = how
        return out
    # hash-only mode (no embedder configured): the hash index alone proposes candidates
    return candidate_pairs(None, None, **kwargs)


# -- the reduced frame index (large libraries) ---------------------------------------------------
# Above ``match.reduce_above`` sampled frames the full index (every frame, 1280 floats) no longer
# fits: a million videos sample ~60M frames, 300 GB. The reduced index holds only keyframes (a
# frame nearly identical to the last kept one of its video is dropped), projected to
# ``match.index_dim`` with a PCA fitted once on a sample and saved beside the store. The store is
# read in video-id batches, so no step holds every video's features.

PCA_SAMPLE_ROWS = 100_000  # frames the PCA is fitted on (1280-d: 0.5 GB float32, 1 GB float64)
PCA_SAMPLE_READ = 4  # ... drawn from videos holding 4 times as many frames
PCA_SEED = 0
STREAM_VIDEOS = 1024  # most videos per store batch while projecting keyframes
STREAM_FRAMES = 32_768  # most frames per store batch (168 MB of 1280-d embeddings)
VERIFY_PAIRS = 256  # most candidate pairs verified per chunk
VERIFY_FRAMES = 65_536  # most frames of the videos one verification chunk loads (~0.4 GB)


def index_files(store_path: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The files kept beside the store: frame index, its JSON manifest, the reduced index's PCA."""
    index = Path(f"{store_path}.frames.faiss")
    return index, Path(f"{index}.json"), Path(f"{store_path}.frames.pca.npz")


def use_reduced_index(st: Store, cfg: AstradupConfig) -> bool:
    """Whether the library's frame count calls for the reduced frame index."""
    return st.embedded_frame_count() > cfg.match.reduce_above


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _videos_digest(fp: pd.DataFrame, n: int) -> str:
    """SHA-1 of the first ``n`` videos' (id, content hash, feature key): a re-indexed video keeps
    its id, so ids alone cannot tell that its index rows are stale."""
    h = hashlib.sha1()
    for vid, digest, key in fp.iloc[:n].itertuples(index=False):
        h.update(f"{vid}:{digest}:{key}\n".encode())
    return h.hexdigest()


def project_keyframes(frame_vecs: np.ndarray, frame_video: np.ndarray, pca: Any,
                      keyframe_sim: float) -> tuple[np.ndarray, np.ndarray]:
    """Keyframes of full-dimension frame embeddings, projected with a fitted :class:`PCAReducer`.

    Keyframes are chosen on the full vectors (``select_keyframes(..., max_sim=keyframe_sim)``), so
    the choice does not depend on the PCA. A frame equal to the PCA mean projects to zero and has
    no direction; it is dropped. Returns (vectors (n, out_dim) float32, their video ids).
    """
    from astradup.index import select_keyframes

    if len(frame_vecs) == 0:
        return np.zeros((0, pca.out_dim), np.float32), np.zeros(0, np.int64)
    keep = select_keyframes(frame_vecs, frame_video, max_sim=keyframe_sim)
    y = pca.transform(frame_vecs[keep])
    ok = np.linalg.norm(y, axis=1) > 0
    return y[ok], np.asarray(frame_video, dtype=np.int64)[keep][ok]


@dataclass
class ReducedFrames:
    """One pass over the store for the reduced index: its rows and the projected descriptors.

    Attributes:
        ids: every video id, ascending.
        key_vecs: (n_keyframes, index_dim) projected keyframes: the index's rows, in ``ids`` order.
        key_video: (n_keyframes,) video id of each row.
        counts: keyframes per video of ``ids`` (with ``ids``, maps index rows back to videos).
        video_ids, video_vecs: videos with a descriptor and their projected descriptors.
    """

    ids: np.ndarray
    key_vecs: np.ndarray
    key_video: np.ndarray
    counts: np.ndarray
    video_ids: np.ndarray
    video_vecs: np.ndarray


def _fit_pca(st: Store, dim: int) -> Any:
    """Fit the PCA on about PCA_SAMPLE_ROWS frames: a seeded random subset of the frames of a
    seeded random sample of videos that hold PCA_SAMPLE_READ times as many (more videos, so long
    ones do not dominate), read batch by batch."""
    from astradup.index import PCAReducer

    fc = st.frame_counts()
    rng = np.random.default_rng(PCA_SEED)
    order = rng.permutation(len(fc))
    cum = np.cumsum(fc["n_frames"].fillna(0).to_numpy()[order])
    chosen = fc["video_id"].to_numpy()[order[: int(np.searchsorted(cum, PCA_SAMPLE_READ * PCA_SAMPLE_ROWS)) + 1]]
    n_read = int(cum[len(chosen) - 1]) if len(chosen) else 0
    keep_p = min(1.0, PCA_SAMPLE_ROWS / max(n_read, 1))
    parts = []
    for b in st.iter_embeddings(chosen, STREAM_VIDEOS, STREAM_FRAMES):
        if len(b.embeddings):
            parts.append(b.embeddings if keep_p >= 1 else b.embeddings[rng.random(len(b.embeddings)) < keep_p])
    if not parts or sum(len(x) for x in parts) < 2:
        raise IndexError_(f"{st.path}: too few frame embeddings to fit the reduced index's PCA on")
    x = np.concatenate(parts)
    del parts  # the fit makes float32 and float64 copies of its sample: keep one input only
    if dim >= x.shape[1]:
        raise ConfigError(f"match.index_dim must be below the embedding dimension {x.shape[1]}, but got {dim}")
    pca = PCAReducer(dim, sample_max=PCA_SAMPLE_ROWS, seed=PCA_SEED).fit(x)
    log.info("reduced frame index: PCA %d -> %d fitted on %d frames (%.1f%% of the variance)",
             x.shape[1], dim, min(len(x), PCA_SAMPLE_ROWS), 100 * (pca.explained_variance_ratio_ or 0))
    return pca


def _reduced_rows(st: Store, pca: Any, keyframe_sim: float, progress: bool = False) -> ReducedFrames:
    ids = st.video_ids()
    kv, kvid, dv, did = [], [], [], []
    batches = st.iter_embeddings(ids, STREAM_VIDEOS, STREAM_FRAMES)
    n_batches = max(-(-len(ids) // STREAM_VIDEOS), -(-st.embedded_frame_count() // STREAM_FRAMES))  # at least
    for b in _progress(batches, n_batches, "keyframes", progress, unit="batch"):
        vecs, owner = project_keyframes(b.embeddings, b.frame_video, pca, keyframe_sim)
        kv.append(vecs)
        kvid.append(owner)
        if len(b.descriptors):
            nonzero = np.linalg.norm(b.descriptors, axis=1) > 0  # a video without frames
            d = pca.transform(b.descriptors[nonzero])
            ok = np.linalg.norm(d, axis=1) > 0
            dv.append(d[ok])
            did.append(b.descriptor_ids[nonzero][ok])
    dim = pca.out_dim
    key_vecs = np.concatenate(kv) if kv else np.zeros((0, dim), np.float32)
    key_video = np.concatenate(kvid) if kvid else np.zeros(0, np.int64)
    counts = np.bincount(np.searchsorted(ids, key_video), minlength=len(ids)).astype(np.int64)
    return ReducedFrames(
        ids=ids, key_vecs=key_vecs, key_video=key_video, counts=counts,
        video_ids=np.concatenate(did) if did else np.zeros(0, np.int64),
        video_vecs=np.concatenate(dv) if dv else np.zeros((0, dim), np.float32),
    )


def _saved_pca(state: dict[str, Any], pca_path: Path, cfg: AstradupConfig | None) -> tuple[Any, str]:
    """The PCA a reduced manifest vouches for, or (None, why not). ``cfg`` None skips the check
    that the saved parameters equal the configured ones (a query uses the index as saved)."""
    from astradup.index import PCAReducer

    if state.get("mode", "full") != "reduced":
        return None, f"the saved frame index is {state.get('mode', 'full')}, not reduced"
    if cfg is not None:
        m = cfg.match
        if state.get("dim") != m.index_dim or state.get("keyframe_sim") != m.keyframe_sim:
            return None, (f"the saved reduced index has index_dim={state.get('dim')}, keyframe_sim="
                          f"{state.get('keyframe_sim')}; the config asks for {m.index_dim}, {m.keyframe_sim}")
    if not pca_path.is_file():
        return None, f"{pca_path} is missing"
    try:
        if _sha1(pca_path) != state.get("pca_sha1"):
            return None, f"{pca_path} is not the PCA the index was built with (changed or damaged)"
        pca = PCAReducer.load(pca_path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, AstradupError) as exc:
        return None, f"{pca_path} cannot be read ({exc})"
    if pca.out_dim != state.get("dim") or pca.in_dim != state.get("in_dim"):
        return None, f"{pca_path} maps {pca.in_dim} -> {pca.out_dim} dimensions, not what the manifest says"
    return pca, ""


def reduced_frame_index(st: Store, store_path: str | os.PathLike[str], cfg: AstradupConfig,
                        progress: bool = False) -> tuple[Any, str, ReducedFrames]:
    """The reduced frame index, kept beside the store and extended incrementally.

    Files: ``<store>.frames.faiss`` (the index), ``<store>.frames.faiss.json`` (manifest: mode,
    index_dim, in_dim, keyframe_sim, the PCA file's SHA-1, a digest of the indexed videos' content
    hashes and feature keys, and the video ids with the keyframe count of each, which map index
    rows back to videos) and ``<store>.frames.pca.npz`` (the PCA, written atomically). A later run
    projects every video with the *saved* PCA; when the indexed videos are a prefix of the current
    ones (same ids, keyframe counts, content hashes and feature keys) only the new videos'
    keyframes are added. A changed mode, ``index_dim``, ``keyframe_sim`` or embedding dimension,
    or a missing, damaged or unvouched PCA file logs a warning, refits the PCA and rebuilds the
    index; other changes to the library rebuild the index with the saved PCA.

    Returns:
        (index, "reused" | "extended" | "built", the pass's :class:`ReducedFrames`).
    """
    from astradup.index import ALL_PAIRS_FLAT_MAX, VectorIndex

    m = cfg.match
    index_path, manifest, pca_path = index_files(store_path)
    old: dict[str, Any] | None = None
    pca: Any = None
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
            if not isinstance(old, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read the frame index manifest (%s); rebuilding", manifest, exc)
            old = None
    if old is not None:
        pca, why = _saved_pca(old, pca_path, cfg)
        if pca is not None and pca.in_dim != st.embedding_dim():
            pca, why = None, f"{pca_path} projects {pca.in_dim}-d embeddings, the store holds {st.embedding_dim()}-d"
        if pca is None:
            log.warning("%s; refitting the PCA and rebuilding the reduced frame index", why)
    elif pca_path.exists():
        log.warning("%s has no manifest vouching for it; refitting the PCA and rebuilding", pca_path)
    fitted = pca is None
    if fitted:
        pca = _fit_pca(st, m.index_dim)
        _write_atomic(pca_path, pca.save)
    frames = _reduced_rows(st, pca, m.keyframe_sim, progress)
    fp = st.video_fingerprints()
    state = {"mode": "reduced", "dim": m.index_dim, "in_dim": pca.in_dim, "keyframe_sim": m.keyframe_sim,
             "pca_sha1": _sha1(pca_path), "videos_sha1": _videos_digest(fp, len(fp)),
             "ids": frames.ids.tolist(), "counts": frames.counts.tolist()}
    rows = np.arange(len(frames.key_vecs), dtype=np.int64)
    how = "built"
    idx: Any = None
    if not fitted and old is not None and index_path.exists():
        try:
            n_old = len(old["ids"])
            if (old["ids"] == state["ids"][:n_old] and old["counts"] == state["counts"][:n_old]
                    and old["videos_sha1"] == _videos_digest(fp, n_old)):
                idx = VectorIndex.load(index_path)
                start = int(sum(old["counts"]))
                if idx.dim != m.index_dim or idx.ntotal != start:
                    raise IndexError_(f"{index_path} holds {idx.ntotal} vectors of dim {idx.dim}, but its "
                                      f"manifest lists {start} of dim {m.index_dim}")
                if start < len(rows):
                    idx.add(frames.key_vecs[start:], rows[start:])
                    how = "extended"
                else:
                    how = "reused"
            else:
                log.info("videos changed since the reduced frame index was built; rebuilding it with the saved PCA")
        except (OSError, ValueError, KeyError, TypeError, AstradupError) as exc:
            log.warning("%s: cannot reuse the reduced frame index (%s); rebuilding it", index_path, exc)
            idx, how = None, "built"
    if idx is None:
        idx = VectorIndex(m.index_dim, flat_max=ALL_PAIRS_FLAT_MAX)
        idx.add(frames.key_vecs, rows)
    if how != "reused":
        idx.save(index_path)
        _write_atomic(manifest, lambda p: p.write_text(json.dumps(state)))
    return idx, how, frames


def find_candidates_reduced(st: Store, cfg: AstradupConfig, store_path: str | os.PathLike[str],
                            progress: bool = False) -> pd.DataFrame:
    """Candidate pairs from the reduced frame index (keyframes) and the projected descriptors.

    The hash source is skipped here: a Hamming range search at pHash radii is exact only by brute
    force, so it grows as n_frames^2 and cannot run over tens of millions of frames. Hashes still
    count when the candidates are verified (:func:`score_pair`).
    """
    from astradup.index import candidate_pairs

    m = cfg.match
    index, how, frames = reduced_frame_index(st, store_path, cfg, progress)
    log.info("reduced frame index %s (%d keyframes of %d videos, %d-d)", how, index.ntotal, len(frames.ids), m.index_dim)
    out = candidate_pairs(frames.key_vecs, frames.key_video, k=m.k, min_sim=m.min_candidate_sim,
                          video_vecs=frames.video_vecs, video_ids=frames.video_ids, index=index)
    out.attrs["frame_index"] = how
    return out


def _pair_chunks(a: np.ndarray, b: np.ndarray, n_frames: dict[int, int]) -> Iterator[tuple[int, int]]:
    """Consecutive (lo, hi) slices of the pairs with at most VERIFY_PAIRS pairs and, unless one
    pair alone is over it, VERIFY_FRAMES sampled frames among the slice's distinct videos."""
    lo, total = 0, 0
    seen: set[int] = set()
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        new = {x, y} - seen
        add = sum(n_frames.get(v, 0) for v in new)
        if i > lo and (i - lo >= VERIFY_PAIRS or total + add > VERIFY_FRAMES):
            yield lo, i
            lo, total, seen = i, 0, set()
            new = {x, y}
            add = sum(n_frames.get(v, 0) for v in new)
        seen |= new
        total += add
    if lo < len(a):
        yield lo, len(a)


def verify_streamed(st: Store, cand: pd.DataFrame, cfg: AstradupConfig, threshold: float,
                    progress: bool = False, client: Any = None) -> list[dict]:
    """Verify candidate pairs chunk by chunk, reading only each chunk's videos from the store.

    Pairs are sorted by ``a`` so a chunk's ``a`` side is a few videos; each chunk (at most
    VERIFY_PAIRS pairs and VERIFY_FRAMES frames of distinct videos) loads its videos' features,
    scores its pairs and drops the features. Rows scoring below ``threshold`` are dropped as they
    come. With ``client`` the chunks are scored on its Dask workers (:func:`verify_chunks`).
    """
    order = cand.sort_values(["a", "b"], kind="stable")
    a = order["a"].to_numpy(dtype=np.int64)
    b = order["b"].to_numpy(dtype=np.int64)
    fc = st.frame_counts()
    n_frames = dict(zip(fc["video_id"].astype("int64").tolist(), fc["n_frames"].fillna(0).astype("int64").tolist()))
    chunks = list(_pair_chunks(a, b, n_frames))
    del n_frames

    def load() -> Iterator[Chunk]:
        for lo, hi in chunks:
            ca, cb = a[lo:hi], b[lo:hi]
            yield list(zip(ca.tolist(), cb.tolist())), st.load_features(np.union1d(ca, cb).tolist())

    rows: list[dict] = []
    for part in _progress(verify_chunks(load(), cfg, client, threshold), len(chunks), "match", progress, unit="chunk"):
        rows.extend(part)
    return rows


def _feature_chunks(pairs: list[tuple[int, int]], feats: dict[int, VideoFeatures], size: int) -> Iterator[Chunk]:
    for i in range(0, len(pairs), size):
        chunk = pairs[i : i + size]
        yield chunk, {v: feats[v] for v in {x for p in chunk for x in p}}


@contextmanager
def _match_client(use_dask: bool, scheduler: str | None, workers: int | None) -> Iterator[Any]:
    if not use_dask:
        yield None
        return
    from astradup.execution.cluster import dask_client

    with dask_client(scheduler, False, workers) as client:
        yield client


def _pairs_frame(rows: list[dict], rel: pd.Series, threshold: float) -> pd.DataFrame:
    """Scored rows -> the pairs table: a/b as relative paths with a < b, over the threshold, best first."""
    df = pd.DataFrame(rows, columns=[*PAIR_COLUMNS, "a_id", "b_id"]) if rows else pd.DataFrame(columns=[*PAIR_COLUMNS, "a_id", "b_id"])
    if len(df):
        ra, rb = rel.loc[df["a_id"]].to_numpy(), rel.loc[df["b_id"]].to_numpy()
        swap = ra > rb
        df["a"], df["b"] = np.where(swap, rb, ra), np.where(swap, ra, rb)
        for x, y in (("a_start", "b_start"), ("a_end", "b_end"), ("a_id", "b_id")):
            xa, ya = df[x].to_numpy(copy=True), df[y].to_numpy(copy=True)
            df[x], df[y] = np.where(swap, ya, xa), np.where(swap, xa, ya)
        df = df[df["score"] >= threshold].sort_values(["score", "a", "b"], ascending=[False, True, True]).reset_index(drop=True)
    return df


def run_match(
    store_path: str | os.PathLike[str],
    config: AstradupConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    min_score: float | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    workers: int | None = None,
    eager: bool = False,
) -> pd.DataFrame:
    """Retrieve candidates, verify and fuse them, and write the pairs to the store (and CSV).

    Verification runs in chunks on Dask when ``scheduler`` names a cluster, or on a LocalCluster
    of ``workers`` processes when there are at least ``DASK_MATCH_ABOVE`` candidate pairs (unless
    ``eager``); the pairs are the same as the eager path's. This process stays the store's only
    reader and ships each chunk's features to the workers.

    Up to ``match.reduce_above`` sampled frames every video's features are loaded and every frame
    is indexed at full dimension (:func:`frame_index`); hashes propose candidates too. Above it the
    store is streamed: the frame index holds PCA-reduced keyframes (:func:`reduced_frame_index`),
    the all-pairs hash source is skipped (it grows as frames^2; hashes still count in
    verification), and candidates are verified in chunks (:func:`verify_streamed`).

    Returns the pairs.csv frame: a, b (paths relative to the media folder), score, label,
    visual, audio, metadata, confidence, a_start, a_end, b_start, b_end, partial, explanation.
    Its attrs hold ``run_id``, ``n_candidates``, ``frame_index`` ("built" | "extended" |
    "reused") and ``index_mode`` ("full" | "reduced").
    """
    cfg = config or AstradupConfig()
    threshold = cfg.match.min_score if min_score is None else min_score
    t0 = time.perf_counter()
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    with Store(store_path) as st:
        reduced = use_reduced_index(st, cfg)
        if reduced:
            n_videos = len(st.video_ids())
        else:
            feats = st.load_features()
            n_videos = len(feats)
        if n_videos < 2:
            raise StoreError(f"{store_path}: {n_videos} indexed video(s); matching needs at least 2")
        check_feature_keys(st, cfg)
        st.start_run(run_id, "match", cfg.to_dict(), versions(), st.media_root)
        if reduced:
            rel = st.sql("SELECT video_id, rel_path FROM videos").set_index("video_id")["rel_path"]
            cand = find_candidates_reduced(st, cfg, store_path, progress)
        else:
            rel = st.videos().set_index("video_id")["rel_path"]
            cand = find_candidates(feats, cfg, store_path, st.video_fingerprints())
        n_candidates = len(cand)
        use_dask = scheduler is not None or (not eager and n_candidates >= DASK_MATCH_ABOVE)
        with _match_client(use_dask, scheduler, workers) as client:
            if reduced:
                rows = verify_streamed(st, cand, cfg, threshold, progress, client)
            else:
                pairs = list(zip(cand["a"].astype(int).tolist(), cand["b"].astype(int).tolist()))
                size = VERIFY_PAIRS if client is not None else 64
                rows = []
                for part in _progress(verify_chunks(_feature_chunks(pairs, feats, size), cfg, client, threshold),
                                      -(-len(pairs) // size), "match", progress, unit="chunk"):
                    rows.extend(part)
        df = _pairs_frame(rows, rel, threshold)
        st.write_pairs(run_id, df)
        secs = time.perf_counter() - t0
        st.end_run(run_id, "ok", n_files=n_videos, n_indexed=len(df), seconds=secs)
    result = df[PAIR_COLUMNS].copy()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        result.to_csv(out, index=False)
    result.attrs["run_id"] = run_id
    result.attrs["n_candidates"] = n_candidates
    result.attrs["frame_index"] = cand.attrs.get("frame_index", "built")
    result.attrs["index_mode"] = "reduced" if reduced else "full"
    return result


def explain_pair(store_path: str | os.PathLike[str], a: str, b: str, config: AstradupConfig | None = None) -> dict[str, Any]:
    """Everything behind one pair's verdict: similarity matrix, aligned path, scores, top frames.

    ``a`` and ``b`` are paths relative to the media folder (as in pairs.csv) or absolute.
    """
    from astradup.scoring.similarity import frame_similarity

    cfg = config or AstradupConfig()
    with Store(store_path, read_only=True) as st:
        v = st.videos()
        ids = []
        for p in (a, b):
            hit = v[(v["rel_path"] == p) | (v["path"] == p)]
            if hit.empty:
                raise AstradupError(f"{p}: not in store {store_path}")
            ids.append(int(hit["video_id"].iloc[0]))
        feats = st.load_features(ids)
    fa, fb = feats[ids[0]], feats[ids[1]]
    ps = score_pair(fa, fb, cfg)
    from astradup.scoring.alignment import align_any
    from astradup.scoring.similarity import _half_step

    sim = frame_similarity(fa, fb)
    al = align_any(sim, fa.timestamps, fb.timestamps, cfg.match.frame_threshold, cfg.match.gap,
               _half_step(fa.timestamps), _half_step(fb.timestamps), fa.duration or None, fb.duration or None)
    return {
        "a": a, "b": b, "path_a": fa.path, "path_b": fb.path,
        "sim_matrix": sim, "ts_a": fa.timestamps, "ts_b": fb.timestamps,
        "path": [] if al is None else [tuple(map(int, x)) for x in al.path],
        "segments": {"a_start": ps.a_start, "a_end": ps.a_end, "b_start": ps.b_start, "b_end": ps.b_end},
        "scores": {"visual": ps.visual, "audio": ps.audio, "metadata": ps.metadata, "score": ps.score,
                   "label": ps.label, "confidence": ps.confidence, "partial": ps.partial},
        "top_frames": [tuple(x) for x in ps.explanation.get("top_frames", [])],
        "explanation": ps.explanation,
    }


def _read_manifest(manifest: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read the frame index manifest (%s); rebuilding", manifest, exc)
        return None
    return state if isinstance(state, dict) else None


def run_query(
    path: str | os.PathLike[str],
    store_path: str | os.PathLike[str],
    config: AstradupConfig | None = None,
    top: int = 10,
    min_score: float = 0.5,
) -> pd.DataFrame:
    """Is this video already in the library? Extract one file, search the frame index kept beside
    the store (built first if missing), verify the best candidates, and return matches like
    pairs.csv rows (``a`` = the query, ``b`` = the library video), best first.

    When the saved index is reduced, the query's keyframes are chosen with the saved
    ``keyframe_sim`` and projected with the saved PCA before the search. A reduced index whose
    PCA is missing or damaged is rebuilt first (with a warning), in the mode the config calls for.
    """
    from astradup.index import VectorIndex

    cfg = config or AstradupConfig()
    res = extract_video(os.fspath(path), cfg)
    if isinstance(res, Failure):
        raise MediaError(res.path, res.message.split(": ", 1)[-1])
    if res.embeddings is None:
        raise AstradupError("query needs frame embeddings (features.embedding is empty)")
    index_path, manifest, pca_path = index_files(store_path)
    with Store(store_path, read_only=True) as st:
        check_feature_keys(st, cfg)
        state = _read_manifest(manifest) if index_path.exists() and manifest.exists() else None
        pca = None
        if state is not None and state.get("mode", "full") == "reduced":
            pca, why = _saved_pca(state, pca_path, None)
            if pca is None:
                log.warning("%s; rebuilding the frame index", why)
                state = None
        if state is None:
            if use_reduced_index(st, cfg):
                reduced_frame_index(st, store_path, cfg)
            else:
                feats = st.load_features()
                s = _stack(feats)
                frame_index(store_path, s["ids"], s["frame_video"], s["frame_vecs"], st.video_fingerprints())
                del feats, s
            state = json.loads(manifest.read_text())
            pca = _saved_pca(state, pca_path, None)[0] if state.get("mode", "full") == "reduced" else None
        owner = np.repeat(np.asarray(state["ids"], dtype=np.int64), state["counts"])
        idx = VectorIndex.load(index_path)
        queries = res.embeddings
        lib_dim = pca.in_dim if pca is not None else idx.dim
        if queries.shape[1] != lib_dim:
            raise StoreError(f"{store_path}: the library's frame embeddings have {lib_dim} dimensions, this config "
                             f"makes {queries.shape[1]} (features.compact_dim={cfg.features.compact_dim}); run "
                             "`astradup index` again to re-extract the library with these settings")
        if pca is not None:
            queries, _ = project_keyframes(queries, np.zeros(len(queries), np.int64), pca, float(state["keyframe_sim"]))
        sims, rows = idx.search(queries, cfg.match.k)
        ok = (rows >= 0) & (sims >= cfg.match.min_candidate_sim)
        votes = pd.Series(owner[rows[ok]]).value_counts()
        cand = [int(v) for v in votes.index[: max(top * 3, top)]]
        feats = st.load_features(cand)
        vids = st.videos().set_index("video_id")
    rows_out = []
    for vid in cand:
        ps = score_pair(res, feats[vid], cfg)
        if ps.score >= min_score:
            row = ps.row()
            row["a"], row["b"] = os.fspath(path), vids.loc[vid, "rel_path"]
            rows_out.append(row)
    df = pd.DataFrame(rows_out, columns=PAIR_COLUMNS)
    return df.sort_values("score", ascending=False).head(top).reset_index(drop=True)
