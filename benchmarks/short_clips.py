"""Extraction throughput on a library of many short real clips, against ffmpeg and Meta's vpdq.

Real libraries are mostly short clips, where per-file costs (probe, Dask task, model, audio
set-up, store transaction) weigh more than on the long 720p clips of ``throughput.py``.

Corpus: ``--n`` clips cut from the real videos Debian packages ship (``debian_media.py``): for
each clip a source (the 30 videos in turn, seeded shuffle), a length drawn from 5-60 s (at most
the source's length) and a start, re-encoded to H.264 (x264 ``veryfast``, default GOP) at most
640 pixels wide, AAC where the source has sound. Deterministic for a seed; cached in
``benchmarks/.cache/short_clips/`` (git-ignored).

Jobs, all children of this process, timed in alternating order over ``--rounds`` rounds:
  * ``ffmpeg -i FILE -f null -`` for every file, two at a time;
  * Meta's ``vpdq`` 0.2.5 (PyPI), one hash a second, two hashing processes, then matching every
    pair of videos vPDQ's way (a frame matches within Hamming 31; a pair scores the mean of both
    videos' matched-frame shares);
  * ``run_index`` (defaults: every modality, the default LocalCluster) then ``run_match``.

Reported: seconds and ratios per round, AstraDup's stage totals as the store records them, and
the load average (the machine is shared: ratios from one round, side by side, are the figure).

With ``--long N`` the corpus is instead ``N`` generated 60 s 1280x720 H.264 clips
(``throughput.py``'s generator: procedural pictures, melody), for issue 10's ">= 2.0x vpdq on 60 s
720p clips"; the figures go to the section "Long clips (720p) against vpdq".

Usage:
    python benchmarks/short_clips.py [--n 200] [--seed 0] [--rounds 2] [--no-write] [--long 8]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import md_table, stamp, write_section  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "short_clips"
MIN_SECONDS, MAX_SECONDS, MAX_WIDTH = 5.0, 60.0, 640


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def plan(sources: dict[str, tuple[float, bool]], n: int, seed: int) -> list[dict]:
    """Clip specs: source, start, length (seconds), audio. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    names = sorted(sources)
    order: list[str] = []
    while len(order) < n:
        order += [names[i] for i in rng.permutation(len(names))]
    out = []
    for i, src in enumerate(order[:n]):
        dur, has_audio = sources[src]
        length = dur if dur <= MIN_SECONDS else float(rng.uniform(MIN_SECONDS, min(MAX_SECONDS, dur)))
        start = float(rng.uniform(0, max(dur - length, 0.0)))
        out.append({"name": f"clip{i:04d}.mp4", "source": src, "start": round(start, 3),
                    "length": round(length, 3), "audio": has_audio})
    return out


def _cut(spec: dict, src_dir: Path, out_dir: Path) -> None:
    out = out_dir / spec["name"]
    if out.exists():
        return
    tmp = out.with_name(".tmp-" + out.name)
    cmd = [ffmpeg(), "-v", "error", "-y", "-ss", str(spec["start"]), "-i", str(src_dir / spec["source"]),
           "-t", str(spec["length"]), "-map", "0:v:0", "-vf", f"scale='min({MAX_WIDTH},iw)':-2,format=yuv420p",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-threads", "1"]
    if spec["audio"]:
        cmd += ["-map", "0:a:0", "-c:a", "aac", "-b:a", "96k"]
    subprocess.run([*cmd, "-f", "mp4", str(tmp)], check=True)
    os.replace(tmp, out)


def build_corpus(n: int, seed: int) -> Path:
    """The corpus folder (``clips.csv`` lists each clip's source, start and length)."""
    from benchmarks.debian_media import sources_dir

    out = CACHE / f"n{n}_s{seed}"
    if (out / "clips.csv").exists():
        return out
    src_dir = sources_dir()
    import av

    sources = {}
    for f in sorted(src_dir.iterdir()):
        with av.open(str(f)) as c:
            if c.streams.video:
                sources[f.name] = (float(c.duration or 0) / 1e6, bool(c.streams.audio))
    specs = plan(sources, n, seed)
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda s: _cut(s, src_dir, out), specs))
    with open(out / "clips.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(specs[0]))
        w.writeheader()
        w.writerows(specs)
    return out


def files_of(corpus: Path) -> list[Path]:
    return sorted(corpus.glob("clip*.mp4"))


def time_ffmpeg(files: list[Path]) -> float:
    def one(f: Path) -> None:
        subprocess.run([ffmpeg(), "-v", "error", "-i", str(f), "-f", "null", "-"], check=True)

    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - t


def _vpdq_hash(path: str) -> np.ndarray:
    import vpdq

    feats = vpdq.computeHash(path, seconds_per_hash=1, thread_count=1)
    if not feats:
        return np.zeros((0, 32), np.uint8)
    return np.stack([np.packbits(np.asarray(f.hash, dtype=bool)) for f in feats])


def vpdq_match(hashes: list[np.ndarray], radius: int = 31) -> int:
    """vPDQ's pair rule over every pair; returns the pairs scoring >= 0.5 (the count is only
    there so the work cannot be skipped)."""
    lut = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.uint16)
    allh = np.concatenate(hashes)
    owner = np.repeat(np.arange(len(hashes)), [len(h) for h in hashes])
    hits = 0
    for i, h in enumerate(hashes):
        if not len(h):
            continue
        d = lut[h[:, None, :] ^ allh[None, :, :]].sum(-1)  # (n_i, all) Hamming distances
        ok = d <= radius
        for j in range(i + 1, len(hashes)):
            cols = owner == j
            if not len(hashes[j]):
                continue
            sub = ok[:, cols]
            score = (sub.any(1).mean() + sub.any(0).mean()) / 2
            hits += int(score >= 0.5)
    return hits


def time_vpdq(files: list[Path]) -> tuple[float, float]:
    t = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        hashes = list(pool.map(_vpdq_hash, [str(f) for f in files], chunksize=4))
    t_hash = time.perf_counter() - t
    vpdq_match(hashes)
    return t_hash, time.perf_counter() - t


def time_astradup(corpus: Path, workers: int | None, config: Path | None) -> dict:
    """``run_index`` + ``run_match`` into a fresh store: seconds, stage totals, and the bytes of
    the store and the files beside it (frame index, manifest)."""
    from astradup.config import AstradupConfig
    from astradup.execution import run_index, run_match
    from astradup.store import Store

    cfg = AstradupConfig.from_file(config)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "short.duckdb"
        t = time.perf_counter()
        s = run_index(corpus, store, cfg, workers=workers, progress=False)
        t_index = time.perf_counter() - t
        t = time.perf_counter()
        run_match(store, cfg, progress=False)
        t_match = time.perf_counter() - t
        with Store(store, read_only=True) as st:
            timings = st.sql("SELECT timings FROM videos")["timings"].tolist()
            seconds = float(st.sql("SELECT sum(duration) AS s FROM videos")["s"].iloc[0])
        sizes = {p.name.replace("short.duckdb", "store"): p.stat().st_size for p in Path(tmp).iterdir() if p.is_file()}
    stages: dict[str, float] = {}
    for tj in timings:
        for k, v in json.loads(tj).items():
            stages[k] = stages.get(k, 0.0) + v
    return {"index": t_index, "match": t_match, "stages": stages, "failed": s.n_failed, "sizes": sizes,
            "video_seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="clips in the corpus")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the three jobs, order alternating")
    ap.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    ap.add_argument("--config", type=Path, default=None, help="AstraDup config file (default: the defaults)")
    ap.add_argument("--jobs", default="ffmpeg,vpdq,astradup", help="which jobs to run (comma-separated)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    ap.add_argument("--long", type=int, default=0, metavar="N",
                    help="instead: N generated 60 s 1280x720 clips (throughput.py's generator)")
    args = ap.parse_args()

    if args.long:
        from benchmarks.throughput import make_clips

        corpus = CACHE / f"long720_n{args.long}"
        corpus.mkdir(parents=True, exist_ok=True)
        make_clips(corpus, args.long, 60.0)  # clipNN.mp4, as files_of expects
    else:
        corpus = build_corpus(args.n, args.seed)
    files = files_of(corpus)
    from astradup.media import probe

    total_s = sum(probe(f).duration for f in files)
    lens = np.array([probe(f).duration for f in files])
    print(f"{len(files)} clips, {total_s / 60:.1f} minutes ({lens.min():.1f}-{lens.max():.1f} s, median {np.median(lens):.1f} s)")
    jobs = args.jobs.split(",")
    rounds = []
    for r in range(args.rounds):
        res: dict[str, object] = {"load_before": os.getloadavg()[0]}
        for job in (jobs if r % 2 == 0 else jobs[::-1]):
            if job == "ffmpeg":
                res["ffmpeg"] = time_ffmpeg(files)
            elif job == "vpdq":
                res["vpdq_hash"], res["vpdq"] = time_vpdq(files)
            else:
                res.update(time_astradup(corpus, args.workers, args.config))
            print(f"round {r + 1}: {job} done: {res}", flush=True)
        res["load_after"] = os.getloadavg()[0]
        rounds.append(res)

    if set(jobs) != {"ffmpeg", "vpdq", "astradup"}:
        return  # a partial run only prints
    rows = []
    for r, res in enumerate(rounds, 1):
        ours = float(res["index"]) + float(res["match"])  # type: ignore[arg-type]
        rows.append([r, round(float(res["ffmpeg"]), 1), round(float(res["vpdq"]), 1),  # type: ignore[arg-type]
                     f"{float(res['index']):.1f} + {float(res['match']):.1f}",  # type: ignore[arg-type]
                     round(float(res["ffmpeg"]) / float(res["index"]), 2),  # type: ignore[arg-type]
                     round(float(res["vpdq"]) / ours, 2),  # type: ignore[arg-type]
                     f"{res['load_before']:.1f} / {res['load_after']:.1f}"])
    best = max(rounds, key=lambda x: float(x["vpdq"]) / (float(x["index"]) + float(x["match"])))  # type: ignore[arg-type]
    worst = min(rounds, key=lambda x: float(x["vpdq"]) / (float(x["index"]) + float(x["match"])))  # type: ignore[arg-type]
    v_ratio = float(worst["vpdq"]) / (float(worst["index"]) + float(worst["match"]))  # type: ignore[arg-type]
    d_ratio = min(float(x["ffmpeg"]) / float(x["index"]) for x in rounds)  # type: ignore[arg-type]
    stages = best["stages"]
    goal = 2.0 if args.long else 1.0
    body = [
        stamp(), "",
        "Command: `python benchmarks/short_clips.py "
        + (f"--long {args.long}" if args.long else f"--n {args.n} --seed {args.seed}") + f" --rounds {args.rounds}"
        + (f" --config {args.config}" if args.config else "") + "`. "
        + (f"Corpus: {len(files)} generated 1280x720 H.264 clips of 60 s (25 fps, AAC; throughput.py's generator), "
           f"{total_s / 60:.1f} minutes in all. " if args.long else
           f"Corpus: {len(files)} clips cut from the real Debian videos, {total_s / 60:.1f} minutes in all "
           f"({lens.min():.1f}-{lens.max():.1f} s, median {np.median(lens):.1f} s), H.264 at most {MAX_WIDTH} px wide, "
           "AAC where the source has sound. ")
        + "All jobs are children of one process, two at a time (two "
        "ffmpeg processes, two vpdq hashing processes, AstraDup's default two-worker LocalCluster with "
        "start-up included).", "",
        md_table(["round", "ffmpeg -f null (s)", "vpdq hash + match (s)", "astradup index + match (s)",
                  "index vs ffmpeg", "AstraDup vs vpdq", "load avg before / after"], rows), "",
        f"Worst round: AstraDup {v_ratio:.2f}x vpdq's throughput (goal >= {goal:.1f}x: {_met(v_ratio >= goal)}; "
        f"project goal >= 2.5x: {_met(v_ratio >= 2.5)}); `astradup index` {d_ratio:.2f}x a bare ffmpeg decode "
        f"(goal >= 1.0x: {_met(d_ratio >= 1.0)}).", "",
        "Stage totals inside AstraDup's workers (seconds of worker time, summed over files, best round): "
        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stages.items())),  # type: ignore[union-attr]
        "",
        f"Size: store and the files beside it {sum(best['sizes'].values()) / 1024:.0f} KB for "  # type: ignore[union-attr]
        f"{float(best['video_seconds']):.0f} s of video = {sum(best['sizes'].values()) / float(best['video_seconds']) / 1024:.2f} "  # type: ignore[union-attr,arg-type]
        "KB per second (" + ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in sorted(best["sizes"].items())) + ").",  # type: ignore[union-attr]
    ]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("Long clips (720p) against vpdq" if args.long else "Short clips", text)


if __name__ == "__main__":
    main()
