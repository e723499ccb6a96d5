"""The index, match and query jobs: thin drivers over the stages of :mod:`astradup.execution.stages`.

``run_index`` scans a folder and extracts what changed (eagerly or mapped on Dask) into the store;
``run_match`` searches the frame index for candidates and verifies them; ``run_query`` does the
same for one file against the library. The frame-index cache they share lives in
:mod:`astradup.index.frames`. Notebooks and scripts usually call these through
:class:`astradup.Library`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from astradup.config import AstradupConfig
from astradup.errors import AstradupError, MediaError, StoreError
from astradup.execution.cluster import default_workers
from astradup.execution.extract import Failure, extract_video
from astradup.execution.query import extract_query
from astradup.execution.run_metrics import export_quietly
from astradup.execution.stages import (
    DASK_MATCH_ABOVE,
    assign_video_ids,
    find_candidates,
    find_candidates_reduced,
    map_extract,
    match_client,
    orient_pairs,
    pairs_frame,
    search_votes,
    verify_in_memory,
    verify_query,
    verify_streamed,
)
from astradup.features.specs import feature_key, legacy_feature_key
from astradup.index.frames import SavedFrameIndex, open_frame_index, use_reduced_index
from astradup.labels import PAIR_COLUMNS
from astradup.media.files import check_file, content_hash, discover
from astradup.paths import to_text
from astradup.provenance import versions
from astradup.scoring.graph import apply_graph, expansion_pairs, promotable_stubs
from astradup.scoring.pair import score_pair
from astradup.store.compact import compact_store, compactable
from astradup.store.decisions import mark_decisions
from astradup.store.rows import VideoRecord
from astradup.store.store import Store

log = logging.getLogger(__name__)

WRITE_BATCH = 64  # extracted videos committed in one transaction (CommitBatches)
WRITE_EVERY_S = 2.0  # ... or fewer, when this long has passed since the last commit


def new_run_id() -> str:
    """A run id that sorts by start time: ``20260101T120000-1a2b3c``."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


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
    metrics_file: str | None = None
    performance_report: str | None = None

    def lines(self) -> list[str]:
        return [
            f"files found      {self.n_files}",
            f"indexed          {self.n_indexed}",
            f"unchanged        {self.n_skipped}",
            f"failed           {self.n_failed}  (see the failures table)",
            f"removed          {self.n_removed}  (files gone from the folder)",
            f"time             {self.seconds:.1f} s  ({self.videos_per_hour:,.0f} videos/hour)",
            f"store            {self.store}",
            *([f"run metrics      {self.metrics_file}"] if self.metrics_file else []),
            *([f"dask report      {self.performance_report}"] if self.performance_report else []),
        ]


def migrate_feature_keys(st: Store, cfg: AstradupConfig) -> int:
    """Relabel videos that carry ``cfg``'s :func:`~astradup.features.specs.legacy_feature_key`
    (stores written before the key was derived from the extractor registry) with its
    :func:`~astradup.features.specs.feature_key`. The settings the legacy key covered are the
    ones that varied then; every other parameter the new key holds had its default (and every
    extractor version 1), so those rows hold exactly the features the new key describes and are
    not re-extracted. The saved frame index is rebuilt once (its fingerprints hold the keys).
    Returns how many videos were relabelled."""
    n = st.relabel_feature_key(legacy_feature_key(cfg), feature_key(cfg))
    if n:
        log.info("%s: %d videos relabelled with the registry-derived feature key %s", st.path, n, feature_key(cfg))
    return n


def check_feature_keys(st: Store, cfg: AstradupConfig) -> int:
    """Warn when videos in the store were extracted with other feature settings than ``cfg``'s
    (for example by an AstraDup that kept 1280-d embeddings, before ``features.compact_dim``):
    their features are not comparable with new ones. ``astradup index`` re-extracts exactly those
    videos (or, for full embeddings where compact ones are wanted, projects them:
    :mod:`astradup.store.compact`). Rows still under the legacy key of the same settings count as
    current (a read-only store cannot be relabelled). Returns how many there are."""
    base = cfg.replace(**{"sampling.keyframes_only": False})
    want = feature_key(base)
    keys = st.sql("SELECT feature_key, count(*) AS n FROM videos GROUP BY feature_key")
    stale = int(keys.loc[~keys["feature_key"].isin([want, legacy_feature_key(base)]), "n"].sum()) if len(keys) else 0
    if stale:
        n_proj = len(compactable(st, base)[0])
        how = (f"; {n_proj} of them hold full 1280-d embeddings, which `astradup index` projects onto "
               f"features.compact_dim without decoding" if n_proj else "")
        log.warning("%s: %d of %d videos were indexed with other feature settings than this config's "
                    "(feature key %s): run `astradup index` again to bring them up to date%s",
                    st.path, stale, int(keys["n"].sum()), want, how)
    return stale


class CommitBatches:
    """The index run's writes: extracted videos are committed together (:meth:`Store.write_videos`)
    once ``WRITE_BATCH`` are waiting or ``every`` seconds (default ``WRITE_EVERY_S``; 0: each
    video on its own) have passed since the last commit, and at the end. One transaction per
    video cost the driver 20-70 ms a video (measured 2026-11-29/30, 20-60 frames a video). A
    killed run loses at most the videos not yet committed, which the next run extracts again.
    The progress bar counts committed (and failed) videos, so what it shows is what a resumed
    run skips."""

    def __init__(self, st: Store, total: int, progress: bool, every: float = WRITE_EVERY_S):
        self.st, self.every, self.last, self.committed = st, every, time.monotonic(), 0
        self.buf: list[VideoRecord] = []
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="index", unit="video", dynamic_ncols=True)

    def __enter__(self) -> CommitBatches:
        return self

    def add(self, item: VideoRecord) -> None:
        """Queue one video; commit the queue when it is full or old enough."""
        self.buf.append(item)
        if len(self.buf) >= WRITE_BATCH or time.monotonic() - self.last >= self.every:
            self.flush()

    def count_failure(self) -> None:
        """A video that failed: nothing to commit, one step of the progress bar."""
        if self.bar is not None:
            self.bar.update(1)

    def flush(self) -> None:
        n = len(self.buf)
        if n:
            self.st.write_videos(self.buf)
            self.buf = []
            self.committed += n
            if self.bar is not None:
                self.bar.update(n)
        self.last = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        try:
            self.flush()  # also after an error: what was extracted is kept
        finally:
            if self.bar is not None:
                self.bar.close()


def _to_index(st: Store, files: list[Path], known: dict[str, Any], fkey: str,
              run_id: str) -> tuple[list[str], dict[str, tuple[int, float, str]], int, int]:
    """Which of ``files`` :func:`run_index` extracts: those not in the store unchanged (same size,
    mtime, content hash and feature key). Files that cannot be opened are recorded as failures.
    Returns (pending paths, (size, mtime, hash) of every readable file, skipped, failed)."""
    pending: list[str] = []
    stats: dict[str, tuple[int, float, str]] = {}
    n_skipped = n_failed = 0
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
        k = known.get(to_text(p))
        if k is not None and k.size == sr.st_size and abs(k.mtime - sr.st_mtime) < 1e-6 and k.content_hash == digest and k.feature_key == fkey:
            n_skipped += 1
            continue
        pending.append(p)
    return pending, stats, n_skipped, n_failed


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
    metrics_file: str | os.PathLike[str] | None = None,
    pushgateway: str | None = None,
    commit_every: float = WRITE_EVERY_S,
) -> IndexSummary:
    """Index every video under ``media_dir`` into the store, incrementally.

    Unchanged files (same path, size, mtime, content hash and feature settings) are skipped; bad
    files are recorded in the ``failures`` table and the run goes on. Extraction runs on Dask
    (a LocalCluster unless ``scheduler`` names one; ``eager=True`` runs in this process); results
    stream back and this process is the store's only writer. Video ids are handed out in path
    order before extraction starts (a video already in the store keeps its id), so a run on Dask
    numbers the videos as an eager one does, whatever order they finish in.

    The run's Prometheus gauges are written to ``metrics_file`` (default ``<store>.metrics.prom``)
    and pushed to ``pushgateway`` when given; when Dask ran, its performance report is saved as
    ``<store>.runs/<run_id>/dask-performance.html``.

    Extracted videos are committed together, at least every ``commit_every`` seconds
    (:class:`CommitBatches`; 0 commits each video on its own): a killed run loses at most the
    videos extracted since the last commit, and the next run extracts them again.
    """
    cfg = config or AstradupConfig()
    root = Path(media_dir).resolve()
    t0 = time.perf_counter()
    run_id = new_run_id()
    fkey = feature_key(cfg)
    files = discover(root)
    with Store(store_path) as st:
        prev_root = st.media_root
        if prev_root and prev_root != to_text(root):
            log.warning("store %s was indexed from %s; now indexing %s", store_path, prev_root, to_text(root))
        st.set_meta("media_root", to_text(root))
        migrate_feature_keys(st, cfg)
        compact_store(st, cfg)  # full embeddings of otherwise current videos: projected, not re-extracted
        st.start_run(run_id, "index", cfg.to_dict(), versions(), to_text(root), scheduler or ("eager" if eager else "local"))
        known = {r.path: r for r in st.known_files().itertuples()}
        pending, stats, n_skipped, n_failed = _to_index(st, files, known, fkey, run_id)
        n_removed = st.remove_missing({str(f) for f in files})
        ids = assign_video_ids(pending, {path: int(k.video_id) for path, k in known.items()}, st.next_video_id())
        n_indexed = 0
        dashboard = None

        def seen_dashboard(link: str) -> None:
            nonlocal dashboard
            dashboard = link
            if on_dashboard:
                on_dashboard(link)

        def consume(results) -> None:
            nonlocal n_indexed, n_failed
            batches = CommitBatches(st, len(pending), progress, commit_every)
            try:
                with batches:
                    for p, res in results:
                        if isinstance(res, Failure):
                            st.record_failure(run_id, p, res.stage, res.error_class, res.message)
                            log.warning("%s", res.message)
                            n_failed += 1
                            batches.count_failure()
                            continue
                        size, mtime, digest = stats[p]
                        batches.add(VideoRecord(res, os.path.relpath(p, root), size, mtime, digest, fkey, run_id,
                                                ids[p]))
            finally:
                n_indexed += batches.committed

        status = "failed"
        perf_report = run_dir(store_path, run_id) / "dask-performance.html"
        try:
            results = map_extract(extract_video, pending, cfg, eager=eager, scheduler=scheduler, gpus=gpus,
                                  workers=workers, on_dashboard=seen_dashboard, performance_report=perf_report)
            with contextlib.closing(results):
                consume(results)
            status = "ok"
        finally:
            secs = time.perf_counter() - t0
            vph = n_indexed / secs * 3600 if secs > 0 else 0.0
            st.end_run(run_id, status, n_files=len(files), n_indexed=n_indexed, n_skipped=n_skipped,
                       n_failed=n_failed, seconds=secs, videos_per_hour=vph)
            prom = export_quietly(st, "index", metrics_file, pushgateway)
    return IndexSummary(run_id, str(store_path), len(files), n_indexed, n_skipped, n_failed, n_removed, secs, vph,
                        dashboard, str(prom) if prom else None, str(perf_report) if perf_report.exists() else None)


def run_dir(store_path: str | os.PathLike[str], run_id: str) -> Path:
    """The folder for one run's side outputs (Dask's performance report): ``<store>.runs/<run_id>``."""
    return Path(f"{os.fspath(store_path)}.runs") / run_id


def run_match(
    store_path: str | os.PathLike[str],
    config: AstradupConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    min_score: float | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    workers: int | None = None,
    eager: bool = False,
    metrics_file: str | os.PathLike[str] | None = None,
    pushgateway: str | None = None,
) -> pd.DataFrame:
    """Retrieve candidates, verify and fuse them, and write the pairs to the store (and CSV).

    Verification runs in chunks on Dask when ``scheduler`` names a cluster, or on a LocalCluster
    of ``workers`` processes when there are ``DASK_MATCH_ABOVE`` candidate pairs or more (unless
    ``eager``), else here on ``workers`` threads (one per core: ``stages.verify_threaded``). The
    pairs are the same on every path. This process stays the store's only reader.

    Up to ``match.reduce_above`` sampled frames every frame is indexed at full dimension and
    hashes propose candidates too (:func:`astradup.index.frames.frame_index`). Above it the store
    is streamed: PCA-reduced keyframes are indexed, no all-pairs hash source (it grows as
    frames^2), candidates verified in chunks (:func:`astradup.execution.stages.verify_streamed`).
    Then the pair graph (``match.expand_top``; :mod:`astradup.scoring.graph`): pairs of copies of
    a common video that the search did not propose are verified too, a ``similar`` or ``different``
    pair of two such copies is reported ``near``, and a partial match the verified pairs around it
    contradict is held back to ``similar``; verdicts under ``min_score`` count there (those it
    would promote verified again in full), then are dropped.

    Returns the pairs.csv frame: a, b (paths relative to the media folder), score, label,
    visual, audio, metadata, confidence, a_start, a_end, b_start, b_end, partial, explanation,
    decision. ``label`` is always the model's call; ``decision`` is the reviewers' standing
    decision about the pair (``duplicate`` | ``not-duplicate``, empty when none stands: see
    :mod:`astradup.review.decisions`). Groups, plans and the review queue honour it; a pair marked
    ``not-duplicate`` is never proposed as a duplicate while both files are unchanged.
    The run's Prometheus gauges go to ``metrics_file`` (default ``<store>.metrics.prom``) and to
    ``pushgateway`` when given. Attrs: ``run_id``, ``n_candidates``, ``frame_index`` ("built" |
    "extended" | "reused"), ``index_mode`` ("full" | "reduced")."""
    cfg = config or AstradupConfig()
    threshold = cfg.match.min_score if min_score is None else min_score
    t0 = time.perf_counter()
    run_id = new_run_id()
    with Store(store_path) as st:
        reduced = use_reduced_index(st, cfg)
        if reduced:
            n_videos = len(st.video_ids())
        else:
            feats = st.load_features()
            n_videos = len(feats)
        if n_videos < 2:
            raise StoreError(f"{store_path}: {n_videos} indexed video(s); matching needs at least 2")
        for c in {cfg, cfg.replace(**{"sampling.keyframes_only": False})}:  # as indexed; as queried
            migrate_feature_keys(st, c)
        check_feature_keys(st, cfg)
        st.start_run(run_id, "match", cfg.to_dict(), versions(), st.media_root)
        if reduced:
            rel = st.sql("SELECT video_id, rel_path FROM videos").set_index("video_id")["rel_path"]
            cand = find_candidates_reduced(st, cfg, store_path, progress)
        else:
            rel = st.videos().set_index("video_id")["rel_path"]
            cand = find_candidates(feats, cfg, store_path, st.video_fingerprints())
        cand = orient_pairs(cand, rel)
        n_candidates = len(cand)
        use_dask = scheduler is not None or (not eager and n_candidates >= DASK_MATCH_ABOVE)
        threads = 1 if use_dask else (workers or default_workers())  # verifying here: one thread per core
        with match_client(use_dask, scheduler, workers) as client:
            def verify(pairs: pd.DataFrame, keep: float = threshold) -> list[dict]:
                # rows under ``keep`` stay as verdicts: the pair graph weighs them too
                if reduced:
                    return verify_streamed(st, pairs, cfg, keep, progress, client, stubs=True, threads=threads)
                return verify_in_memory(pairs, feats, cfg, progress, client, keep, stubs=True, threads=threads)

            rows = verify(cand)
            if cfg.match.expand_top:
                more = orient_pairs(expansion_pairs(rows, cand, cfg), rel)
                log.info("%d more candidate pairs: copies of a common video", len(more))
                rows += verify(more) if len(more) else []
                n_candidates += len(more)
                redo = promotable_stubs(rows, cfg)  # the graph promotes them: their evidence, in full
                if len(redo):
                    again = {(r["a_id"], r["b_id"]): r for r in verify(orient_pairs(redo, rel), 0.0)}
                    rows = [again.get((r["a_id"], r["b_id"]), r) for r in rows]
        df = apply_graph(pairs_frame(rows, rel, 0.0), cfg)
        df = df[df["score"] >= threshold].sort_values(["score", "a", "b"], ascending=[False, True, True], kind="stable")
        df = df.reset_index(drop=True)
        df["decision"] = mark_decisions(st, df)  # reviewers' standing decisions (astradup.review)
        st.write_pairs(run_id, df)
        secs = time.perf_counter() - t0
        st.end_run(run_id, "ok", n_files=n_videos, n_indexed=len(df), seconds=secs)
        prom = export_quietly(st, "match", metrics_file, pushgateway)
    result = df[[*PAIR_COLUMNS, "decision"]].copy()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        result.to_csv(out, index=False)
    result.attrs["run_id"] = run_id
    result.attrs["n_candidates"] = n_candidates
    result.attrs["frame_index"] = cand.attrs.get("frame_index", "built")
    result.attrs["index_mode"] = "reduced" if reduced else "full"
    result.attrs["metrics_file"] = str(prom) if prom else None
    return result


def explain_pair(store_path: str | os.PathLike[str], a: str, b: str, config: AstradupConfig | None = None) -> dict[str, Any]:
    """Everything behind one pair's verdict: similarity matrix, aligned path, scores, top frames.

    ``a`` and ``b`` are paths relative to the media folder (as in pairs.csv) or absolute, in
    either order: the pair is scored, and comes back, the way pairs.csv has it (``a`` the one
    whose relative path sorts first), so the scores are the ones pairs.csv shows: where the last
    match's pair graph (:mod:`astradup.scoring.graph`) changed the pair's verdict, so does this,
    with the reason in ``explanation["transitive"]`` (the common video) or
    ``explanation["inconsistent"]`` (the checks against it).
    """
    from astradup.scoring.similarity import gated_similarity

    cfg = config or AstradupConfig()
    with Store(store_path, read_only=True) as st:
        v = st.videos()
        ids, rels = [], []
        for p in (a, b):
            hit = v[v["rel_path"].isin([p, to_text(p)]) | v["path"].isin([p, to_text(p)])]
            if hit.empty:
                raise AstradupError(f"{p}: not in store {store_path}")
            ids.append(int(hit["video_id"].iloc[0]))
            rels.append(str(hit["rel_path"].iloc[0]))
        feats = st.load_features(ids)
        last = st.sql("SELECT score, label, explanation FROM pairs WHERE run_id = (SELECT run_id FROM runs WHERE "
                      "kind = 'match' AND status = 'ok' ORDER BY started DESC LIMIT 1) AND a = ? AND b = ?", sorted(rels))
    if rels[0] > rels[1]:  # the way round run_match scores it (orient_pairs)
        a, b, ids = b, a, ids[::-1]
    fa, fb = feats[ids[0]], feats[ids[1]]
    ps = score_pair(fa, fb, cfg)
    # the last match's pair graph may have changed the verdict (astradup.scoring.graph): say so
    stored = json.loads(last["explanation"].iloc[0] or "{}") if len(last) else {}
    for key in ("transitive", "inconsistent"):
        if key in stored:
            ps.explanation[key] = stored[key]
            ps.label, ps.score = str(last["label"].iloc[0]), float(last["score"].iloc[0])
            ps.explanation["band"] = ps.label
    from astradup.scoring.alignment import align_any
    from astradup.scoring.similarity import half_step

    sim = gated_similarity(fa, fb, cfg.match)[0]  # low-information frames gated, as in scoring
    al = align_any(sim, fa.timestamps, fb.timestamps, cfg.match.frame_threshold, cfg.match.gap,
               half_step(fa.timestamps), half_step(fb.timestamps), fa.duration or None, fb.duration or None)
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


def load_frame_index(store_path: str | os.PathLike[str], config: AstradupConfig | None = None) -> SavedFrameIndex:
    """The frame index kept beside the store, read into memory (built first when missing), for a
    caller that queries many times: pass it to :func:`run_query` as ``frame_index``."""
    with Store(store_path, read_only=True) as st:
        return open_frame_index(st, store_path, config or AstradupConfig())


def run_query(
    path: str | os.PathLike[str],
    store_path: str | os.PathLike[str],
    config: AstradupConfig | None = None,
    top: int = 10,
    min_score: float = 0.5,
    frame_index: SavedFrameIndex | None = None,
) -> pd.DataFrame:
    """Is this video already in the library? Extract one file, search the frame index kept beside
    the store (built first if missing), verify the best candidates, and return matches like
    pairs.csv rows (``a`` = the query, ``b`` = the library video), best first.

    When the saved index is reduced, the query's keyframes are chosen with the saved
    ``keyframe_sim`` and projected with the saved PCA before the search. A reduced index whose
    PCA is missing or damaged is rebuilt first (with a warning), in the mode the config calls for.

    ``frame_index`` is that index already in memory (:func:`load_frame_index`), as a caller that
    queries many times keeps it; it is read from disk when None. Up to ``3 * top`` candidates are
    verified; one the store no longer holds (removed by a later index run) is left out. The
    result's ``attrs`` hold:

    - ``candidates``: the video ids the search proposed, most votes first;
    - ``query``: ``n_frames`` sampled, ``decoder``, and ``seconds`` of the extraction's own steps
      (``probe``, ``decode``, ``hash``, ``embed``, ``audio``; the audio overlaps the others, as the
      query is extracted with every core: :func:`astradup.execution.query.extract_query`);
    - ``seconds``: the time of each stage (``extract``, ``load_index``, ``project``, ``search``,
      ``load`` (candidates' features from the store), ``verify``) and the ``total``.
    """
    cfg = config or AstradupConfig()
    t0 = time.perf_counter()
    query = extract_query(path, cfg)  # extract, with every core
    if query.embeddings is None:
        raise AstradupError("query needs frame embeddings (features.embedding is empty)")
    t1 = time.perf_counter()
    with Store(store_path, read_only=True) as st:
        check_feature_keys(st, cfg)
        saved = frame_index if frame_index is not None else open_frame_index(st, store_path, cfg)
        t2 = time.perf_counter()
        vectors = saved.project(query.embeddings)  # project
        t3 = time.perf_counter()
        cand = search_votes(saved.index, saved.owner, vectors, cfg.match.k,  # search, vote
                            cfg.match.min_candidate_sim, max(top * 3, top))
        t4 = time.perf_counter()
        feats = st.load_features(cand)
        held = [v for v in cand if v in feats]
        names = (st.sql(f"SELECT video_id, rel_path FROM videos WHERE video_id IN ({', '.join('?' * len(held))})",
                        held) if held else pd.DataFrame({"video_id": [], "rel_path": []})).set_index("video_id")["rel_path"]
    t5 = time.perf_counter()
    out = verify_query(query, to_text(path), held, feats, names, cfg, min_score, top)  # verify
    t6 = time.perf_counter()
    out.attrs["candidates"] = cand
    out.attrs["query"] = {"n_frames": int(query.n_frames), "decoder": query.decoder, "seconds": dict(query.timings)}
    out.attrs["seconds"] = {"extract": t1 - t0, "load_index": t2 - t1, "project": t3 - t2, "search": t4 - t3,
                            "load": t5 - t4, "verify": t6 - t5, "total": t6 - t0}
    return out
