"""The index and match jobs: drive media, features, store, index and scoring, on Dask or eagerly."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.errors import AstradupError, MediaError, StoreError
from astradup.execution.extract import Failure, extract_video
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
    blob = json.dumps([s.fps, s.frame_size, s.max_frames, s.audio_rate, f.hash, f.hash_size, f.embedding, f.model, f.audio])
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


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
        out["frame_vecs"] = np.concatenate(emb).astype(np.float32)
        out["frame_video"] = np.concatenate([np.full(len(e), i, dtype=np.int64) for i, e in zip(ids, emb)])
        out["video_vecs"] = np.stack([features[i].descriptor for i in ids]).astype(np.float32)  # type: ignore[misc]
    out["hash_codes"] = np.concatenate([features[i].phash for i in ids]) if ids else np.zeros((0, 32), np.uint8)
    out["hash_video"] = np.concatenate([np.full(features[i].n_frames, i, dtype=np.int64) for i in ids]) if ids else np.zeros(0, np.int64)
    return out


def frame_index(store_path: str | os.PathLike[str] | None, ids: np.ndarray, frame_video: np.ndarray,
                frame_vecs: np.ndarray) -> tuple[Any, str]:
    """The FAISS frame index, kept beside the store (``<store>.frames.faiss``) and extended
    incrementally: when the indexed videos are a prefix of the current ones (new videos get higher
    ids), only the new rows are added; otherwise it is rebuilt. Returns (index, "reused" |
    "extended" | "built")."""
    from astradup.index import ALL_PAIRS_FLAT_MAX, VectorIndex

    rows = np.arange(len(frame_vecs), dtype=np.int64)
    counts = np.bincount(np.searchsorted(ids, frame_video), minlength=len(ids)).tolist()
    state = {"ids": ids.tolist(), "counts": counts, "dim": int(frame_vecs.shape[1])}
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
            if old["dim"] == state["dim"] and old["ids"] == state["ids"][:n_old] and old["counts"] == counts[:n_old]:
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
                    store_path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Candidate pairs (a, b video ids) from FAISS: frame neighbours, video descriptors, hashes."""
    from astradup.index import candidate_pairs

    s = _stack(features)
    m = cfg.match
    kwargs: dict[str, Any] = {"k": m.k, "min_sim": m.min_candidate_sim, "hash_codes": s["hash_codes"],
                              "hash_video": s["hash_video"], "hash_radius": m.hash_radius}
    if "frame_vecs" in s:
        index, how = frame_index(store_path, s["ids"], s["frame_video"], s["frame_vecs"])
        log.info("frame index %s (%d vectors)", how, index.ntotal)
        kwargs.update(frame_vecs=s["frame_vecs"], frame_video=s["frame_video"], video_vecs=s["video_vecs"],
                      video_ids=s["ids"], index=index)
        out = candidate_pairs(**kwargs)
        out.attrs["frame_index"] = how
        return out
    # hash-only mode (no embedder configured): the hash index alone proposes candidates
    return candidate_pairs(None, None, **kwargs)


def score_candidates(pairs: Iterable[tuple[int, int]], features: dict[int, VideoFeatures], cfg: AstradupConfig) -> list[dict]:
    """Verify candidate pairs: a pure function over features (mapped in chunks on Dask)."""
    rows = []
    for a, b in pairs:
        ps = score_pair(features[a], features[b], cfg)
        row = ps.row()
        row["a_id"], row["b_id"] = int(a), int(b)
        rows.append(row)
    return rows


def run_match(
    store_path: str | os.PathLike[str],
    config: AstradupConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    min_score: float | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Retrieve candidates, verify and fuse them, and write the pairs to the store (and CSV).

    Returns the pairs.csv frame: a, b (paths relative to the media folder), score, label,
    visual, audio, metadata, confidence, a_start, a_end, b_start, b_end, partial, explanation.
    """
    cfg = config or AstradupConfig()
    threshold = cfg.match.min_score if min_score is None else min_score
    t0 = time.perf_counter()
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    with Store(store_path) as st:
        feats = st.load_features()
        if len(feats) < 2:
            raise StoreError(f"{store_path}: {len(feats)} indexed video(s); matching needs at least 2")
        vids = st.videos().set_index("video_id")
        st.start_run(run_id, "match", cfg.to_dict(), versions(), st.media_root)
        cand = find_candidates(feats, cfg, store_path)
        pairs = list(zip(cand["a"].astype(int), cand["b"].astype(int)))
        rows = []
        for chunk in _progress((pairs[i : i + 64] for i in range(0, len(pairs), 64)), (len(pairs) + 63) // 64, "match", progress, unit="chunk"):
            rows.extend(score_candidates(chunk, feats, cfg))
        df = pd.DataFrame(rows, columns=[*PAIR_COLUMNS, "a_id", "b_id"]) if rows else pd.DataFrame(columns=[*PAIR_COLUMNS, "a_id", "b_id"])
        if len(df):
            rel = vids["rel_path"]
            ra, rb = rel.loc[df["a_id"]].to_numpy(), rel.loc[df["b_id"]].to_numpy()
            swap = ra > rb
            df["a"], df["b"] = np.where(swap, rb, ra), np.where(swap, ra, rb)
            for x, y in (("a_start", "b_start"), ("a_end", "b_end"), ("a_id", "b_id")):
                xa, ya = df[x].to_numpy(copy=True), df[y].to_numpy(copy=True)
                df[x], df[y] = np.where(swap, ya, xa), np.where(swap, xa, ya)
            df = df[df["score"] >= threshold].sort_values(["score", "a", "b"], ascending=[False, True, True]).reset_index(drop=True)
        st.write_pairs(run_id, df)
        secs = time.perf_counter() - t0
        st.end_run(run_id, "ok", n_files=len(feats), n_indexed=len(df), seconds=secs)
    result = df[PAIR_COLUMNS].copy()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        result.to_csv(out, index=False)
    result.attrs["run_id"] = run_id
    result.attrs["n_candidates"] = len(pairs)
    result.attrs["frame_index"] = cand.attrs.get("frame_index", "built")
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
    from astradup.scoring.alignment import align
    from astradup.scoring.similarity import _half_step

    sim = frame_similarity(fa, fb)
    al = align(sim, fa.timestamps, fb.timestamps, cfg.match.frame_threshold, cfg.match.gap,
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


def run_query(
    path: str | os.PathLike[str],
    store_path: str | os.PathLike[str],
    config: AstradupConfig | None = None,
    top: int = 10,
    min_score: float = 0.5,
) -> pd.DataFrame:
    """Is this video already in the library? Extract one file, search the frame index kept beside
    the store (built first if missing), verify the best candidates, and return matches like
    pairs.csv rows (``a`` = the query, ``b`` = the library video), best first."""
    from astradup.index import VectorIndex

    cfg = config or AstradupConfig()
    res = extract_video(os.fspath(path), cfg)
    if isinstance(res, Failure):
        raise MediaError(res.path, res.message.split(": ", 1)[-1])
    if res.embeddings is None:
        raise AstradupError("query needs frame embeddings (features.embedding is empty)")
    index_path = Path(f"{store_path}.frames.faiss")
    manifest = Path(f"{index_path}.json")
    with Store(store_path, read_only=True) as st:
        if not (index_path.exists() and manifest.exists()):
            feats = st.load_features()
            s = _stack(feats)
            frame_index(store_path, s["ids"], s["frame_video"], s["frame_vecs"])
        state = json.loads(manifest.read_text())
        owner = np.repeat(np.asarray(state["ids"], dtype=np.int64), state["counts"])
        idx = VectorIndex.load(index_path)
        sims, rows = idx.search(res.embeddings, cfg.match.k)
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
