"""Extraction throughput, as ratios against references measured in the same run.

References (same files, same machine, same run):
  * bare full decode: ``ffmpeg -i FILE -f null -`` (FFmpeg's own threads), one file after another;
  * vPDQ-style hashing: decode every frame (PyAV), keep 1 fps, PDQ-hash each kept frame.

AstraDup: ``run_index`` with every modality (pHash, MobileNetV2 embeddings, Chromaprint, MFCC,
metadata) on the default LocalCluster, cluster start-up included. Also: each decoder backend's
time to sample 1 fps at 160 px, and peak memory of indexing one long file.

Usage:
    python benchmarks/throughput.py [--clips DIR] [--n 8] [--seconds 60] [--long-minutes 0]
Without --clips it generates 720p H.264 clips (60 s, procedural pictures and melody).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._results import md_table, stamp, write_section  # noqa: E402


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def make_clips(out: Path, n: int, seconds: float, size: str = "1280x720") -> list[Path]:
    kinds = ["mandelbrot=s={s}:r=25", "life=s={s}:r=25:mold=10:ratio=0.4:seed={i}", "testsrc2=s={s}:r=25",
             "cellauto=s={s}:r=25:rule=30:seed={i}"]
    files = []
    for i in range(n):
        p = out / f"clip{i:02d}.mp4"
        if not p.exists():
            src = kinds[i % len(kinds)].format(s=size, i=i)
            subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", src, "-f", "lavfi", "-i",
                            f"aevalsrc='0.4*sin(2*PI*t*(220+{30 * i}*floor(mod(t*3,5))))':s=44100:d={seconds}",
                            "-t", str(seconds), "-vf", "format=yuv420p", "-c:v", "libx264", "-preset", "veryfast",
                            "-c:a", "aac", str(p)], check=True)
        files.append(p)
    return files


def time_ffmpeg_null(files: list[Path]) -> float:
    t = time.perf_counter()
    for f in files:
        subprocess.run([ffmpeg(), "-v", "error", "-i", str(f), "-f", "null", "-"], check=True)
    return time.perf_counter() - t


def vpdq_style(files: list[Path]) -> float:
    """Decode every frame, keep one per second, PDQ-hash it (what vPDQ does per video)."""
    import av
    import pdqhash

    t = time.perf_counter()
    for f in files:
        with av.open(str(f)) as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            nxt = 0.0
            for fr in c.decode(vs):
                ts = float(fr.pts * vs.time_base)
                if ts + 1e-6 >= nxt:
                    pdqhash.compute(fr.to_ndarray(format="rgb24"))
                    nxt += 1.0
    return time.perf_counter() - t


def decoder_times(files: list[Path]) -> dict[str, float]:
    from astradup.media import probe
    from astradup.media.decode import DECODERS, PyAVDecoder

    out = {}
    durs = {f: probe(f).duration for f in files}
    candidates = {"pyav (skip non-ref)": PyAVDecoder(), "pyav (every frame)": PyAVDecoder(skip_nonref=False)}
    for name in DECODERS:
        if name != "pyav":
            candidates[name] = DECODERS[name]()
    for name, dec in candidates.items():
        try:
            t = time.perf_counter()
            for f in files:
                dec.sample(str(f), durs[f])
            out[name] = time.perf_counter() - t
        except Exception as exc:  # noqa: BLE001 - a backend missing here is reported, not fatal
            out[name] = float("nan")
            print(f"{name}: unavailable ({type(exc).__name__}: {exc})")
    return out


def astradup_index(files_dir: Path, workers: int | None, query_file: Path) -> tuple[float, dict, float]:
    from astradup.execution import run_index, run_match, run_query
    from astradup.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.duckdb"
        t = time.perf_counter()
        s = run_index(files_dir, store, workers=workers, progress=False)
        secs = time.perf_counter() - t
        run_match(store, progress=False)  # builds the frame index beside the store
        t = time.perf_counter()
        run_query(query_file, store)
        t_query = time.perf_counter() - t
        with Store(store, read_only=True) as st:
            timings = st.sql("SELECT timings FROM videos")["timings"].tolist()
    import json

    stage = {}
    for tj in timings:
        for k, v in json.loads(tj).items():
            stage[k] = stage.get(k, 0.0) + v
    if s.n_failed:
        print(f"warning: {s.n_failed} files failed")
    return secs, stage, t_query


def long_file_memory(minutes: float, tmpdir: Path, fps: int = 25) -> tuple[float, float]:
    """Index one long 1080p file in a child process; return (seconds, peak RSS in MB)."""
    p = tmpdir / "long1080.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r={fps}", "-f", "lavfi",
                    "-i", "aevalsrc='0.3*sin(2*PI*t*(220+55*floor(mod(t*3,5))))':s=44100", "-t", str(minutes * 60),
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-c:a", "aac", str(p)], check=True)
    code = ("import resource,sys,time; from astradup.execution import run_index; t=time.time(); "
            f"run_index({str(tmpdir)!r}, {str(tmpdir / 'long.duckdb')!r}, eager=True, progress=False); "
            "print(time.time()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, help="folder of real clips (default: generate 720p clips)")
    ap.add_argument("--n", type=int, default=8, help="number of generated clips")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of generated clips")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--long-minutes", type=float, default=0.0, help="also index one long 1080p file of this length")
    ap.add_argument("--long-fps", type=int, default=25, help="frame rate of the long file (lower = quicker to make)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = ap.parse_args()

    cache = Path(__file__).resolve().parent / ".cache" / "throughput"
    cache.mkdir(parents=True, exist_ok=True)
    if args.clips:
        from astradup.media import discover

        files = discover(args.clips)
        files_dir = args.clips
        what = f"{len(files)} clips from {args.clips}"
    else:
        files = make_clips(cache, args.n, args.seconds)
        files_dir = cache
        what = f"{len(files)} generated 1280x720 H.264 clips of {args.seconds:.0f} s (25 fps, AAC)"
    from astradup.media import probe

    total_s = sum(probe(f).duration for f in files)
    print(f"{what}: {total_s:.0f} s of video")

    t_null = time_ffmpeg_null(files)
    print(f"ffmpeg -f null: {t_null:.2f} s")
    t_vpdq = vpdq_style(files)
    print(f"vPDQ-style hashing: {t_vpdq:.2f} s")
    t_ours, stages, t_query = astradup_index(files_dir, args.workers, files[0])
    print(f"astradup index (all modalities, LocalCluster): {t_ours:.2f} s; stage totals {stages}")
    dec = decoder_times(files[: min(4, len(files))])
    print("decoders:", dec)

    rows = [
        ["ffmpeg -i FILE -f null - (bare full decode)", round(t_null, 2), round(len(files) / t_null * 3600), 1.0],
        ["vPDQ-style: full decode + PDQ at 1 fps", round(t_vpdq, 2), round(len(files) / t_vpdq * 3600), round(t_null / t_vpdq, 3)],
        ["astradup index, all modalities", round(t_ours, 2), round(len(files) / t_ours * 3600), round(t_null / t_ours, 3)],
    ]
    body = [stamp(), "", f"Files: {what}; {total_s:.0f} s of video in all.", "",
            md_table(["job", "seconds", "videos/hour", "throughput vs bare decode"], rows), "",
            f"AstraDup vs the vPDQ-style baseline: {t_vpdq / t_ours:.2f}x its throughput "
            f"(goal >= 2.5x: {_met(t_vpdq / t_ours >= 2.5)}); vs bare decode: {t_null / t_ours:.2f}x "
            f"(goal >= 1.0x: {_met(t_null / t_ours >= 1.0)}).", "",
            f"Query latency (`astradup query`, one of these clips against this {len(files)}-video library, "
            f"extraction included, one fresh process with model loading): {t_query:.2f} s. Against a "
            "1M-video index in a warm process, see \"Query latency\" (`benchmarks/query.py`).", "",
            "Stage totals inside AstraDup's workers (seconds, summed over files): "
            + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()), "",
            "Decoder backends, sampling 1 fps at 160x160 from the first "
            f"{min(4, len(files))} files (seconds): " + ", ".join(f"{k} {v:.2f}" for k, v in dec.items())]
    if args.long_minutes > 0:
        with tempfile.TemporaryDirectory() as tmp:
            secs, rss = long_file_memory(args.long_minutes, Path(tmp), args.long_fps)
        body += ["", f"One {args.long_minutes:.0f}-minute 1920x1080 file ({args.long_fps} fps, with audio) indexed "
                 f"eagerly: {secs:.1f} s, peak resident memory {rss:.0f} MB (goal for 2 hours: under 2 GB: "
                 f"{_met(rss < 2048)})."]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("Throughput", text)
    _ = np, resource


if __name__ == "__main__":
    main()
