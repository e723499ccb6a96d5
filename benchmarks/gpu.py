"""GPU figures (issue 10): frame embeddings a second through the shipped MobileNetV2 on CUDA, and
nearest-neighbour search on the GPU.

Three steps, because the GPU host is a bare machine that cannot read this project's corpus:

1. ``--make-frames NPZ`` (here): real frames of the labelled real-clip corpus, sampled and cut as
   ``astradup index`` does (``sampling.frame_size`` pixels, bars and inset removed), with their
   CPU embeddings (the default ONNX Runtime two-pass path) as the reference.
2. ``--frames NPZ --out JSON`` (on the GPU host): ``MobileNetV2(device="cuda")``, the class
   ``astradup index`` runs, embeds those frames (tiled to ``--n`` frames) at several batch sizes;
   frames per second is whole ``extract`` calls (uint8 frames in, normalised float32 embeddings out:
   upload, conversion, both passes and download included), median of ``--rounds``. Its
   embeddings are compared with the CPU reference. Search: faiss-gpu where it imports, else exact
   inner-product top-k with torch on the GPU, labelled as such.
3. ``--record JSON`` (here): the "GPU" section of RESULTS.md.

Usage: python benchmarks/gpu.py --make-frames F.npz [--corpus DIR] [--count 256]
       python benchmarks/gpu.py --frames F.npz --out R.json [--n 16384] [--rounds 5]
       python benchmarks/gpu.py --record R.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CORPUS = ROOT / "benchmarks" / ".cache" / "accuracy" / "corpus_s0_n40"


def make_frames(out: Path, corpus: Path, count: int, seed: int = 0) -> None:
    from astradup.config import AstradupConfig
    from astradup.features.embedding import MobileNetV2
    from astradup.features.preprocess import content_frames_and_box
    from astradup.media import probe, sample_frames

    cfg = AstradupConfig()
    files = sorted(corpus.glob("*.mp4"))
    rng = np.random.default_rng(seed)
    rng.shuffle(files)
    frames: list[np.ndarray] = []
    used = 0
    for f in files:
        used += 1
        info = probe(f)
        s = sample_frames(f, info.duration, cfg.sampling.rate(info.duration), cfg.sampling.frame_size)
        cut, _box = content_frames_and_box(s.frames, inset=cfg.sampling.inset)
        frames.extend(cut[: max(1, len(cut) // 4)])
        if len(frames) >= count:
            break
    x = np.stack(frames[:count]).astype(np.uint8)
    ref = MobileNetV2(device="cpu").extract(x)
    np.savez_compressed(out, frames=x, cpu_embeddings=ref)
    print(f"{len(x)} frames {x.shape[1:]} from {used} files -> {out}")


def _timed(fn, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def embed_figures(frames: np.ndarray, ref: np.ndarray, n: int, rounds: int) -> dict:
    import torch

    from astradup.features.embedding import MobileNetV2

    tiled = np.ascontiguousarray(np.resize(frames, (n, *frames.shape[1:])))
    out: dict = {"frames": n, "frame_shape": list(frames.shape[1:]), "rows": []}
    for mirror in ("two_pass", "symmetric"):
        for batch in (32, 128, 512):
            m = MobileNetV2(device="cuda", batch_size=batch, mirror=mirror)
            m.extract(tiled[: 2 * batch])  # load the weights, warm cuDNN
            torch.cuda.synchronize()
            times = _timed(lambda m=m: m.extract(tiled), rounds)
            med = statistics.median(times)
            out["rows"].append({"mirror": mirror, "batch": batch, "median_s": med, "min_s": min(times),
                                "max_s": max(times), "frames_per_s": n / med})
            print(f"embed {mirror} batch {batch}: {n / med:.0f} frames/s (median of {rounds})", flush=True)
    gpu = MobileNetV2(device="cuda").extract(frames)
    cos = np.sum(gpu * ref, axis=1)
    out["cosine_to_cpu"] = {"min": float(cos.min()), "median": float(np.median(cos)), "frames": len(frames)}
    print(f"cosine GPU vs CPU reference: min {cos.min():.6f} median {np.median(cos):.6f}", flush=True)
    return out


def _search_row(n_db: int, dim: int, dtype, gen, faiss_gpu: bool, rounds: int) -> dict:
    """Top-10 of 1,024 random unit queries among ``n_db`` random unit vectors, exact inner product."""
    import torch

    db = torch.nn.functional.normalize(torch.randn(n_db, dim, device="cuda", generator=gen), dim=1).to(dtype)
    q = torch.nn.functional.normalize(torch.randn(1024, dim, device="cuda", generator=gen), dim=1).to(dtype)
    if faiss_gpu:
        import faiss

        res = faiss.StandardGpuResources()
        index = faiss.GpuIndexFlatIP(res, dim)
        index.add(db.float().cpu().numpy())
        qn = q.float().cpu().numpy()

        def run():
            index.search(qn, 10)

        how = "faiss GpuIndexFlatIP"
    else:

        def run():
            for i in range(0, len(q), 256):
                torch.topk(q[i : i + 256] @ db.T, 10, dim=1)
            torch.cuda.synchronize()

        how = "torch matmul + topk (faiss-gpu not importable)"
    run()
    med = statistics.median(_timed(run, rounds))
    print(f"search {how}: {n_db} x {dim} {dtype}: {len(q) / med:.0f} queries/s", flush=True)
    return {"how": how, "vectors": n_db, "dim": dim, "dtype": str(dtype).replace("torch.", ""),
            "queries": len(q), "k": 10, "median_s": med, "queries_per_s": len(q) / med}


def search_figures(rounds: int) -> dict:
    import torch

    try:
        import faiss

        faiss_gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except ImportError:
        faiss_gpu = False
    gen = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    for n_db, dim, dtype in ((1_000_000, 96, torch.float32), (3_000_000, 96, torch.float16),
                             (1_000_000, 1280, torch.float16)):
        rows.append(_search_row(n_db, dim, dtype, gen, faiss_gpu, rounds))
        torch.cuda.empty_cache()
    return {"faiss_gpu": faiss_gpu, "rows": rows}


def run_gpu(frames_npz: Path, out: Path, n: int, rounds: int) -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: run this step on a GPU host")
    z = np.load(frames_npz)
    res: dict = {"date": time.strftime("%Y-%m-%d"), "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "python": platform.python_version(), "cuda": torch.version.cuda}
    print(json.dumps(res), flush=True)
    res["embed"] = embed_figures(z["frames"], z["cpu_embeddings"], n, rounds)
    res["search"] = search_figures(rounds)
    out.write_text(json.dumps(res, indent=1))


NOTES = """
**faiss-gpu was not measured**, so the search rows above are exact inner-product top-10 in torch on
the same GPU, a stand-in and not the shipped `VectorIndex(use_gpu=...)` path. Why: the machine can
reach nothing outside it and takes at most 64 MiB of files a call, while faiss-gpu 1.15.1 from PyPI
is a 135 MB wheel (`libfaiss.so` 199 MB unpacked) that also needs NVIDIA's CUDA 12 cuBLAS wheels
(hundreds of MB); the machine's image has CUDA 13, and `libfaiss.so` binds versioned symbols
(`cublasCreate_v2@libcublas.so.12`, `cudaFree@libcudart.so.12`), so it cannot borrow the image's
libraries. faiss-gpu-cu12 is built the same way and there is no CUDA 13 build on PyPI.

What changed for the GPU path (2026-11-30): `TorchEmbedder._prepare` moves the uint8 frames to the
device before converting them (a quarter of the bytes of the float input, and the conversion and
normalisation run on the GPU); on CPU the operations and their order are unchanged. The default
`features.batch_size: 32` is well under the GPU's best (14,355 frames/s at 512); it was left alone
because the same setting drives the CPU runtime (larger CPU batches were not measured today). A GPU
user raises it in the config (`features: {batch_size: 512}`). The CPU reference embeddings agree with the GPU's to a cosine of 0.9999
(minimum), which is float32 arithmetic in another order, not a different feature.
"""


def record(path: Path) -> None:
    from benchmarks._results import md_table, write_section

    r = json.loads(path.read_text())
    e = r["embed"]
    best = max(x["frames_per_s"] for x in e["rows"] if x["mirror"] == "two_pass")
    default = next(x for x in e["rows"] if x["mirror"] == "two_pass" and x["batch"] == 32)["frames_per_s"]
    body = [
        f"Measured {r['date']} on a lent {r['gpu']} (torch {r['torch']}, CUDA {r['cuda']}, Python {r['python']}), "
        "through the device tool; command: `python benchmarks/gpu.py --frames F.npz --out R.json` after "
        "`--make-frames` here, recorded with `--record`.",
        "",
        f"Frame embeddings: `MobileNetV2(device=\"cuda\")`, the class `astradup index` runs, on {e['frames']} real "
        f"frames of shape {tuple(e['frame_shape'])} (256 frames of the "
        "labelled real-clip corpus sampled and cut as indexing does, tiled). Frames per second is whole "
        "`extract` calls, uint8 frames in and normalised float32 embeddings out (upload, conversion, both "
        "passes, download), median of the rounds.",
        "",
        md_table(["mirror", "batch", "frames/s", "median s", "min s", "max s"],
                 [[x["mirror"], x["batch"], round(x["frames_per_s"]), x["median_s"], x["min_s"], x["max_s"]]
                  for x in e["rows"]]),
        "",
        f"Default settings (`two_pass`, `features.batch_size: 32`): **{default:,.0f} frames/s**; best two-pass "
        f"{best:,.0f} frames/s (target >= 2,000: **{'met' if default >= 2000 else 'not met'}**). The GPU "
        f"embeddings against the CPU path's (ONNX Runtime) on the 256 frames: cosine min "
        f"{e['cosine_to_cpu']['min']:.6f}, median {e['cosine_to_cpu']['median']:.6f}.",
        "",
        "Search, 1,024 queries, top 10, exact inner product on random unit vectors:",
        "",
        md_table(["how", "vectors", "dim", "dtype", "queries/s", "median s"],
                 [[x["how"], f"{x['vectors']:,}", x["dim"], x["dtype"], round(x["queries_per_s"]), x["median_s"]]
                  for x in r["search"]["rows"]]),
        "",
        NOTES.strip(),
    ]
    write_section("GPU", "\n".join(body))
    print("wrote the GPU section of", ROOT / "benchmarks" / "RESULTS.md")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--make-frames", type=Path, help="write real frames and their CPU embeddings here (step 1)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--count", type=int, default=256)
    ap.add_argument("--frames", type=Path, help="the npz of step 1 (step 2, on the GPU host)")
    ap.add_argument("--out", type=Path, default=Path("gpu.json"))
    ap.add_argument("--n", type=int, default=16384, help="frames a timed extract call embeds")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--record", type=Path, help="write RESULTS.md's GPU section from this JSON (step 3)")
    a = ap.parse_args(argv)
    if a.make_frames:
        make_frames(a.make_frames, a.corpus, a.count)
    elif a.frames:
        run_gpu(a.frames, a.out, a.n, a.rounds)
    elif a.record:
        record(a.record)
    else:
        ap.error("give --make-frames, --frames or --record")


if __name__ == "__main__":
    main()
