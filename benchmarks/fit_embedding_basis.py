"""Fit the compact embedding basis shipped in ``astradup/features/models/`` (reproducible).

Frames: every real video that Debian packages ship (``debian_media.sources_dir()``: 30 videos,
planetblupi cutscenes, lebiniou recordings, opencv samples, a GNOME screencast), sampled at
``--fps`` at 160 px with letterbox bars trimmed, as ``astradup index`` samples, and embedded by
the default MobileNetV2 (a frame plus its mirror image, full 1280 dimensions).
The basis is their top ``--dim`` right singular vectors (``fit_compact_basis``: uncentred, so
projected cosines stay close to the full ones), saved as float16 with a JSON card beside it.

Note: the labelled real-clip set of ``accuracy.py`` is cut from the same 30 videos, so its
figures use a basis fitted on their material; ``embedding.py`` also measures a basis fitted
without the evaluated material (held out).

Usage: python benchmarks/fit_embedding_basis.py [--fps 4] [--dim 128] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def source_embeddings(fps: float, exclude: set[str] | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Full-dimension embeddings of the Debian videos' frames (sampled at ``fps``), less the
    videos named in ``exclude``; the names used; the name of each frame's video."""
    from astradup.features.embedding import MobileNetV2
    from astradup.features.preprocess import content_frames
    from astradup.media.decode import sample_frames
    from astradup.media.probe import probe
    from benchmarks.debian_media import sources_dir

    ex = MobileNetV2(compact_dim=0)
    parts, used, owner = [], [], []
    for f in sorted(sources_dir().iterdir()):
        if exclude and f.name in exclude:
            continue
        info = probe(f)
        fs = sample_frames(f, info.duration, fps, 160, "pyav", 1800, info.rotation)
        parts.append(ex.extract(content_frames(fs.frames)))
        used.append(f.name)
        owner += [f.name] * len(parts[-1])
    return np.concatenate(parts), used, owner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--out", type=Path, default=ROOT / "astradup" / "features" / "models")
    ap.add_argument("--save-embeddings", type=Path, help="also save the frames' full embeddings (npz) here")
    args = ap.parse_args()
    import importlib.metadata as md

    from astradup.features.embedding import COMPACT_BASIS, fit_compact_basis

    x, used, owner = source_embeddings(args.fps)
    if args.save_embeddings:
        np.savez(args.save_embeddings, x=x, owner=np.asarray(owner))
    basis = fit_compact_basis(x, args.dim)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / COMPACT_BASIS
    np.savez_compressed(path, mean=basis["mean"].astype(np.float16), components=basis["components"].astype(np.float16))
    s = np.linalg.svd(x, compute_uv=False)
    card = {
        "what": "projection of L2-normalised MobileNetV2 frame embeddings (frame + mirror image, 160 px "
                "input) to features.compact_dim dimensions: y = normalise((e - mean) @ components[:d].T)",
        "in_dim": int(x.shape[1]), "out_dim": args.dim, "centred": False, "dtype": "float16",
        "training_data": f"{len(x)} frames at {args.fps:g} fps from the {len(used)} real videos Debian packages "
                         "ship (benchmarks/debian_media.py): " + ", ".join(used),
        "energy_kept": float((s[: args.dim] ** 2).sum() / (s**2).sum()),
        "script": f"python benchmarks/fit_embedding_basis.py --fps {args.fps:g} --dim {args.dim}",
        "versions": {p: md.version(p) for p in ("torch", "onnxruntime", "numpy", "av")},
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB, {len(x)} frames, energy kept {card['energy_kept']:.3f}")


if __name__ == "__main__":
    main()
