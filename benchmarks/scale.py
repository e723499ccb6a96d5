"""Scale benchmark of candidate retrieval (astradup.index) on synthetic features.

Design (what makes 1M videos x 60 frames plausible on 2 cores and 16 GB):

- Frames are indexed as 64-d PCA-reduced embeddings (``--frame-dim``; the feature stage projects
  with :class:`astradup.index.PCAReducer`), and only *keyframes*: a frame nearly identical
  (cosine >= ``--keyframe-sim``) to the last kept frame of its video is dropped
  (:func:`astradup.index.select_keyframes`). 60 frames at 1 fps in shots of ~8 s leave ~8 keyframes
  per video, so 1M videos index ~8M vectors (2 GB) instead of 60M (15 GB at 64-d, 300 GB at 1280-d).
- Video descriptors are ``--dim`` (1280) floats, projected to ``--video-index-dim`` (128) with a
  PCA fitted on the first batch, and searched for ``--video-k`` neighbours.
- Both indexes are ``VectorIndex(kind="auto", flat_max=ALL_PAIRS_FLAT_MAX)``: exact flat up to 20k
  vectors, IVF above (``nprobe`` of ~4 sqrt(n) lists scanned): for an all-pairs search IVF costs
  ~ n^1.5 where flat costs n^2. Candidate search is batched and reduces pairs with a sort on int64
  keys, so memory follows the number of candidate pairs, never n^2.

Synthetic library (seeded): 85% of families are single videos, 15% a source with 1 + Geometric(0.5)
copies; a copy is the whole source re-encoded (60%, per-frame cosine ~0.9) or a 10-30 s excerpt of
it inside new footage (40%). Videos are shots (mean 8 frames) around a topic (10k topics), so
unrelated videos of one topic are alike (cosine ~0.35) but far below the copy threshold.

Verification: every candidate pair is scored the way ``astradup match`` scores frames: the two
videos' frame similarity matrix (all 60 frames, read back from an on-disk float16 frame file, as
features are read back from DuckDB), DP alignment (:func:`astradup.scoring.alignment.align`) and
the visual score (:func:`astradup.scoring.similarity.visual_from_stats`), in ``--threads`` worker
processes. Reported: pairs verified, planted copies scoring >= "near" (0.85), and pairs of
different families (a family is a source and its copies) scoring >= 0.85: false duplicates.

Candidate search on a CPU IVF index runs as a list-wise join (:mod:`astradup.index.candidates`):
queries are grouped by the lists they probe and each list meets its queries in one BLAS product.

Each size runs in its own process so peak RSS (``ru_maxrss``) belongs to that size alone; the
verification workers' peak is reported separately.

Usage:
    python benchmarks/scale.py --quick                 # 10k videos, CI smoke
    python benchmarks/scale.py --sizes 10000,100000    # prints a table, updates RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from astradup.index import ALL_PAIRS_FLAT_MAX  # noqa: E402 - after the sys.path line

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
FRAMES = 60
N_TOPICS = 10_000


# -- synthetic library ---------------------------------------------------------------------------
def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian noise of expected norm ``sigma`` along the last axis."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma / math.sqrt(shape[-1]))


def _videos(rng: np.random.Generator, topics: np.ndarray, n: int, frames: int) -> np.ndarray:
    """``n`` original videos: (n, frames, d) unit frame vectors in shots around a topic."""
    d = topics.shape[1]
    t = rng.integers(0, topics.shape[0], n)
    cut = rng.random((n, frames)) < 1 / 8
    cut[:, 0] = False
    shot = np.cumsum(cut, axis=1)  # shot number of each frame, per video
    n_shots = shot[:, -1] + 1
    first = np.concatenate([[0], np.cumsum(n_shots)[:-1]])
    centres = _unit(
        np.repeat(topics[t], n_shots, axis=0) + _noise(rng, (int(n_shots.sum()), d), 2.3)
    )
    x = centres[first[:, None] + shot]
    x += _noise(rng, x.shape, 0.25)  # frames of one shot: cosine ~0.94 to each other
    return _unit(x)


def generate(n_videos: int, frame_dim: int, frames: int, seed: int, batch_families: int = 4096):
    """Yield batches ``(video_ids, frames (b, frames, d), truth [(src, copy, kind)])``."""
    rng = np.random.default_rng(seed)
    topics = _unit(rng.standard_normal((N_TOPICS, frame_dim), dtype=np.float32))
    next_id = 0
    while next_id < n_videos:
        nf = batch_families
        n_copies = np.where(rng.random(nf) < 0.15, 1 + rng.geometric(0.5, nf), 0)
        sizes = 1 + n_copies
        stop = np.searchsorted(np.cumsum(sizes), n_videos - next_id, side="right")
        sizes, n_copies = sizes[: max(stop, 1)], n_copies[: max(stop, 1)]
        sizes[-1] = min(sizes[-1], n_videos - next_id - int(sizes[:-1].sum()))
        n_copies = sizes - 1
        nf = sizes.size
        src = _videos(rng, topics, nf, frames)
        fam = np.repeat(np.arange(nf), n_copies)
        partial = rng.random(fam.size) < 0.4
        # a re-encode shifts every frame the same way (crop, colour, logo) plus a little
        # per-frame noise: cosine ~0.9 to the source, shots stay coherent
        copies = src[fam] + _noise(rng, (fam.size, 1, frame_dim), 0.4)
        copies += _noise(rng, copies.shape, 0.15)
        n_part = int(partial.sum())
        if n_part:
            filler = _videos(rng, topics, n_part, frames)
            # 10-30 s excerpts; shorter videos (store_match.py --frames < 30) get up to their length
            length = rng.integers(min(10, frames // 2), min(30, frames) + 1, n_part)
            s_off = rng.integers(0, frames - length + 1)
            d_off = rng.integers(0, frames - length + 1)
            t = np.arange(frames)
            take = (t >= d_off[:, None]) & (t < (d_off + length)[:, None])
            src_t = np.clip(t - d_off[:, None] + s_off[:, None], 0, frames - 1)
            rows = np.flatnonzero(partial)
            excerpt = copies[rows[:, None], src_t]
            copies[rows] = np.where(take[:, :, None], excerpt, filler)
        copies = _unit(copies)
        # order: each source followed by its copies
        ids = next_id + np.arange(sizes.sum())
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        src_ids = next_id + start
        copy_pos = np.concatenate(
            [s + 1 + np.arange(c) for s, c in zip(start, n_copies, strict=True)] or [[]]
        )
        batch = np.empty((ids.size, frames, frame_dim), np.float32)
        batch[start] = src
        batch[copy_pos.astype(np.int64)] = copies
        truth = np.column_stack([src_ids[fam], next_id + copy_pos, partial]).astype(np.int64)
        yield ids.astype(np.int64), batch, truth
        next_id += int(sizes.sum())


def lift(mean_frames: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Video descriptors of dimension ``w.shape[1]``: the mean frame lifted, plus noise."""
    x = mean_frames @ w
    x += _noise(rng, x.shape, 0.2)
    return _unit(x)


# -- one size, in its own process ------------------------------------------------------------------
class Stage:
    """Adds wall and process CPU seconds (all threads) of a block to ``clock[name]``."""

    def __init__(self, clock: dict[str, list[float]], name: str):
        self.clock, self.name = clock, name

    def __enter__(self) -> Stage:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        acc = self.clock.setdefault(self.name, [0.0, 0.0])
        acc[0] += time.perf_counter() - self.t0
        acc[1] += time.process_time() - self.c0


def _own_peak_rss_gb() -> float:
    """This process image's peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries that over
    ``exec``, so a spawned worker would report the peak of the parent it was forked from."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _verify_chunk(
    job: tuple[str, np.ndarray, np.ndarray, int, int],
) -> tuple[np.ndarray, float, float]:
    """Visual scores of pairs (a[i], b[i]) from the frame store; runs in a worker process."""
    from astradup.config import MatchConfig
    from astradup.scoring.alignment import align
    from astradup.scoring.similarity import visual_from_stats

    path, a, b, n_f, dim = job
    c0 = time.process_time()
    m = MatchConfig()
    ts = np.arange(n_f, dtype=np.float64)  # 1 fps
    dur = float(n_f)
    out = np.zeros(a.size)
    size = n_f * dim * 2
    fd = os.open(path, os.O_RDONLY)

    def read(v: int) -> np.ndarray:
        raw = os.pread(fd, size, v * size)
        return np.frombuffer(raw, np.float16).reshape(n_f, dim).astype(np.float32)

    last_a, fa = -1, None
    for i, (va, vb) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        if va != last_a:
            last_a, fa = va, read(va)
        sim = fa @ read(vb).T
        al = align(sim, ts, ts, m.frame_threshold, m.gap, 0.5, 0.5, dur, dur)
        if al is None:
            best, bg = float(sim.max()), float(np.median(sim))
            out[i] = visual_from_stats(best, bg, 0.0, 0.0, 0.0, 0.0, dur, False, m)
            continue
        cov_a = min((al.a_end - al.a_start) / dur, 1.0)
        cov_b = min((al.b_end - al.b_start) / dur, 1.0)
        seg = min(al.a_end - al.a_start, al.b_end - al.b_start)
        # synthetic frames carry no hashes: "exact" is out of reach, "near" (0.85) is the bar
        out[i] = visual_from_stats(al.path_sim, al.background, 0.0, cov_a, cov_b, seg, dur, True, m)
    os.close(fd)
    return out, time.process_time() - c0, _own_peak_rss_gb()


def verify_pairs(
    store_file: Path,
    a: np.ndarray,
    b: np.ndarray,
    frames: int,
    dim: int,
    workers: int,
    chunk: int = 4096,
) -> tuple[np.ndarray, float, float]:
    """Scores of every pair, in ``workers`` spawned processes; also their CPU s and peak RSS GB."""
    import multiprocessing as mp

    order = np.argsort(a, kind="stable")  # neighbouring pairs share pages of the frame store
    jobs = [
        (str(store_file), a[order[i : i + chunk]], b[order[i : i + chunk]], frames, dim)
        for i in range(0, a.size, chunk)
    ]
    scores = np.zeros(a.size)
    cpu, rss = 0.0, 0.0
    with mp.get_context("spawn").Pool(max(1, workers)) as pool:
        for (part, c, r), i in zip(
            pool.imap(_verify_chunk, jobs), range(0, a.size, chunk), strict=True
        ):
            scores[order[i : i + chunk]] = part
            cpu += c
            rss = max(rss, r)
    return scores, cpu, rss


def run_one(args: argparse.Namespace, n: int) -> dict:
    import faiss

    from astradup.index import PCAReducer, VectorIndex, candidate_pairs, select_keyframes

    t_all = time.perf_counter()
    load_start = os.getloadavg()[0]
    rng = np.random.default_rng(args.seed + 1)
    w = rng.standard_normal((args.frame_dim, args.dim), dtype=np.float32) / np.sqrt(args.frame_dim)
    key_vecs, key_video, desc_parts, truth_parts, vid_parts = [], [], [], [], []
    pca = None
    clock = {"keyframes": [0.0, 0.0], "pca": [0.0, 0.0]}
    n_frames = 0
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    # raw float16 rows, video i at byte i * frames * dim * 2; written and read with plain file I/O
    # (a memory map would count the whole file in the resident set)
    store_file = work / f"frames_{n}_{args.frames}x{args.frame_dim}_s{args.seed}.f16"
    store = store_file.open("wb")
    for ids, frames, truth in generate(n, args.frame_dim, args.frames, args.seed):
        store.write(frames.astype(np.float16).tobytes())  # ids are consecutive from 0
        flat = frames.reshape(-1, args.frame_dim)
        fvid = np.repeat(ids, args.frames)
        desc = lift(frames.mean(axis=1), w, rng)
        with Stage(clock, "keyframes"):
            keep = select_keyframes(flat, fvid, max_sim=args.keyframe_sim)
        with Stage(clock, "pca"):
            if pca is None:
                pca = PCAReducer(args.video_index_dim, sample_max=50_000).fit(desc)
            desc_parts.append(pca.transform(desc))
        key_vecs.append(flat[keep])
        key_video.append(fvid[keep])
        truth_parts.append(truth)
        vid_parts.append(ids)
        n_frames += flat.shape[0]
        del frames, flat, fvid, desc
    store.close()
    t_gen_wall = time.perf_counter() - t_all
    kv = np.concatenate(key_vecs)
    kvid = np.concatenate(key_video)
    video_vecs = np.concatenate(desc_parts)
    video_ids = np.concatenate(vid_parts)
    truth = np.concatenate(truth_parts)
    del key_vecs, key_video, desc_parts

    with Stage(clock, "build"):
        findex = VectorIndex(args.frame_dim, nprobe=args.nprobe, flat_max=args.flat_max)
        findex.add(kv, np.arange(kv.shape[0], dtype=np.int64))
        findex.build()
        vindex = VectorIndex(args.video_index_dim, nprobe=args.nprobe, flat_max=args.flat_max)
        vindex.add(video_vecs, np.arange(video_vecs.shape[0], dtype=np.int64))
        vindex.build()

    frac = args.query_sample if n >= args.sample_from else 1.0
    queries = None
    if frac < 1.0:
        pick = np.random.default_rng(args.seed + 2).random(video_ids.size) < frac
        queries = video_ids[pick]
    with Stage(clock, "search"):
        pairs = candidate_pairs(
            kv,
            kvid,
            k=args.k,
            min_sim=args.min_sim,
            index=findex,
            video_vecs=video_vecs,
            video_ids=video_ids,
            video_k=args.video_k,
            video_min_sim=args.video_min_sim,
            video_index=vindex,
            batch_size=args.batch_size,
            query_videos=queries,
        )
    truth_all = truth
    if queries is not None:
        # per-query work is uniform, so the full search costs the sample's time / frac;
        # recall is measured on the planted pairs with a video in the sample
        clock["search"] = [v / frac for v in clock["search"]]
        covered = np.isin(truth[:, 0], queries) | np.isin(truth[:, 1], queries)
        truth = truth[covered]

    found = set(zip(pairs["a"].to_numpy().tolist(), pairs["b"].to_numpy().tolist(), strict=True))
    hit = np.array([(int(a), int(b)) in found for a, b in truth[:, :2]], bool)
    part = truth[:, 2].astype(bool)

    shape = {
        "keyframes": int(kv.shape[0]),
        "frame_index": findex.built_kind,
        "video_index": vindex.built_kind,
        "nlist_frames": findex.n_lists or None,
    }
    verified: dict = {}
    if not args.no_verify:
        del kv, kvid, findex, vindex
        pa, pb = pairs["a"].to_numpy(np.int64), pairs["b"].to_numpy(np.int64)
        t0, c0 = time.perf_counter(), time.process_time()
        scores, worker_cpu, worker_rss = verify_pairs(
            store_file, pa, pb, args.frames, args.frame_dim, args.threads
        )
        clock["verify"] = [time.perf_counter() - t0, time.process_time() - c0 + worker_cpu]
        # a family is a source and its copies; two copies of one source are related too
        family = dict(zip(truth_all[:, 1].tolist(), truth_all[:, 0].tolist(), strict=True))
        fa = np.array([family.get(a, a) for a in pa.tolist()])
        fb = np.array([family.get(b, b) for b in pb.tolist()])
        is_copy = fa == fb
        near = scores >= 0.85
        sc = dict(zip(zip(pa.tolist(), pb.tolist(), strict=True), scores.tolist(), strict=True))
        tscore = np.array([sc.get((int(a), int(b)), 0.0) for a, b in truth[:, :2]])
        verified = {
            "verified": int(scores.size),
            "verified_recall_full": round(float((tscore[~part] >= 0.85).mean()), 4)
            if (~part).any()
            else None,
            "verified_recall_partial": round(float((tscore[part] >= 0.85).mean()), 4)
            if part.any()
            else None,
            "false_near": int((near & ~is_copy).sum()),
            "worker_peak_rss_gb": round(worker_rss, 2),
        }
    store_file.unlink(missing_ok=True)
    by_frames = int((pairs["votes"] > 0).sum())
    by_video = int((pairs["video_sim"] >= args.video_min_sim).sum())
    return {
        "videos": n,
        "frames": n_frames,
        **shape,
        "generate_wall_s": round(t_gen_wall, 2),
        **{f"{k}_s": round(v[0], 2) for k, v in clock.items()},
        **{f"{k}_cpu_s": round(v[1], 2) for k, v in clock.items()},
        "pipeline_s": round(sum(v[0] for v in clock.values()), 2),
        "pipeline_cpu_s": round(sum(v[1] for v in clock.values()), 2),
        "total_s": round(time.perf_counter() - t_all, 2),
        "query_sample": frac,
        # with sampled queries the count only covers pairs a sampled video found: not reported
        "candidates": int(len(pairs)) if frac == 1.0 else None,
        "by_frames": by_frames,
        "by_video": by_video,
        "copy_pairs": int(truth.shape[0]),
        "recall_full": round(float(hit[~part].mean()), 4) if (~part).any() else None,
        "recall_partial": round(float(hit[part].mean()), 4) if part.any() else None,
        **verified,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "threads": faiss.omp_get_max_threads(),
        "load_avg": [round(load_start, 1), round(os.getloadavg()[0], 1)],
    }


# -- driver ------------------------------------------------------------------------------------------
def machine() -> str:
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {mem:.0f} GiB RAM"


def slope(xs: list[float], ys: list[float]) -> float | None:
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    lx, ly = np.array(pts).T
    return float(np.polyfit(lx, ly, 1)[0])


def table(rows: list[dict]) -> str:
    head = (
        "| videos | frames | keyframes indexed | frame index | build s (CPU s) | search s (CPU s) "
        "| pipeline s (CPU s) | candidates | cand./video | copy recall full / partial "
        "| verify s (CPU s) | copies >= 0.85 full / partial | other pairs >= 0.85 "
        "| peak RSS GB (verify workers) | threads, load avg |"
    )
    out = [head, "|" + "---|" * 15]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['videos']:,} |" + " |" * 13 + f" {r['error']} |")
            continue
        idx = r["frame_index"] + (f" ({r['nlist_frames']} lists)" if r["nlist_frames"] else "")
        star = "*" if r.get("query_sample", 1.0) < 1.0 else ""
        cand = f"{r['candidates']:,}" if r["candidates"] is not None else "n/a*"
        per_video = (
            f"{r['candidates'] / r['videos']:.2f}" if r["candidates"] is not None else "n/a*"
        )
        if "verify_s" in r:
            verify = f"{r['verify_s']:.1f} ({r['verify_cpu_s']:.1f})"
            v_recall = f"{r['verified_recall_full']:.3f} / {r['verified_recall_partial']:.3f}"
            false_near = f"{r['false_near']:,}"
            w = r.get("worker_peak_rss_gb")
            w_rss = f" ({w:.2f})" if w is not None else " (n/a)"
        else:
            verify = v_recall = false_near = "not run"
            w_rss = ""
        out.append(
            f"| {r['videos']:,} | {r['frames']:,} | {r['keyframes']:,} | {idx} "
            f"| {r['build_s']:.1f} ({r['build_cpu_s']:.1f}) "
            f"| {r['search_s']:.1f} ({r['search_cpu_s']:.1f}){star} "
            f"| {r['pipeline_s']:.1f} ({r['pipeline_cpu_s']:.1f}){star} | {cand} "
            f"| {per_video} | {r['recall_full']:.3f} / {r['recall_partial']:.3f} "
            f"| {verify} | {v_recall} | {false_near} "
            f"| {r['peak_rss_gb']:.2f}{w_rss} | {r['threads']}, {r['load_avg'][0]}-{r['load_avg'][1]} |"
        )
    sampled = sorted({r["query_sample"] for r in rows if r.get("query_sample", 1.0) < 1.0})
    if sampled:
        out.append("")
        out.append(
            f"\\* Search run with {', '.join(f'{100 * f:g}%' for f in sampled)} of the videos as "
            "queries against the full indexes; its time is scaled to all videos (per-query work "
            "is uniform), recall is over the planted pairs it covers, and the candidate count of "
            "a partial search is not reported."
        )
    ok = [r for r in rows if "error" not in r]
    if len(ok) >= 2:
        n = [r["videos"] for r in ok]
        parts = []
        for col, name in (
            ("build_cpu_s", "build CPU"),
            ("search_cpu_s", "search CPU"),
            ("pipeline_cpu_s", "pipeline CPU"),
            ("pipeline_s", "pipeline wall"),
            ("peak_rss_gb", "peak RSS"),
            ("candidates", "candidates"),
        ):
            vals = [r[col] for r in ok]
            if any(v is None for v in vals):
                continue
            s = slope(n, vals)
            if s is not None:
                parts.append(f"{name} {s:.2f}")
        out.append("")
        out.append(
            "Growth exponent (log-log slope over the sizes above): " + ", ".join(parts) + "."
        )
    return "\n".join(out)


GOAL_VIDEOS, GOAL_SECONDS, GOAL_GB = 1_000_000, 1800, 16.0


def goal_line(rows: list[dict]) -> str:
    """Issue 4's scale goal (1M videos in <= 30 minutes and <= 16 GB), said plainly."""
    row = next((r for r in rows if r["videos"] == GOAL_VIDEOS and "error" not in r), None)
    head = f"Goal (issue 4): {GOAL_VIDEOS:,} videos in <= {GOAL_SECONDS // 60} minutes and <= {GOAL_GB:g} GB"
    if row is None:
        return f"{head}: **not measured** (no completed {GOAL_VIDEOS:,} row above)."
    sampled = row.get("query_sample", 1.0) < 1.0
    ok = row["pipeline_s"] <= GOAL_SECONDS and row["peak_rss_gb"] <= GOAL_GB and not sampled
    worker = row.get("worker_peak_rss_gb") or 0.0
    return (
        f"{head}: **{'met' if ok else 'not met'}**: pipeline {row['pipeline_s'] / 60:.1f} minutes "
        f"wall ({row['pipeline_cpu_s'] / 60:.1f} CPU-minutes), peak resident memory "
        f"{row['peak_rss_gb']:.2f} GB in the driver"
        + (f" plus {worker:.2f} GB per verification worker" if worker else "")
        + (
            ", search sampled (not a full run)"
            if sampled
            else ", every video searched and every candidate verified"
        )
        + "."
    )


def write_results(section: str, path: Path) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(r"^## Scale\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip() + "\n\n", text)
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    path.write_text(text.rstrip() + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated video counts")
    p.add_argument("--quick", action="store_true", help="10k videos only (CI smoke)")
    p.add_argument(
        "--dim", type=int, default=1280, help="video descriptor dimension (MobileNetV2: 1280)"
    )
    p.add_argument(
        "--video-index-dim", type=int, default=128, help="PCA dimension of indexed descriptors"
    )
    p.add_argument(
        "--frame-dim", type=int, default=64, help="indexed frame embedding dimension (after PCA)"
    )
    p.add_argument("--frames", type=int, default=FRAMES, help="sampled frames per video")
    p.add_argument(
        "--keyframe-sim",
        type=float,
        default=0.9,
        help="drop frames this similar to the last kept one",
    )
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--min-sim", type=float, default=0.75)
    p.add_argument("--video-k", type=int, default=20)
    p.add_argument("--video-min-sim", type=float, default=0.8)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument(
        "--flat-max", type=int, default=ALL_PAIRS_FLAT_MAX, help="flat_max of both indexes (auto)"
    )
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="BLAS/OpenMP threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--query-sample",
        type=float,
        default=1.0,
        help="fraction of videos used as queries at sizes >= --sample-from; search time and "
        "candidate count are scaled to the full library (1 = full search)",
    )
    p.add_argument("--sample-from", type=int, default=1_000_000)
    p.add_argument("--no-verify", action="store_true", help="skip the verification stage")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=ROOT / "benchmarks" / ".cache" / "scale",
        help="where the on-disk frame store lives while a size runs (float16, ~7.7 GB at 1M)",
    )
    p.add_argument(
        "--include", type=Path, action="append", default=[], help="rows of an earlier --json run"
    )
    p.add_argument("--time-limit", type=float, default=1800, help="seconds allowed per size")
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    p.add_argument("--json", type=Path, help="also write the raw rows as JSON")
    p.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one_size:
        print(json.dumps(run_one(args, args.one_size)))
        return 0
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--quick"]
    passthrough = [
        a
        for i, a in enumerate(passthrough)
        if a != "--include" and (i == 0 or passthrough[i - 1] != "--include")
    ]
    passthrough = [
        a
        for i, a in enumerate(passthrough)
        if a != "--sizes" and (i == 0 or passthrough[i - 1] != "--sizes")
    ]
    rows = []
    for extra in args.include:
        rows.extend(json.loads(extra.read_text(encoding="utf-8")))
    for n in sizes:
        cmd = [sys.executable, __file__, "--one-size", str(n), *passthrough]
        t0 = time.perf_counter()
        try:
            env = dict(os.environ)
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = str(args.threads)
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.time_limit, env=env
            )
        except subprocess.TimeoutExpired:
            rows.append({"videos": n, "error": f"over the {args.time_limit:.0f} s limit"})
            print(f"{n:,} videos: over the {args.time_limit:.0f} s limit", file=sys.stderr)
            continue
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
            rows.append({"videos": n, "error": f"failed: {tail[0][:80]}"})
            print(proc.stderr, file=sys.stderr)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["cmd"] = "python benchmarks/scale.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])
        )
        rows.append(row)
        print(
            f"{n:,} videos: {time.perf_counter() - t0:.0f} s wall, {json.dumps(row)}",
            file=sys.stderr,
        )
    rows.sort(key=lambda r: r["videos"])
    md = table(rows)
    print(md)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    if not args.no_write:
        section = "\n".join(
            [
                "## Scale",
                "",
                f"Measured on {machine()}; finished {date.today().isoformat()}. Rows come from:",
                *[f"- `{c}`" for c in dict.fromkeys(r.get("cmd", "?") for r in rows)],
                "",
                "Wall seconds depend on what else runs (the load average while each size ran is in "
                "the last column); CPU seconds are the process's own user + system time, summed over "
                "its threads. Sizes not in the table were not run.",
                "",
                f"Synthetic library: {args.frames} frames per video, frames indexed as {args.frame_dim}-d "
                f"keyframes (cosine < {args.keyframe_sim} to the last kept frame), {args.dim}-d video "
                f"descriptors PCA-reduced to {args.video_index_dim}-d; k={args.k}, min_sim={args.min_sim}, "
                f"video_k={args.video_k}, video_min_sim={args.video_min_sim}, nprobe={args.nprobe}. "
                "Pipeline = keyframe selection + descriptor PCA + index build + candidate search + "
                "verification of every candidate pair (data generation excluded). Recall: planted "
                "source/copy pairs among the candidates, and among the pairs verified at >= 0.85.",
                "",
                md,
                "",
                goal_line(rows),
            ]
        )
        write_results(section, args.results)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
