"""`astradup match` on a large store built through the Store API (synthetic features).

For each size: ``benchmarks/scale.py``'s generator makes the videos (``--frames`` frames each,
sources and planted copies, some partial), at the store's frame-embedding size
(``features.compact_dim``, or 1280 when it is 0, the default); frame hashes are 256-bit sign
hashes of a fixed random projection of each frame's embedding (so copies get near hashes, as
pHash gives them); no audio. The videos are written with ``Store.write_videos``, ``--batch`` a
call (one transaction and one insert per table each), then ``astradup match`` runs in a child
process with the default config. Reported: write time, match wall time, the match process's peak
resident memory, the store and index files on disk, and the recall of the planted copies among
the pairs.

Usage: python benchmarks/store_match.py [--sizes 10000,100000] [--frames 60] [--batch 1000] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import md_table, stamp, write_section  # noqa: E402


def build_store(store: Path, n: int, frames: int, dim: int, seed: int, batch: int) -> tuple[float, set[tuple[int, int]]]:
    """Write ``n`` synthetic videos, ``batch`` a :meth:`Store.write_videos` call; return
    (seconds, planted (source, copy) video-id pairs)."""
    from astradup.features.video import VideoFeatures
    from astradup.store import Store, VideoRecord
    from benchmarks.scale import generate

    proj = np.random.default_rng(seed + 1).standard_normal((dim, 256)).astype(np.float32)
    planted: set[tuple[int, int]] = set()
    t = time.perf_counter()
    with Store(store) as st:
        st.set_meta("media_root", "/synthetic")
        for ids, embs, truth in generate(n, dim, frames, seed):
            for lo in range(0, len(ids), batch):
                items = []
                for vid, emb in zip(ids[lo:lo + batch].tolist(), embs[lo:lo + batch]):
                    bits = np.packbits(emb @ proj > 0, axis=1)
                    desc = emb.mean(0)
                    vf = VideoFeatures(
                        path=f"/synthetic/v{vid:07d}.mp4", info={"duration": float(frames), "width": 640, "height": 360},
                        timestamps=np.arange(frames, dtype=np.float64) + 0.5, phash=bits,
                        phash_flip=bits[:, ::-1].copy(), embeddings=emb, descriptor=desc / np.linalg.norm(desc),
                        audio=None, decoder="synthetic")
                    items.append(VideoRecord(vf, rel_path=f"v{vid:07d}.mp4", size=frames * 10_000, mtime=0.0,
                                             content_hash=f"{vid:016x}", feature_key="synthetic", run_id="synthetic",
                                             video_id=vid + 1))  # store ids start at 1
                st.write_videos(items)
            planted |= {(int(a) + 1, int(b) + 1) for a, b, _partial in truth}
    return time.perf_counter() - t, planted


def run_one(n: int, frames: int, dim: int, seed: int, tmp: Path, batch: int, config: Path | None) -> dict:
    store = tmp / f"lib{n}.duckdb"
    t_write, planted = build_store(store, n, frames, dim, seed, batch)
    out = tmp / f"pairs{n}.csv"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    cfg = ["--config", str(config)] if config is not None else []
    r = subprocess.run([sys.executable, "-m", "astradup.cli", "match", "--store", str(store), "--out", str(out),
                        "--quiet", *cfg], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"astradup match failed:\n{r.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    files = {p.name.replace(store.name, "store"): p.stat().st_size for p in tmp.iterdir()
             if p.name.startswith(store.name) and p.is_file()}
    pairs = pd.read_csv(out)
    ids = {f"v{i - 1:07d}.mp4": i for i in range(1, n + 1)}
    found = {tuple(sorted((ids[a], ids[b]))) for a, b in zip(pairs["a"], pairs["b"])}
    recall = len({tuple(sorted(p)) for p in planted} & found) / max(len(planted), 1)
    for p in list(tmp.iterdir()):
        p.unlink()
    return {"videos": n, "frames": n * frames, "write_s": t_write, "match_s": wall,
            "peak_gb": max(peak, before) / 1024 / 1024, "disk": files, "pairs": len(pairs), "recall": recall,
            "summary": r.stdout.strip().splitlines()[0] if r.stdout.strip() else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1000, help="videos per Store.write_videos call")
    ap.add_argument("--compact-dim", type=int, default=None,
                    help="features.compact_dim of the store and of the match config (default: the config's)")
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the stores (default: a temporary one)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from astradup.config import AstradupConfig

    cfg = AstradupConfig()
    if args.compact_dim is not None:
        cfg = cfg.replace(**{"features.compact_dim": args.compact_dim})
    dim = cfg.features.compact_dim or 1280
    rows, raw = [], []
    for n in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            config = None
            if args.compact_dim is not None:
                config = Path(tmp) / "config.yaml"
                cfg.to_yaml(config)
            res = run_one(n, args.frames, dim, args.seed, Path(tmp), args.batch, config)
        raw.append(res)
        disk = sum(res["disk"].values())
        print(res, flush=True)
        rows.append([f"{n:,}", f"{res['frames']:,}", round(res["write_s"], 1), round(res["match_s"], 1),
                     round(res["peak_gb"], 2), round(disk / 1e9, 3), round(disk / res["frames"] / 1024, 2),
                     res["pairs"], round(res["recall"], 3), f"{os.getloadavg()[0]:.1f}"])
    opt = f" --compact-dim {args.compact_dim}" if args.compact_dim is not None else ""
    how = "defaults" if args.compact_dim is None else f"defaults but `features.compact_dim: {args.compact_dim}`"
    text = "\n".join([
        stamp(), "",
        f"Command: `python benchmarks/store_match.py --sizes {args.sizes} --frames {args.frames}{opt}`. Synthetic "
        f"videos ({args.frames} frames of {dim}-d embeddings each, sources with planted copies, no audio) written "
        f"through `Store.write_videos` ({args.batch} a call), then `astradup match` in a child process ({how}). Peak memory: the "
        "match process's maximum resident set. Disk: the store plus the files beside it (frame index, manifest, PCA).",
        "",
        md_table(["videos", "frames", "write s", "match wall s", "match peak GB", "disk GB", "KB per frame (s of video)",
                  "pairs", "planted-copy recall", "load avg"], rows),
    ])
    print(text)
    if not args.no_write:
        write_section("Match on a large store", text)


if __name__ == "__main__":
    main()
