"""Accuracy on real clips that Debian packages ship, against a vPDQ-style baseline.

1. Fetch the clips (benchmarks/debian_media.py: planetblupi cutscenes, lebiniou recordings,
   opencv samples, a GNOME screencast) and build a labelled set from at least 40 real source
   clips with ``astradup synth --sources``.
2. ``astradup index`` and ``astradup match --min-score 0`` over the whole set.
3. Split the videos by source group into train and test halves (no source on both sides).
   Thresholds are fitted on train only: ``astradup tune`` for AstraDup, and the best F1 threshold
   for the baseline. Every figure reported is on the test half, every test pair counted.
4. The baseline: vPDQ-style (pdqhash of every frame kept at 1 fps, a bag of frame hashes per
   video; a frame matches when a frame of the other video is within Hamming distance 31; the pair
   score is the mean of the two videos' matched-frame shares).

Usage: python benchmarks/accuracy.py [--n-sources 40] [--duration 8] [--trials 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import md_table, stamp, write_section  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "accuracy"
TARGETS = [
    ("micro_ap", ">=", 0.97), ("recall_at_p99", ">=", 0.95), ("precision", ">=", 0.995), ("recall", ">=", 0.98),
    ("fp_per_1000", "<=", 1.0), ("partial_recall", ">=", 0.90), ("mean_tiou", ">=", 0.80),
]


def vpdq_hashes(paths: list[Path]) -> dict[str, np.ndarray]:
    import av
    import pdqhash

    out = {}
    for p in paths:
        hs = []
        try:
            with av.open(str(p)) as c:
                vs = c.streams.video[0]
                vs.thread_type = "AUTO"
                nxt = 0.0
                for fr in c.decode(vs):
                    t = float(fr.pts * vs.time_base) if fr.pts is not None else nxt
                    if t + 1e-6 >= nxt:
                        bits, _q = pdqhash.compute(fr.to_ndarray(format="rgb24"))
                        hs.append(np.packbits(bits.astype(bool)))
                        nxt += 1.0
        except Exception as exc:  # noqa: BLE001 - the baseline skips what it cannot read
            print(f"baseline: {p.name}: {exc}")
        out[p.name] = np.array(hs, dtype=np.uint8).reshape(-1, 32)
    return out


def vpdq_pairs(hashes: dict[str, np.ndarray], radius: int = 31) -> pd.DataFrame:
    """Every pair of videos with its vPDQ-style score (mean of both matched-frame shares)."""
    names = sorted(k for k, v in hashes.items() if len(v))
    allh = np.concatenate([hashes[n] for n in names])
    owner = np.concatenate([np.full(len(hashes[n]), i) for i, n in enumerate(names)])
    n = len(names)
    # matched[i_frame, video] = frame has a partner within radius in that video
    matched = np.zeros((len(allh), n), dtype=bool)
    for s in range(0, len(allh), 512):
        block = allh[s : s + 512]
        d = np.bitwise_count(block[:, None, :] ^ allh[None, :, :]).sum(axis=2)
        hit = d <= radius
        for v in range(n):
            matched[s : s + 512, v] = hit[:, owner == v].any(axis=1)
    share = np.zeros((n, n))
    for v in range(n):
        share[v] = matched[owner == v].mean(axis=0)
    rows = []
    for i in range(n):
        for j in range(i + 1, n):
            rows.append((names[i], names[j], (share[i, j] + share[j, i]) / 2))
    return pd.DataFrame(rows, columns=["a", "b", "score"])


def best_threshold(pairs: pd.DataFrame, truth: pd.DataFrame, videos: list[str]) -> float:
    from astradup.evaluation import evaluate

    best, best_f1 = 0.5, -1.0
    for th in np.linspace(0.05, 0.95, 37):
        p = pairs.assign(label=np.where(pairs["score"] >= th, "near", "different"))
        f1 = evaluate(truth, p, videos=videos).metrics["f1"]
        if f1 > best_f1:
            best, best_f1 = th, f1
    return float(best)


def restrict(df: pd.DataFrame, videos: set[str]) -> pd.DataFrame:
    return df[df["a"].isin(videos) & df["b"].isin(videos)].reset_index(drop=True)


def verdict(m: dict) -> list[str]:
    out = []
    for k, op, target in TARGETS:
        v = m.get(k)
        ok = v is not None and not (isinstance(v, float) and np.isnan(v)) and (v >= target if op == ">=" else v <= target)
        out.append(f"{k} {op} {target}: {'met' if ok else 'not met'} ({v if v is None else round(float(v), 4)})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-sources", type=int, default=40)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--all-knots", dest="fusion_only", action="store_false",
                    help="also tune the visual calibration knots (default: fusion weights and bands only)")
    args = ap.parse_args()

    from astradup.config import AstradupConfig
    from astradup.evaluation import evaluate, load_truth
    from astradup.execution import run_index, run_match
    from astradup.scoring.pair import rescore_pairs
    from astradup.synth import generate
    from astradup.tuning import split_by_group, tune
    from astradup.tuning.space import tuning_space
    from benchmarks.debian_media import fetch_clips, sources_dir

    t0 = time.time()
    fetch_clips(min_clips=args.n_sources)
    src = sources_dir()
    corpus = CACHE / f"corpus_s{args.seed}_n{args.n_sources}"
    if not (corpus / "ground_truth.csv").exists():
        generate(corpus, sources_dir=src, n_sources=args.n_sources, seed=args.seed, duration=args.duration, progress=True)
    truth = load_truth(corpus / "ground_truth.csv")
    videos = list(truth.attrs["videos"])
    store = CACHE / f"store_s{args.seed}_n{args.n_sources}.duckdb"
    t_gen = time.time() - t0
    s = run_index(corpus, store, progress=True)
    pairs = run_match(store, min_score=0.0, progress=True, out=CACHE / "pairs.csv")
    t_run = time.time() - t0 - t_gen

    train, test = split_by_group(truth, videos, val_fraction=0.5, seed=args.seed)
    train, test = set(train), set(test)
    cfg0 = AstradupConfig()
    # fusion weights and bands only: with the visual knots free as well, 200 trials over-fit the
    # train sources (measured: validation precision fell from 0.78 to 0.51)
    tr_pairs = restrict(pairs, train)
    space, rescore = tuning_space("f1", tr_pairs, args.fusion_only)
    res = tune(tr_pairs, truth[truth["a"].isin(train) & truth["b"].isin(train)].copy(), videos=sorted(train), base=cfg0,
               objective="f1", n_trials=args.trials, seed=args.seed, search_space=space,
               rescore=rescore, val_fraction=0.3)
    tuned = res.best_config
    test_truth = truth[truth["a"].isin(test) & truth["b"].isin(test)]
    te_pairs = restrict(pairs, test)
    m_default = evaluate(test_truth, te_pairs, videos=sorted(test))
    m_tuned = evaluate(test_truth, rescore_pairs(te_pairs, tuned), videos=sorted(test))

    base_h = vpdq_hashes([corpus / v for v in videos])
    bp = vpdq_pairs(base_h)
    train_truth = truth[truth["a"].isin(train) & truth["b"].isin(train)]
    th = best_threshold(restrict(bp, train), train_truth, sorted(train))
    bte = restrict(bp, test).assign(label=lambda d: np.where(d["score"] >= th, "near", "different"))
    m_base = evaluate(test_truth, bte, videos=sorted(test))

    keys = ["micro_ap", "recall_at_p99", "precision", "recall", "f1", "fpr", "fp_per_1000", "partial_recall", "mean_tiou"]
    rows = [[k, m_default.metrics.get(k), m_tuned.metrics.get(k), m_base.metrics.get(k)] for k in keys]
    rows = [[r[0], *[float("nan") if x is None else float(x) for x in r[1:]]] for r in rows]
    pt = m_default.per_transform.copy()
    single = pt[~pt["transform"].astype(str).str.contains(r"\+")]
    pb = m_base.per_transform.set_index(["transform", "relation"])["recall"]
    pt_rows = [[r.transform, r.relation, int(r.n), float(r.recall), float(pb.get((r.transform, r.relation), float("nan")))]
               for r in single.sort_values("recall").itertuples()]
    below = [r[0] for r in pt_rows if r[3] < 0.90 and r[0] != "pip"]
    body = [
        stamp(), "",
        f"Labelled set: {len(videos)} videos made by `astradup synth` from {args.n_sources} real source clips "
        f"(Debian packages: planetblupi-common, lebiniou-data, opencv-doc, gnome-user-docs), seed {args.seed}, "
        f"{args.duration:.0f} s per source; {len(truth)} labelled related pairs. Split by source group: "
        f"{len(train)} train videos, {len(test)} test videos. All figures below are on the test half, "
        f"every pair counted ({m_tuned.metrics['n_pairs_total']} pairs).",
        f"Index {s.n_indexed} videos + match: {t_run:.0f} s; generation {t_gen:.0f} s.", "",
        md_table(["metric (test half)", "AstraDup defaults", "AstraDup tuned on train", "vPDQ-style baseline (threshold fitted on train)"], rows), "",
        f"Baseline threshold fitted on train: {th:.3f}. Tuned parameters (train only): `{json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.best_params.items()})}`", "",
        "How the defaults were set: `match.partial_margin` = 0.05 was chosen on the train half of this set; "
        "`match.distinct_margin` = 0.012 was read off score quantiles of an earlier build of this set (all "
        "pairs, so test pairs influenced it); the other knots were set by hand on the procedural demo corpus.", "",
        f"µAP margin over the baseline: defaults {m_default.metrics['micro_ap'] - m_base.metrics['micro_ap']:+.3f}, "
        f"tuned {m_tuned.metrics['micro_ap'] - m_base.metrics['micro_ap']:+.3f} (goal >= +0.15).", "",
        "Targets (defaults, test half):", "", *[f"- {v}" for v in verdict(m_default.metrics)],
        "- per-transform recall >= 0.90 except picture-in-picture: "
        + ("met" if not below else "not met (below: " + ", ".join(below) + ")"), "",
        "Targets (tuned on train, test half):", "", *[f"- {v}" for v in verdict(m_tuned.metrics)], "",
        "Recall per transform (source vs copy; AstraDup defaults vs baseline; test half):", "",
        md_table(["transform", "relation", "pairs", "AstraDup recall", "baseline recall"], pt_rows), "",
        "False duplicates (defaults, test half) by truth class: "
        + ", ".join(f"{c} {int(m_default.confusion.loc[c, ['exact', 'near']].sum())}" for c in ("similar", "different"))
        + " (similar = other segments of the same recording, counted as negatives).", "",
        "Confusion matrix (defaults, test half; rows truth, columns predicted):", "",
        "```", m_default.confusion.to_string(), "```",
    ]
    text = "\n".join(body)
    print(text)
    (CACHE / "accuracy.json").write_text(json.dumps({"default": m_default.to_dict()["metrics"], "tuned": m_tuned.to_dict()["metrics"],
                                                     "baseline": m_base.to_dict()["metrics"], "params": res.best_params}, default=str, indent=1))
    if not args.no_write:
        write_section("Accuracy on real clips", text)


if __name__ == "__main__":
    main()
