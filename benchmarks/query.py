"""Query latency: one new 60 s 720p video against a 1M-video frame index, extraction included.

What is timed, in one warm process (models loaded and the index in memory, as in a notebook or
a query service), for a query that is a re-encoded, slightly cropped copy of a library clip:

1. extraction: :func:`astradup.execution.extract_video` (pHash, MobileNetV2, Chromaprint + MFCC,
   metadata), with frames decoded at 1 fps (the default) and, as ``astradup query --fast`` does,
   at keyframes only;
2. reduction: keyframe selection and the PCA projection the reduced frame index uses;
3. search: the query keyframes' ``k`` neighbours in the 1M-video index (IVF, ``nprobe`` lists),
   votes per library video;
4. verification: :func:`astradup.scoring.score_pair` of the query against its ``--top`` best
   candidates.

The index holds 1M videos: synthetic ones (``benchmarks/scale.py``'s generator, 64-d keyframes,
~8.8M rows) plus the real library clips' keyframes, projected with a PCA fitted on the real
clips. Candidates that are synthetic videos have no decoded features to verify against, so each is
verified against a real library clip instead: same work per pair (60 x 60 frames, audio, metadata).
Start-up (imports, model load, reading the index file) is reported on its own.

Usage:
    python benchmarks/query.py [--videos 1000000] [--repeats 3] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import md_table, stamp, write_section  # noqa: E402
from benchmarks.throughput import ffmpeg, make_clips  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "query"
STAGES = ("extract", "reduce", "search", "verify", "total")


def synthetic_index(n: int, seed: int, cache: Path) -> tuple[Path, Path]:
    """Files of the 1M-video synthetic keyframe index and of each row's video id, built once and
    cached on disk (the caller reads them, so that reading is what it times)."""
    from astradup.index import VectorIndex, select_keyframes
    from benchmarks.scale import generate

    path = cache / f"synthetic_{n}_s{seed}.faiss"
    owner_path = path.with_suffix(".owner.npy")
    if path.exists() and owner_path.exists():
        return path, owner_path
    cache.mkdir(parents=True, exist_ok=True)
    vecs, owner = [], []
    for ids, frames, _ in generate(n, 64, 60, seed):
        flat = frames.reshape(-1, 64)
        fvid = np.repeat(ids, 60)
        keep = select_keyframes(flat, fvid, max_sim=0.9)
        vecs.append(flat[keep])
        owner.append(fvid[keep])
    x = np.concatenate(vecs)
    del vecs
    idx = VectorIndex(64, kind="ivf")
    idx.add(x, np.arange(x.shape[0], dtype=np.int64))
    idx.save(path)
    np.save(owner_path, np.concatenate(owner))
    return path, owner_path


def make_query(src: Path, out: Path, size: str) -> Path:
    """A copy of ``src``: cropped 4 % per side, scaled back to ``size``, re-encoded at another quality."""
    if not out.exists():
        subprocess.run(
            [
                ffmpeg(),
                "-v",
                "error",
                "-y",
                "-i",
                str(src),
                "-vf",
                f"crop=iw*0.92:ih*0.92,scale={size}",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "30",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
                str(out),
            ],
            check=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=1_000_000, help="synthetic videos in the index")
    ap.add_argument("--library", type=int, default=4, help="real 60 s 720p library clips")
    ap.add_argument("--k", type=int, default=20, help="neighbours per query keyframe")
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--top", type=int, default=10, help="candidates verified")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the real clips")
    ap.add_argument("--size", default="1280x720", help="frame size of the real clips")
    ap.add_argument("--cache", type=Path, default=CACHE, help="where clips and the index are kept")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    ap.add_argument("--json", type=Path, help="also write the raw figures as JSON")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    import pandas as pd

    from astradup.config import AstradupConfig
    from astradup.execution import extract_video
    from astradup.execution.stages import search_votes, verify_query
    from astradup.index import PCAReducer
    from astradup.index.frames import project_keyframes

    cfg = AstradupConfig()
    t_import = time.perf_counter() - t_start

    clips_dir = args.cache / f"clips_{args.size}_{args.seconds:g}s"
    clips_dir.mkdir(parents=True, exist_ok=True)
    clips = make_clips(clips_dir, args.library, args.seconds, args.size)
    w, h = args.size.split("x")
    query_file = make_query(clips[0], clips_dir / "query.mp4", f"{w}:{h}")

    # the real library: features of each clip, and a PCA fitted on their frames
    lib = [extract_video(str(c), cfg) for c in clips]
    emb = np.concatenate([f.embeddings for f in lib])
    pca = PCAReducer(64).fit(emb)
    print(
        f"library: {len(lib)} clips, {emb.shape[0]} frames; building/loading the index",
        file=sys.stderr,
    )

    t = time.perf_counter()
    index_path, owner_path = synthetic_index(args.videos, args.seed, args.cache)
    t_index_ready = time.perf_counter() - t
    t = time.perf_counter()
    from astradup.index import VectorIndex

    idx = VectorIndex.load(index_path)  # what a fresh process pays to read the index file
    owner = np.load(owner_path)
    t_index_load = time.perf_counter() - t
    # the real clips join the index as videos n, n+1, ...
    real_rows, real_owner = [], []
    for j, f in enumerate(lib):
        keys, _ = project_keyframes(f.embeddings, np.zeros(len(f.embeddings), np.int64), pca, 0.9)
        real_rows.append(keys)
        real_owner.append(np.full(len(keys), args.videos + j, np.int64))
    start = idx.ntotal
    rows = np.concatenate(real_rows)
    idx.add(rows, np.arange(start, start + rows.shape[0], dtype=np.int64))
    owner = np.concatenate([owner, *real_owner])
    idx.nprobe = args.nprobe  # applied by the build below
    idx.build()
    n_rows = idx.ntotal

    def one_mode(mcfg: AstradupConfig) -> dict:
        stages: dict[str, list[float]] = {k: [] for k in STAGES}
        for _ in range(args.repeats):
            # the stages of astradup.execution.runner.run_query, one by one
            t0 = time.perf_counter()
            q = extract_video(str(query_file), mcfg)
            t1 = time.perf_counter()
            qk, _ = project_keyframes(q.embeddings, np.zeros(len(q.embeddings), np.int64), pca, 0.9)
            t2 = time.perf_counter()
            cand = search_votes(idx, owner, qk, args.k, mcfg.match.min_candidate_sim, args.top)
            t3 = time.perf_counter()
            # a synthetic candidate is verified against a real clip instead: same work per pair
            feats = {v: lib[v - args.videos] if 0 <= v - args.videos < len(lib) else lib[i % len(lib)]
                     for i, v in enumerate(cand)}
            found = verify_query(q, str(query_file), cand, feats, pd.Series({v: v for v in cand}), mcfg,
                                 min_score=0.0, top=len(cand))
            t4 = time.perf_counter()
            for name, val in zip(
                STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True
            ):
                stages[name].append(val)
        ranks = [i for i, v in enumerate(cand) if v == args.videos]
        hit = found[found["b"] == args.videos]
        source = None if hit.empty else hit.iloc[0]
        return {
            "decoder": q.decoder,
            "query_frames": int(q.n_frames),
            "candidates_verified": int(len(cand)),
            "source_rank": ranks[0] if ranks else -1,
            "source_score": None if source is None else round(float(source["score"]), 4),
            "source_label": None if source is None else source["label"],
            **{f"{k}_s": round(float(np.median(v)), 3) for k, v in stages.items()},
        }

    modes = {
        "default (1 fps)": one_mode(cfg),
        "--fast (keyframes only)": one_mode(cfg.replace(**{"sampling.keyframes_only": True})),
    }
    row = {
        "videos": args.videos + len(lib),
        "index_rows": n_rows,
        "modes": modes,
        "startup_import_s": round(t_import, 2),
        "index_load_s": round(t_index_load, 2),
        "index_ready_s": round(t_index_ready, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "load_avg": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(row, indent=2), encoding="utf-8")
    names = list(modes)
    table = md_table(
        [f"stage (median of {args.repeats}, seconds)", *names],
        [[k, *[modes[n][f"{k}_s"] for n in names]] for k in STAGES]
        + [
            [
                "frames sampled from the query (decoder)",
                *[f"{modes[n]['query_frames']} ({modes[n]['decoder']})" for n in names],
            ],
            ["candidates verified", *[modes[n]["candidates_verified"] for n in names]],
            [
                "source clip: rank, score, label",
                *[
                    f"{modes[n]['source_rank'] + 1}, {modes[n]['source_score']}, {modes[n]['source_label']}"
                    if modes[n]["source_rank"] >= 0
                    else "not found"
                    for n in names
                ],
            ],
        ],
    )
    verdict = "; ".join(
        f"{n}: {modes[n]['total_s']:.2f} s, **{'met' if modes[n]['total_s'] <= 2.0 else 'not met'}**"
        for n in names
    )
    body = "\n".join(
        [
            stamp(),
            "",
            f"Command: `python benchmarks/query.py --videos {args.videos} --repeats {args.repeats}`. "
            f"One {args.seconds:g} s {args.size} H.264 query (a cropped re-encode of a library clip, "
            f"x264 default keyframe interval) against an index of {row['videos']:,} videos "
            f"({n_rows:,} 64-d keyframe rows, IVF, nprobe {args.nprobe}; synthetic videos from "
            f"`benchmarks/scale.py` plus {len(lib)} real clips). Warm process: models loaded, index "
            f"in memory. Load average at the end: {row['load_avg']}.",
            "",
            table,
            "",
            f"Start-up, paid once per process: imports {row['startup_import_s']} s, reading the "
            f"index file {row['index_load_s']} s. Peak memory {row['peak_rss_gb']} GB.",
            "",
            f"Goal (issue 4): <= 2 s per query, extraction included: {verdict}.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("Query latency", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
