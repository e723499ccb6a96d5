"""The named stages the drivers in :mod:`astradup.execution.runner` are built from.

The data flow of a match is ``extract -> project -> search -> vote -> verify`` (then the pair
graph's expansion is verified too: :mod:`astradup.scoring.graph`); each step is a function here,
pure over arrays and features where it can be, so a benchmark or a notebook can call one stage
alone instead of copying it:

* :func:`assign_video_ids` / :func:`map_extract`: number the files in path order, then extract
  them, eagerly or on Dask, yielding results as they finish;
* :func:`find_candidates` / :func:`find_candidates_reduced`: search the frame index for candidate
  pairs (the library against itself);
* :func:`search_votes`: search for one query's frames and rank library videos by votes;
* :func:`orient_pairs`: turn each candidate pair the one way it is always scored;
* :func:`score_candidates` / :func:`verify_in_memory` / :func:`verify_streamed`: verify candidate
  pairs (align, fuse, label), in this process or in chunks on Dask (:func:`verify_chunks`);
* :func:`verify_query`: verify one query against its candidates;
* :func:`pairs_frame`: scored rows -> the pairs table.

Projection (keyframes through the saved PCA) is :meth:`SavedFrameIndex.project
<astradup.index.frames.SavedFrameIndex.project>`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.execution.extract import Failure
from astradup.features.video import VideoFeatures
from astradup.index.frames import frame_index, reduced_frame_index, stack_features
from astradup.labels import PAIR_COLUMNS
from astradup.paths import to_text
from astradup.scoring.pair import score_pairs
from astradup.store.store import Store

log = logging.getLogger(__name__)

VERIFY_PAIRS = 256  # most candidate pairs verified per chunk
EAGER_CHUNK_PAIRS = 64  # pairs per chunk verified in this process (a progress step; a thread's task)
VERIFY_FRAMES = 65_536  # most frames of the videos one verification chunk loads (~0.4 GB)
# A LocalCluster is worth its start-up (seconds) only for this many candidate pairs or more.
DASK_MATCH_ABOVE = 20_000

Chunk = tuple[list[tuple[int, int]], dict[int, VideoFeatures]]


def progress_bar(iterable: Iterable, total: int, desc: str, enabled: bool, unit: str = "video") -> Iterator:
    """``iterable`` with a tqdm bar when ``enabled``."""
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True)


# -- extract ----------------------------------------------------------------------------------------

def task_key(prefix: str, path: str) -> str:
    """A Dask task key for ``path``: its SHA-1 (of the file system's bytes, so a name that is not
    valid UTF-8 hashes as well as any other) and a random suffix (a file may be submitted twice)."""
    digest = hashlib.sha1(os.fsencode(path)).hexdigest()
    return f"{prefix}-{digest}-{uuid.uuid4().hex[:6]}"


def assign_video_ids(paths: Iterable[str], known: dict[str, int], first: int) -> dict[str, int]:
    """The video id each of ``paths`` will be stored under: a path the store already holds keeps
    its id (``known``, keyed by :func:`astradup.paths.to_text`); new paths get ``first``,
    ``first + 1``, ... in sorted path order. Ids are handed out before extraction starts, so they
    do not depend on which file a Dask worker finishes first.

    >>> assign_video_ids(["b.mp4", "c.mp4", "a.mp4"], {"b.mp4": 1}, first=2)
    {'a.mp4': 2, 'b.mp4': 1, 'c.mp4': 3}
    """
    ids: dict[str, int] = {}
    nxt = first
    for p in sorted(paths):
        old = known.get(to_text(p))
        if old is None:
            old, nxt = nxt, nxt + 1
        ids[p] = int(old)
    return ids


def eager_map(fn: Callable, paths: list[str], cfg: AstradupConfig) -> Iterator[tuple[str, Any]]:
    """``(path, fn(path, cfg))`` for each path, in this process and in order."""
    for p in paths:
        yield p, fn(p, cfg)


def dask_map(client: Any, fn: Callable, paths: list[str], cfg: AstradupConfig, in_flight: int) -> Iterator[tuple[str, Any]]:
    """Submit with a bounded window and yield (path, result) as they finish (any order). A task
    that dies with its worker yields a :class:`Failure` of stage "worker"."""
    from distributed import as_completed

    # the config (about 1 KB pickled) travels inside each task rather than as scattered data: a
    # scattered copy is a dependency, and a worker killed while holding it could leave every
    # waiting task cancelled for "lost dependencies" (seen in tests/test_cluster.py)
    futures = {}

    def submit(p: str):
        fut = client.submit(fn, p, cfg, key=task_key("extract", p), pure=False)
        futures[fut] = p
        return fut

    ac = as_completed([submit(p) for p in paths[:in_flight]])
    rest = iter(paths[in_flight:])
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


def map_extract(fn: Callable, paths: list[str], cfg: AstradupConfig, *, eager: bool, scheduler: str | None = None,
                gpus: bool = False, workers: int | None = None,
                on_dashboard: Callable[[str], None] | None = None,
                performance_report: str | os.PathLike[str] | None = None) -> Generator[tuple[str, Any], None, None]:
    """``fn(path, cfg)`` over ``paths``: in this process when ``eager``, else on a Dask cluster (a
    LocalCluster unless ``scheduler`` names one; ``gpus`` asks dask-cuda's LocalCUDACluster).
    When Dask runs, its performance report is saved at ``performance_report`` (HTML) if given."""
    if eager or not paths:
        yield from eager_map(fn, paths, cfg)
        return
    from astradup.execution.cluster import dask_client
    from astradup.execution.cluster import performance_report as report

    with dask_client(scheduler, gpus, workers) as client, \
            (report(performance_report) if performance_report else contextlib.nullcontext()):
        if on_dashboard:
            on_dashboard(client.dashboard_link)
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        yield from dask_map(client, fn, paths, cfg, in_flight=4 * n_workers)


# -- search (library against itself) ---------------------------------------------------------------

def find_candidates(features: dict[int, VideoFeatures], cfg: AstradupConfig,
                    store_path: str | os.PathLike[str] | None = None,
                    fingerprints: pd.DataFrame | None = None) -> pd.DataFrame:
    """Candidate pairs (a, b video ids) from FAISS: frame neighbours, video descriptors, hashes."""
    from astradup.index import candidate_pairs

    s = stack_features(features)
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


# -- search and vote (one query) -------------------------------------------------------------------

def search_votes(index: Any, owner: np.ndarray, queries: np.ndarray, k: int, min_sim: float, n: int) -> list[int]:
    """The ``n`` library videos most voted for by a query's frames: each query vector votes for
    the video of each of its ``k`` nearest index rows at cosine >= ``min_sim``.

    Args:
        index: a searchable index (``search(queries, k) -> (sims, rows)``).
        owner: video id of each index row.
        queries: (n_frames, dim) float32 query vectors, as the index holds them.
    """
    sims, rows = index.search(queries, k)
    ok = (rows >= 0) & (sims >= min_sim)
    votes = pd.Series(owner[rows[ok]]).value_counts()
    return [int(v) for v in votes.index[:n]]


# -- verify ----------------------------------------------------------------------------------------

def orient_pairs(cand: pd.DataFrame, rel: pd.Series) -> pd.DataFrame:
    """``cand`` (video ids ``a``, ``b``) with each pair turned so that ``a`` is the video whose
    relative path (``rel``, by video id) sorts first, as pairs.csv shows it. The scorer is not
    exactly symmetric (alignment walks from ``a``), so a pair is always scored the same way round,
    whatever ids its videos got. Other columns (votes, similarities) are symmetric and stay."""
    if not len(cand):
        return cand
    a, b = cand["a"].to_numpy(copy=True), cand["b"].to_numpy(copy=True)
    swap = rel.loc[a].to_numpy() > rel.loc[b].to_numpy()
    if not swap.any():
        return cand
    out = cand.copy()
    out["a"], out["b"] = np.where(swap, b, a), np.where(swap, a, b)
    return out


def score_candidates(pairs: Iterable[tuple[int, int]], features: dict[int, VideoFeatures], cfg: AstradupConfig) -> list[dict]:
    """Verify candidate pairs: a pure function over features, one row per pair (with a_id, b_id)."""
    pairs = list(pairs)
    rows = []
    # one call per chunk: the learned scorer runs its model once over all of the chunk's pairs
    for (a, b), ps in zip(pairs, score_pairs([(features[a], features[b]) for a, b in pairs], cfg)):
        row = ps.row()
        row["a_id"], row["b_id"] = int(a), int(b)
        rows.append(row)
    return rows


def score_chunk(pairs: list[tuple[int, int]], features: dict[int, VideoFeatures], cfg: AstradupConfig,
                threshold: float, stubs: bool = False) -> list[dict]:
    """:func:`score_candidates`, keeping rows scoring ``threshold`` or more: the task a Dask worker
    runs. With ``stubs`` a row below it is kept as its verdict only (ids, score, label; no
    explanation), which is what the pair graph needs of it (:mod:`astradup.scoring.graph`), or
    whole where the graph may change it (labelled more than "different"; a stub the graph would
    promote is verified again in full: :func:`astradup.scoring.graph.promotable_stubs`)."""
    rows = score_candidates(pairs, features, cfg)
    if stubs:
        return [r if r["score"] >= threshold or r["label"] != "different" else
                {"a_id": r["a_id"], "b_id": r["b_id"], "score": r["score"], "label": r["label"], "partial": False,
                 "explanation": ""} for r in rows]
    return [r for r in rows if r["score"] >= threshold]


@contextmanager
def match_client(use_dask: bool, scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for verification when ``use_dask`` (``scheduler``'s cluster, else a
    LocalCluster of ``workers`` processes), else None (verify in this process)."""
    if not use_dask:
        yield None
        return
    from astradup.execution.cluster import dask_client

    with dask_client(scheduler, False, workers) as client:
        yield client


def verify_chunks(chunks: Iterable[Chunk], cfg: AstradupConfig, client: Any = None, threshold: float = 0.0,
                  in_flight: int | None = None, stubs: bool = False, threads: int = 1) -> Iterator[list[dict]]:
    """Score each chunk (its pairs, the features of their videos); yield the rows chunk by chunk,
    in the chunks' order.

    With ``client`` the chunks run on its workers, at most ``in_flight`` at a time (default: twice
    the workers), so this process holds only those chunks' features and stays the store's only
    reader (workers need no access to the store). A chunk whose task fails (its worker died,
    ``KilledWorker``) is scored again here, so the rows always equal the eager ones.
    Without ``client``, ``threads`` > 1 scores that many chunks at once in this process
    (:func:`verify_threaded`); the rows are the same.
    """
    if client is None:
        if threads > 1:
            yield from verify_threaded(chunks, cfg, threads, threshold, stubs)
            return
        for pairs, feats in chunks:
            yield score_chunk(pairs, feats, cfg, threshold, stubs)
        return
    from distributed import wait

    window = in_flight or 2 * max(1, len(client.scheduler_info().get("workers", {})))
    run = uuid.uuid4().hex[:8]  # the config travels inside each task, as in dask_map
    pending: list[tuple[Any, Chunk]] = []

    def collect(fut: Any, chunk: Chunk) -> list[dict]:
        try:
            rows = fut.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker and friends: score it here instead
            log.warning("a verification chunk failed on the cluster (%s: %s); scoring it in this process",
                        type(exc).__name__, exc)
            rows = score_chunk(chunk[0], chunk[1], cfg, threshold, stubs)
        fut.release()
        return rows

    for i, chunk in enumerate(chunks):
        pending.append((client.submit(score_chunk, chunk[0], chunk[1], cfg, threshold, stubs,
                                      key=f"verify-{run}-{i}", pure=False), chunk))
        if len(pending) >= window:
            wait([pending[0][0]])
            yield collect(*pending.pop(0))
    while pending:
        yield collect(*pending.pop(0))


def verify_threaded(chunks: Iterable[Chunk], cfg: AstradupConfig, threads: int, threshold: float = 0.0,
                    stubs: bool = False) -> Iterator[list[dict]]:
    """:func:`score_chunk` over ``chunks`` on ``threads`` threads of this process, at most twice
    that many chunks in flight; rows yielded chunk by chunk, in the chunks' order.

    A match is mostly decoding (the geometric and exact-moment checks), keypoints and array
    code, which release the GIL, so a second core nearly halves it without a cluster's start-up
    or copies of the features (benchmarks/RESULTS.md, "Issue 10 status"). Each thread decodes
    with one FFmpeg thread (:func:`astradup.media.probe.one_decoder_thread`), and the frame caches
    the checks share are locked per file, so a file is decoded once for all threads. Scoring a
    pair is a pure function of the two videos' features and files, so the rows equal the
    one-thread ones."""
    from concurrent.futures import ThreadPoolExecutor

    from astradup.media.probe import one_decoder_thread

    with ThreadPoolExecutor(threads, thread_name_prefix="astradup-verify", initializer=one_decoder_thread) as pool:
        pending: list[Any] = []
        try:
            for pairs, feats in chunks:
                pending.append(pool.submit(score_chunk, pairs, feats, cfg, threshold, stubs))
                if len(pending) >= 2 * threads:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for fut in pending:  # an error or a closed generator: do not start what is queued
                fut.cancel()


def feature_chunks(pairs: list[tuple[int, int]], features: dict[int, VideoFeatures], size: int) -> Iterator[Chunk]:
    """Consecutive chunks of ``size`` pairs, each with the features of its videos only."""
    for i in range(0, len(pairs), size):
        chunk = pairs[i : i + size]
        yield chunk, {v: features[v] for v in {x for p in chunk for x in p}}


def verify_in_memory(cand: pd.DataFrame, features: dict[int, VideoFeatures], cfg: AstradupConfig,
                     progress: bool = False, client: Any = None, threshold: float = 0.0,
                     stubs: bool = False, threads: int = 1) -> list[dict]:
    """Verify every candidate pair against features already loaded: EAGER_CHUNK_PAIRS pairs per
    progress step in this process (on ``threads`` threads; fewer, down to one, where that leaves
    a thread idle), VERIFY_PAIRS per task on ``client``'s workers."""
    pairs = list(zip(cand["a"].astype(int).tolist(), cand["b"].astype(int).tolist()))
    size = VERIFY_PAIRS if client is not None else max(1, min(EAGER_CHUNK_PAIRS, -(-len(pairs) // (2 * threads))))
    rows: list[dict] = []
    parts = verify_chunks(feature_chunks(pairs, features, size), cfg, client, threshold, stubs=stubs, threads=threads)
    for part in progress_bar(parts, -(-len(pairs) // size), "match", progress, unit="chunk"):
        rows.extend(part)
    return rows


def pair_chunks(a: np.ndarray, b: np.ndarray, n_frames: dict[int, int]) -> Iterator[tuple[int, int]]:
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
                    progress: bool = False, client: Any = None, stubs: bool = False, threads: int = 1) -> list[dict]:
    """Verify candidate pairs chunk by chunk, reading only each chunk's videos from the store.

    Pairs are sorted by ``a`` so a chunk's ``a`` side is a few videos; each chunk (at most
    VERIFY_PAIRS pairs and VERIFY_FRAMES frames of distinct videos) loads its videos' features,
    scores its pairs and drops the features: here, one after another, or on ``client``'s workers
    (:func:`verify_chunks`; on ``threads`` threads without one). Rows scoring below ``threshold`` are dropped as they come (kept as
    verdict-only stubs with ``stubs``: see :func:`score_chunk`).
    """
    order = cand.sort_values(["a", "b"], kind="stable")
    a = order["a"].to_numpy(dtype=np.int64)
    b = order["b"].to_numpy(dtype=np.int64)
    fc = st.frame_counts()
    n_frames = dict(zip(fc["video_id"].astype("int64").tolist(), fc["n_frames"].fillna(0).astype("int64").tolist()))
    chunks = list(pair_chunks(a, b, n_frames))
    del n_frames

    def load() -> Iterator[Chunk]:
        for lo, hi in chunks:
            ca, cb = a[lo:hi], b[lo:hi]
            yield list(zip(ca.tolist(), cb.tolist())), st.load_features(np.union1d(ca, cb).tolist())

    rows: list[dict] = []
    for part in progress_bar(verify_chunks(load(), cfg, client, threshold, stubs=stubs, threads=threads), len(chunks), "match", progress,
                             unit="chunk"):
        rows.extend(part)
    return rows


def verify_query(query: VideoFeatures, query_name: str, candidates: list[int], features: dict[int, VideoFeatures],
                 names: pd.Series, cfg: AstradupConfig, min_score: float, top: int) -> pd.DataFrame:
    """Score one query against each candidate video id (``features`` holds theirs); the ``top``
    rows scoring ``min_score`` or more, as pairs rows (``a`` = ``query_name``, ``b`` = the
    candidate's name in ``names``), best first."""
    rows_out = []
    for vid, ps in zip(candidates, score_pairs([(query, features[vid]) for vid in candidates], cfg)):
        if ps.score >= min_score:
            row = ps.row()
            row["a"], row["b"] = query_name, names.loc[vid]
            rows_out.append(row)
    df = pd.DataFrame(rows_out, columns=list(PAIR_COLUMNS))
    return df.sort_values("score", ascending=False).head(top).reset_index(drop=True)


# -- the pairs table -------------------------------------------------------------------------------

def pairs_frame(rows: list[dict], rel: pd.Series, threshold: float) -> pd.DataFrame:
    """Scored rows -> the pairs table: a/b as relative paths with a < b, over the threshold, best first."""
    columns = [*PAIR_COLUMNS, "a_id", "b_id"]
    df = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    if len(df):
        ra, rb = rel.loc[df["a_id"]].to_numpy(), rel.loc[df["b_id"]].to_numpy()
        swap = ra > rb
        df["a"], df["b"] = np.where(swap, rb, ra), np.where(swap, ra, rb)
        for x, y in (("a_start", "b_start"), ("a_end", "b_end"), ("a_id", "b_id")):
            xa, ya = df[x].to_numpy(copy=True), df[y].to_numpy(copy=True)
            df[x], df[y] = np.where(swap, ya, xa), np.where(swap, xa, ya)
        df = df[df["score"] >= threshold].sort_values(["score", "a", "b"], ascending=[False, True, True]).reset_index(drop=True)
    return df
