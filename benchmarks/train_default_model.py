"""Reproduce the pair model shipped in ``astradup/scoring/models/default`` and measure it.

1. Take the labelled sets that ``benchmarks/accuracy.py`` builds (``--sets``: the real-clip set,
   ``--media debian``, and the held-out set, ``--media heldout``; 40 Debian source clips each,
   ``astradup synth``, seed 0) and their indexed stores; work on copies of the stores.
2. Frames indexed before frame quality existed get it now: each video is decoded again exactly as
   ``astradup index`` samples it and :func:`astradup.features.quality.frame_quality` is stored
   (a store indexed with this version already has it; nothing is re-embedded).
3. ``run_match --min-score 0`` with the rule scorer (every candidate the frame search proposes,
   with the evidence each explanation carries; without ``match.expand_top``'s pairs, see below).
4. Split each set's videos by source group exactly as ``benchmarks/accuracy.py`` does
   (``split_by_group(truth, videos, val_fraction=0.5, seed=0)``). Train on the train halves only
   (``train_pair_model``: five 30 % grouped hold-outs inside them, the first for the card's
   metrics, the median of their operating points for the model's; then a refit on all of them), save the model, and report on each set's test half: the
   rule scorer and the learned scorer, every pair counted. No test-half video is trained on.

Usage: python benchmarks/train_default_model.py [--sets debian,heldout] [--out astradup/scoring/models/default]
       [--work DIR] [--store STORE] [--max-source N]

``--max-source N`` keeps only the real-clip set's videos made from source clips 1..N (and the
distractors).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = ROOT / "benchmarks" / ".cache" / "accuracy"


def backfill_quality(store_path: Path, progress: bool = True) -> int:
    """Store frame quality for frames that have none, decoding each video as indexing does."""
    from tqdm.auto import tqdm

    from astradup.config import AstradupConfig
    from astradup.features.preprocess import content_frames
    from astradup.features.quality import frame_quality
    from astradup.media.decode import sample_frames
    from astradup.store import Store

    cfg = AstradupConfig().sampling
    n = 0
    rows: list[tuple[int, int, float]] = []
    with Store(store_path) as st:
        todo = st.sql("SELECT v.video_id, v.path, v.duration, v.rotation, v.decoder, v.n_frames FROM videos v "
                      "WHERE EXISTS (SELECT 1 FROM frames f WHERE f.video_id = v.video_id AND f.quality IS NULL)")
        for r in tqdm(list(todo.itertuples()), desc="quality", disable=not progress):
            try:
                s = sample_frames(r.path, float(r.duration), cfg.rate(float(r.duration)), cfg.frame_size, "pyav", cfg.max_frames, int(r.rotation or 0))
            except Exception as exc:  # noqa: BLE001 - a video that no longer decodes keeps NULL (unknown)
                print(f"quality: {r.path}: {exc}")
                continue
            q = frame_quality(content_frames(s.frames))
            if len(q) != int(r.n_frames):
                print(f"quality: {r.path}: {len(q)} frames decoded, {r.n_frames} stored; left unknown")
                continue
            rows += [(int(r.video_id), i, float(v)) for i, v in enumerate(q)]
            n += 1
        st.con.register("_quality_in", pd.DataFrame(rows, columns=["video_id", "idx", "q"]))
        st.con.execute("UPDATE frames SET quality = _quality_in.q FROM _quality_in "
                       "WHERE frames.video_id = _quality_in.video_id AND frames.idx = _quality_in.idx")
    return n


SETS = {"debian": "", "heldout": "heldout_"}  # accuracy.py --media NAME: the cache tag's prefix


def set_pairs(name: str, args, work: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str], dict]:
    """One labelled set: its rule-scored candidate pairs (matched on a copy of its indexed store,
    frame quality backfilled), its truth, and its train and test halves as accuracy.py splits them."""
    from astradup.config import AstradupConfig
    from astradup.evaluation import load_pairs, load_truth
    from astradup.execution import run_match
    from astradup.tuning import split_by_group

    tag = SETS[name] + f"s{args.seed}_n{args.n_sources}" + (f"_h{args.hard_negatives}" if args.hard_negatives else "")
    truth = load_truth(CACHE / f"corpus_{tag}" / "ground_truth.csv")
    videos = list(truth.attrs["videos"])
    src_store = (args.store if name == "debian" and args.store else None) or CACHE / f"store_{tag}.duckdb"
    work.mkdir(parents=True, exist_ok=True)
    store, pairs_csv = work / "store.duckdb", work / "pairs.csv"
    t0 = time.time()
    if not store.exists():
        for f in src_store.parent.glob(src_store.name + "*"):
            if f.is_file():  # the store and its frame index (not the run records folder)
                shutil.copy2(f, work / f.name.replace(src_store.name, "store.duckdb"))
    n_q = backfill_quality(store)
    # The model learns from the pairs the frame search proposes (the evidence of one pair). The
    # pairs match.expand_top adds afterwards (two whole copies of a common video) are left out:
    # many are compound edits with weak evidence of their own, and learning that weak evidence
    # can be a copy raised other-edit and other-stretch look-alikes over the operating point
    # (benchmarks/RESULTS.md, 2026-11-30 fourth session). They are verified by this model at match time.
    rules = AstradupConfig().replace(**{"fusion.scorer": "rules", "match.expand_top": 0})
    if args.rematch or not pairs_csv.exists():
        run_match(store, rules, out=pairs_csv, min_score=0.0, progress=True)
    pairs = load_pairs(pairs_csv)
    from astradup.store import Store

    with Store(store, read_only=True) as st:
        names = set(st.sql("SELECT rel_path FROM videos")["rel_path"])
    if args.max_source and name == "debian":
        keep = {f"src{k:02d}" for k in range(1, args.max_source + 1)}
        names = {n for n in names if n.split("__")[0].split(".")[0] in keep or n.startswith("dis")}
    # the split of the whole set, as benchmarks/accuracy.py makes it, restricted to the videos kept
    train, test = split_by_group(truth, videos, val_fraction=0.5, seed=args.seed)
    groups = truth.attrs.get("video_groups") or {}
    truth = truth[truth["a"].isin(names) & truth["b"].isin(names)].copy()
    truth.attrs = {"videos": sorted(names), "video_groups": {k: v for k, v in groups.items() if k in names}}
    pairs = pairs[pairs["a"].isin(names) & pairs["b"].isin(names)].reset_index(drop=True)
    info = {"videos": len(names), "train": len(set(train) & names), "quality_backfilled_videos": n_q,
            "seconds": round(time.time() - t0)}
    return pairs, truth, sorted(set(train) & names), sorted(set(test) & names), info


def _named(pairs: pd.DataFrame, truth: pd.DataFrame, prefix: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The set's video names prefixed with ``prefix`` (sets are trained on together)."""
    if not prefix:
        return pairs, truth
    pairs = pairs.assign(a=prefix + pairs["a"], b=prefix + pairs["b"])
    t = truth.assign(a=prefix + truth["a"], b=prefix + truth["b"])
    if "group" in t:
        t["group"] = prefix + t["group"].astype(str)
    t.attrs = {"videos": [prefix + v for v in truth.attrs["videos"]],
               "video_groups": {prefix + k: prefix + str(v) for k, v in truth.attrs["video_groups"].items()}}
    return pairs, t


def restrict(df: pd.DataFrame, vs: set[str] | list[str]) -> pd.DataFrame:
    return df[df["a"].isin(vs) & df["b"].isin(vs)].reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-sources", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hard-negatives", type=int, default=10, help="as benchmarks/accuracy.py (which set to train on)")
    ap.add_argument("--sets", default="debian,heldout",
                    help="labelled sets (accuracy.py --media) whose train halves the model learns from, comma-separated")
    ap.add_argument("--work", type=Path, default=CACHE / "learned")
    ap.add_argument("--out", type=Path, default=ROOT / "astradup" / "scoring" / "models" / "default")
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5, help="grouped hold-outs whose median operating point the model keeps")
    ap.add_argument("--rematch", action="store_true", help="match again even if the work folder has pairs")
    ap.add_argument("--store", type=Path, default=None, help="indexed store of the debian set (default: the accuracy cache's)")
    ap.add_argument("--max-source", type=int, default=0, help="debian set: keep videos of source clips 1..N only (0: all)")
    args = ap.parse_args()

    from astradup.config import AstradupConfig
    from astradup.evaluation import evaluate
    from astradup.scoring.pair import rescore_pairs
    from astradup.tuning.train import train_pair_model

    sets = [x.strip() for x in args.sets.split(",") if x.strip()]
    if not sets or any(x not in SETS for x in sets):
        ap.error(f"--sets: choose from {', '.join(SETS)}")
    data, info = {}, {}
    for name in sets:
        work = args.work if sets == ["debian"] else args.work / name  # one set: the folder it always used
        pairs, truth, tr, te, info[name] = set_pairs(name, args, work)
        data[name] = (*_named(pairs, truth, f"{name}/" if len(sets) > 1 else ""), tr, te)
    prefix = (lambda n: f"{n}/") if len(sets) > 1 else (lambda n: "")  # noqa: E731
    tr_all = sorted(prefix(n) + v for n in sets for v in data[n][2])
    tr_pairs = pd.concat([restrict(data[n][0], tr_all) for n in sets], ignore_index=True)
    tr_truth = pd.concat([restrict(data[n][1], tr_all) for n in sets], ignore_index=True)
    tr_truth.attrs = {"videos": tr_all, "video_groups": {k: v for n in sets for k, v in data[n][1].attrs["video_groups"].items()
                                                         if k in set(tr_all)}}
    t0 = time.time()
    described = "; ".join(
        f"{'real-clip' if n == 'debian' else 'held-out'} set (benchmarks/accuracy.py --media {n}: astradup synth over "
        f"{args.n_sources} Debian source clips, seed {args.seed}, {args.hard_negatives} sets of hard negatives): train half "
        f"of split_by_group(val_fraction=0.5, seed={args.seed}), {info[n]['train']} videos"
        + (f" of source clips 1..{args.max_source} and the distractors" if args.max_source and n == "debian" else "")
        for n in sets)
    res = train_pair_model(tr_pairs, tr_truth, videos=tr_all, out=args.out, holdout=0.3, seed=args.seed,
                           repeats=args.repeats, name="default", max_iter=args.max_iter,
                           training_data=described + "; reproduce with benchmarks/train_default_model.py --sets " + ",".join(sets)
                           + (f" --max-source {args.max_source}" if args.max_source else ""))
    t_t = time.time() - t0
    rules = AstradupConfig().replace(**{"fusion.scorer": "rules", "match.expand_top": 0})
    learned = AstradupConfig().replace(**{"fusion.model": str(args.out)})
    out: dict = {}
    for n in sets:
        pairs, truth, _, te = data[n]
        te_v = sorted(prefix(n) + v for v in te)
        for name, cfg in (("rules", rules), ("learned", learned)):
            r = evaluate(restrict(truth, te_v), rescore_pairs(restrict(pairs, te_v), cfg), videos=te_v)
            m = r.metrics
            row = {k: m[k] for k in ("micro_ap", "recall_at_p99", "precision", "recall", "fp_per_1000", "partial_recall", "mean_tiou")}
            pt = r.per_transform
            row["per_transform"] = {f"{t}/{rel}": round(float(x), 3) for t, rel, x in
                                    zip(pt["transform"], pt["relation"], pt["recall"]) if "+" not in str(t)}
            row["confusion"] = r.confusion.to_dict()
            out.setdefault(n, {})[name] = row
    report = {"heldout_in_train": res.heldout, "test": out, "sets": info, "train_seconds": round(t_t)}
    print(json.dumps(report, indent=1, default=float))
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "train_report.json").write_text(json.dumps({"heldout_in_train": res.heldout, "test": out}, indent=1, default=float))


if __name__ == "__main__":
    main()
