"""The ``astradup`` command line (typer). Every command has ``--help``; long work shows progress."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from astradup.config import AstradupConfig
from astradup.errors import AstradupError
from astradup.labels import LABELS

app = typer.Typer(
    name="astradup",
    help="Find duplicate and near-duplicate videos, and say why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
pipeline_app = typer.Typer(help="Run papermill pipelines defined in pipelines/*.yaml.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML/JSON config file (see `astradup config`).")]
StoreOpt = Annotated[Path, typer.Option("--store", "-s", help="DuckDB store file.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
MetricsFileOpt = Annotated[Path | None, typer.Option(
    "--metrics-file", help="Prometheus text file for the run's metrics (node exporter textfile collector) "
    "[default: <store>.metrics.prom].")]
PushgatewayOpt = Annotated[str | None, typer.Option(help="Also push the run's metrics to this Pushgateway URL.")]


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _load_config(path: Path | None, **overrides) -> AstradupConfig:
    cfg = AstradupConfig.from_file(path)
    dotted = {k: v for k, v in overrides.items() if v is not None}
    return cfg.replace(**dotted) if dotted else cfg


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _truth_with_decisions(truth_df, decisions: Path | None):
    """The generated truth, with the standing reviewer decisions of store ``decisions`` merged in."""
    if decisions is None:
        return truth_df
    from astradup.review.learn import reviewed_truth

    n0 = len(truth_df)
    out = reviewed_truth(str(decisions), truth_df)
    typer.echo(f"truth: {n0} generated pairs + reviewer decisions -> {len(out)} labelled pairs", err=True)
    return out


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    _setup_logging(verbose)


@app.command()
def index(
    media_dir: Annotated[Path, typer.Argument(help="Folder of videos (searched recursively, read-only).")],
    store: StoreOpt,
    fps: Annotated[float | None, typer.Option(help="Frames sampled per second [default 1.0].")] = None,
    config: ConfigOpt = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.")] = None,
    gpus: Annotated[bool, typer.Option("--gpus", help="Use dask-cuda's LocalCUDACluster (gpu extra).")] = False,
    workers: Annotated[int | None, typer.Option(help="LocalCluster worker processes [default: one per core].")] = None,
    eager: Annotated[bool, typer.Option("--eager", help="Run in this process, without Dask.")] = False,
    metrics_file: MetricsFileOpt = None,
    pushgateway: PushgatewayOpt = None,
    commit_every: Annotated[float | None, typer.Option(
        help="Commit extracted videos at least this often, in seconds (0: each on its own); a killed run "
             "loses what came since [default 2].")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Probe and extract every video under MEDIA_DIR into the store (incremental)."""
    from astradup.api import Library

    try:
        lib = Library(store, _load_config(config, **{"sampling.fps": fps}))
        summary = lib.index(
            media_dir, scheduler=scheduler, gpus=gpus, workers=workers, progress=not quiet, eager=eager,
            on_dashboard=lambda link: typer.echo(f"Dask dashboard: {link}", err=True),
            metrics_file=metrics_file, pushgateway=pushgateway, commit_every=commit_every,
        )
    except AstradupError as exc:
        _fail(exc)
    for line in summary.lines():
        typer.echo(line)


@app.command()
def match(
    store: StoreOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="pairs.csv to write.")] = Path("pairs.csv"),
    min_score: Annotated[float | None, typer.Option(help="Drop pairs below this fused score (0 keeps every candidate) [default 0.5].")] = None,
    config: ConfigOpt = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address: verify candidates on its workers.")] = None,
    workers: Annotated[int | None, typer.Option(help="LocalCluster worker processes, or threads verifying in this process [default: one per core].")] = None,
    eager: Annotated[bool, typer.Option("--eager", help="Verify in this process even for many candidates.")] = False,
    metrics_file: MetricsFileOpt = None,
    pushgateway: PushgatewayOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Retrieve candidate pairs with FAISS, verify, fuse and classify them; write pairs.csv.

    Verification runs on Dask with --scheduler, and on a LocalCluster by default when there are
    many candidates (see astradup.execution.stages.DASK_MATCH_ABOVE); the pairs are the same."""
    from astradup.api import Library

    try:
        df = Library(store, _load_config(config)).match(out=out, min_score=min_score, progress=not quiet,
                                                        scheduler=scheduler, workers=workers, eager=eager,
                                                        metrics_file=metrics_file, pushgateway=pushgateway)
    except AstradupError as exc:
        _fail(exc)
    counts = df["label"].value_counts().to_dict() if len(df) else {}
    typer.echo(f"{df.attrs.get('n_candidates', 0)} candidates -> {len(df)} pairs written to {out}")
    typer.echo("  " + ", ".join(f"{k}: {counts.get(k, 0)}" for k in LABELS))


@app.command()
def query(
    video: Annotated[Path, typer.Argument(help="A video to look up (it is not added to the store).")],
    store: StoreOpt,
    top: Annotated[int, typer.Option(help="Most matches to print.")] = 10,
    min_score: Annotated[float, typer.Option(help="Smallest fused score to print.")] = 0.5,
    fast: Annotated[bool, typer.Option(
        "--fast", help="Decode only the query's keyframes (much faster on long-GOP video; falls back "
        "to the configured fps when keyframes are too sparse); segments are then coarser.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Is this video already in the library? Prints its matches with scores and segments."""
    from astradup.api import Library

    t = time.perf_counter()
    try:
        cfg = _load_config(config, **({"sampling.keyframes_only": True} if fast else {}))
        df = Library(store, cfg).query(video, top=top, min_score=min_score)
    except AstradupError as exc:
        _fail(exc)
    cols = ["b", "score", "label", "visual", "audio", "metadata", "a_start", "a_end", "b_start", "b_end"]
    typer.echo(df[cols].to_string(index=False) if len(df) else "no match")
    typer.echo(f"({time.perf_counter() - t:.2f} s, extraction included)", err=True)


@app.command("eval")
def eval_(
    truth: Annotated[Path, typer.Option(help="ground_truth.csv (videos.csv beside it lists every video).")],
    pairs: Annotated[Path, typer.Option(help="pairs.csv written by `astradup match`.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the metrics as JSON here.")] = None,
) -> None:
    """Score pairs.csv against the ground truth: µAP, P/R/F1, FPR, confusion matrix, per-transform recall."""
    from astradup.evaluation import evaluate, load_pairs, load_truth

    try:
        res = evaluate(load_truth(truth), load_pairs(pairs))
    except AstradupError as exc:
        _fail(exc)
    typer.echo(json.dumps(res.to_dict()["metrics"], indent=2, default=float))
    typer.echo(res.table())
    if json_out:
        res.to_json(json_out)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the labelled set into.")],
    sources: Annotated[Path | None, typer.Option(help="Folder of your own source videos (read-only); default: procedural sources.")] = None,
    n_sources: Annotated[int, typer.Option(help="Number of source videos.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same set).")] = 0,
    duration: Annotated[float, typer.Option(help="Seconds per source clip.")] = 8.0,
    width: Annotated[int, typer.Option(help="Frame width of generated videos.")] = 320,
    height: Annotated[int, typer.Option(help="Frame height of generated videos.")] = 180,
    transforms: Annotated[str | None, typer.Option(help="Comma-separated transform names (default: all; see --list).")] = None,
    n_distractors: Annotated[int, typer.Option(help="Unrelated videos added as negatives.")] = 2,
    n_partial: Annotated[int | None, typer.Option(help="Sources that get partial copies [default: all].")] = None,
    n_similar: Annotated[int | None, typer.Option(help="Sources that get a similar (non-copy) video [default: all].")] = None,
    workers: Annotated[int | None, typer.Option(help="Parallel ffmpeg processes.")] = None,
    hard_negatives: Annotated[int, typer.Option(help="Sets of hard negatives (low-detail videos, slideshows, re-edits, neighbouring segments, same soundtrack over other pictures), labelled similar or different.")] = 0,
    music: Annotated[Path | None, typer.Option(help="Folder of music files (read-only) for the other music of trailers and hard negatives [default: seeded tunes].")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the transforms and exit.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Generate a labelled set: videos plus ground_truth.csv and videos.csv."""
    from astradup.synth import generate, list_transforms

    if list_:
        typer.echo("\n".join(list_transforms()))
        return
    try:
        truth = generate(out_dir, sources_dir=sources, n_sources=n_sources, seed=seed, duration=duration,
                         width=width, height=height, transforms=transforms.split(",") if transforms else None,
                         n_distractors=n_distractors, n_partial=n_partial, n_similar=n_similar, workers=workers,
                         hard_negatives=hard_negatives, music_dir=music, progress=not quiet)
    except AstradupError as exc:
        _fail(exc)
    typer.echo(f"{len(truth)} labelled pairs; videos and ground_truth.csv in {out_dir}")


@app.command()
def tune(
    truth: Annotated[Path, typer.Option(help="ground_truth.csv of the labelled set.")],
    pairs: Annotated[Path, typer.Option(help="pairs.csv from `astradup match --min-score 0`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Tuned config (YAML) to write.")] = Path("tuned.yaml"),
    trials: Annotated[int, typer.Option(help="Optuna trials.")] = 200,
    objective: Annotated[str, typer.Option(help="f1 | recall_at_precision | micro_ap")] = "f1",
    min_precision: Annotated[float, typer.Option(help="Precision floor for recall_at_precision.")] = 0.99,
    max_fpr: Annotated[float | None, typer.Option(help="Constraint: maximum false-positive rate.")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL or file [default: beside --out].")] = None,
    seed: Annotated[int, typer.Option(help="Sampler seed.")] = 0,
    fusion_only: Annotated[bool, typer.Option("--fusion-only", help="Search only fusion weights and bands (not the visual calibration knots).")] = False,
    decisions: Annotated[Path | None, typer.Option("--decisions", help="Store whose reviewer decisions join the truth as labelled pairs (they win over generated labels).")] = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Tune fusion weights, class bands and the visual calibration on a train split (grouped by
    source); report validation figures only and write a config that `astradup match --config` takes."""
    from astradup.evaluation import load_pairs, load_truth
    from astradup.tuning import tune as run_tune
    from astradup.tuning.space import tuning_space

    try:
        st = storage or f"sqlite:///{out.with_suffix('.optuna.db').resolve()}"
        table = load_pairs(pairs)
        space, rescore = tuning_space(objective, table, fusion_only)
        truth_df = _truth_with_decisions(load_truth(truth), decisions)
        base = _load_config(config)
        if base.fusion.scorer != "rules":
            # Optuna re-fuses the modality scores: it tunes the rule scorer (the learned scorer is
            # fitted with `astradup train`), so the config it writes selects that scorer
            typer.echo("tuning the rule scorer (fusion.scorer: rules); the learned scorer is trained with `astradup train`", err=True)
            base = base.replace(**{"fusion.scorer": "rules"})
        res = run_tune(table, truth_df, base=base, objective=objective,
                       n_trials=trials, seed=seed, storage=st, min_precision=min_precision, max_fpr=max_fpr,
                       search_space=space, rescore=rescore, progress=not quiet)
        res.write_config(out)
    except AstradupError as exc:
        _fail(exc)
    keys = ("f1", "precision", "recall", "micro_ap", "fpr")
    typer.echo("validation      " + "  ".join(f"{k:>9s}" for k in keys))
    typer.echo("  default       " + "  ".join(f"{res.default_val_metrics.get(k, float('nan')):9.4f}" for k in keys))
    typer.echo("  tuned         " + "  ".join(f"{res.val_metrics.get(k, float('nan')):9.4f}" for k in keys))
    typer.echo(f"tuned config written to {out} (use: astradup match --config {out})")


@app.command()
def train(
    truth: Annotated[Path, typer.Option(help="ground_truth.csv of the labelled set (videos.csv beside it lists every video).")],
    pairs: Annotated[Path, typer.Option(help="pairs.csv from `astradup match --min-score 0` over that set.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write (model.npz + card.json).")] = Path("pair_model"),
    holdout: Annotated[float, typer.Option(help="Share of the videos (by source group) held out to measure the model; 0 skips it.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Split and model seed.")] = 0,
    repeats: Annotated[int, typer.Option(help="Grouped hold-outs drawn; the model keeps the median of their operating points.")] = 1,
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="Refit on every pair after measuring.")] = True,
    max_iter: Annotated[int, typer.Option(help="Boosting iterations.")] = 300,
    decisions: Annotated[Path | None, typer.Option("--decisions", help="Store whose reviewer decisions join the truth as labelled pairs (they win over generated labels).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Train the learned pair scorer on labelled pairs (e.g. a set `astradup synth --sources` made
    from your own clips); use it with `fusion.model: OUT` in the config."""
    from astradup.evaluation import load_pairs, load_truth
    from astradup.tuning.train import train_pair_model

    try:
        res = train_pair_model(load_pairs(pairs), _truth_with_decisions(load_truth(truth), decisions), out=out, holdout=holdout, seed=seed,
                               repeats=repeats, refit=refit, training_data=f"{truth} + {pairs}", config=_load_config(config),
                               max_iter=max_iter)
    except AstradupError as exc:
        _fail(exc)
    if res.heldout:
        typer.echo("held-out " + "  ".join(f"{k} {v:.4f}" for k, v in res.heldout.items() if isinstance(v, float)))
    typer.echo(f"pair model ({res.n_train} training pairs) written to {res.out}; use it with fusion.model: {res.out}")


@app.command()
def report(
    store: StoreOpt,
    truth: Annotated[Path, typer.Option(help="ground_truth.csv.")],
    pairs: Annotated[Path, typer.Option(help="pairs.csv.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the report.")] = Path("reports/latest"),
    config: ConfigOpt = None,
) -> None:
    """Render the precision/recall HTML report (papermill + nbconvert, plotly figures)."""
    from astradup.orchestration import render_report

    try:
        html = render_report(store, truth, pairs, out, config=_load_config(config))
    except AstradupError as exc:
        _fail(exc)
    typer.echo(f"report: {html}")


@pipeline_app.command("run")
def pipeline_run(
    name: Annotated[str, typer.Argument(help="Pipeline name in pipelines/ (e.g. nightly) or a YAML path.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Override a parameter: key=value.")] = None,
    reports_dir: Annotated[Path, typer.Option(help="Where dated run folders go.")] = Path("reports"),
) -> None:
    """Run a pipeline's notebooks with papermill into reports/<pipeline>/<timestamp>/."""
    from astradup.orchestration import run_pipeline

    overrides = {}
    for p in param or []:
        k, sep, v = p.partition("=")
        if not sep:
            _fail(AstradupError(f"--param must be key=value, but got {p!r}"))
        overrides[k] = v
    try:
        out = run_pipeline(name, overrides, reports_dir=reports_dir)
    except AstradupError as exc:
        _fail(exc)
    typer.echo(f"pipeline output: {out}")


@app.command()
def export(
    store: StoreOpt,
    parquet: Annotated[Path, typer.Option(help="Folder to write one Parquet file per table.")],
) -> None:
    """Export every store table as Parquet."""
    from astradup.store import Store

    try:
        with Store(store, read_only=True) as st:
            files = st.export_parquet(parquet)
    except AstradupError as exc:
        _fail(exc)
    for f in files:
        typer.echo(str(f))


@app.command()
def probe(files: Annotated[list[Path], typer.Argument(help="Video files.")]) -> None:
    """Print what each file is (JSON lines); bad files print their error and set exit status 1."""
    from astradup.media import probe as probe_file

    bad = 0
    for f in files:
        try:
            typer.echo(json.dumps(probe_file(f).to_dict()))
        except AstradupError as exc:
            bad += 1
            typer.echo(json.dumps({"path": str(f), "error": type(exc).__name__, "message": str(exc)}))
    raise typer.Exit(code=1 if bad else 0)


@app.command()
def explain(
    store: StoreOpt,
    a: Annotated[str, typer.Argument(help="First video (path relative to the media folder).")],
    b: Annotated[str, typer.Argument(help="Second video.")],
    config: ConfigOpt = None,
) -> None:
    """Explain one pair: modality scores, aligned segments and best matching frames."""
    from astradup.api import Library

    try:
        ex = Library(store, _load_config(config)).explain(a, b)
    except AstradupError as exc:
        _fail(exc)
    typer.echo(json.dumps({k: ex[k] for k in ("a", "b", "scores", "segments", "top_frames", "explanation")}, indent=2, default=str))


@app.command("config")
def show_config(config: ConfigOpt = None) -> None:
    """Print the effective configuration (defaults, file, environment) as YAML."""
    import yaml

    try:
        typer.echo(yaml.safe_dump(_load_config(config).to_dict(), sort_keys=False))
    except AstradupError as exc:
        _fail(exc)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo corpus, store and outputs go.")] = Path("data/demo"),
    seed: Annotated[int, typer.Option(help="Corpus seed.")] = 0,
    n_sources: Annotated[int, typer.Option(help="Procedural source videos.")] = 4,
    report_: Annotated[bool, typer.Option("--report/--no-report", help="Render the HTML report at the end.")] = True,
    quiet: QuietOpt = False,
) -> None:
    """The main job end to end: generate a labelled corpus, index, match, evaluate, report."""
    from astradup.workflow import run_demo

    try:
        run_demo(workdir, seed=seed, n_sources=n_sources, render=report_, progress=not quiet, echo=typer.echo)
    except AstradupError as exc:
        _fail(exc)


# -- review, decisions and safe actions (astradup.review) ---------------------------------------

@app.command()
def groups(
    store: StoreOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="groups.csv to write.")] = Path("groups.csv"),
) -> None:
    """Cluster exact/near pairs of the latest match into duplicate groups (no daisy chains;
    partial copies listed apart; reviewers' decisions applied)."""
    from astradup.review import duplicate_groups, known_removed
    from astradup.store import Store

    try:
        with Store(store, read_only=True) as st:
            df = duplicate_groups(st)
            back = known_removed(st)
    except AstradupError as exc:
        _fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    roles = df["role"].value_counts().to_dict()
    typer.echo(f"{df['group'].nunique() if len(df) else 0} groups written to {out}: "
               + ", ".join(f"{k}: {roles.get(k, 0)}" for k in ("center", "member", "partial", "chained")))
    for r in back.itertuples():
        typer.echo(f"known removed duplicate: {r.rel_path} is a copy of {r.removed} (removed by action {r.action_id})")


@app.command()
def decide(
    store: StoreOpt,
    a: Annotated[str, typer.Argument(help="First video (absolute, or relative to the media folder).")],
    b: Annotated[str, typer.Argument(help="Second video.")],
    as_: Annotated[str, typer.Option("--as", help="duplicate | not-duplicate | skip")],
    reviewer: Annotated[str | None, typer.Option(help="Who decides [default: login name].")] = None,
    note: Annotated[str | None, typer.Option(help="Free text kept with the decision.")] = None,
) -> None:
    """Record a reviewer's decision about a pair; later match, groups and plans honour it while
    both files are unchanged."""
    from astradup.review import record_decision
    from astradup.store import Store

    try:
        with Store(store) as st:
            row = record_decision(st, a, b, as_, reviewer=reviewer, note=note)
    except AstradupError as exc:
        _fail(exc)
    typer.echo(f"{row['decision']}: {row['a']} | {row['b']} (by {row['reviewer']}, {row['time']:%Y-%m-%d %H:%M:%S} UTC)")


@app.command()
def plan(
    store: StoreOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="plan.json to write (plan.csv beside it).")] = Path("plan.json"),
    rules: Annotated[Path | None, typer.Option(help="Keep rules (YAML: rules, protect, hold).")] = None,
    hold: Annotated[list[str] | None, typer.Option("--hold", help="File or folder on legal hold, absolute or relative to the media folder (repeatable).")] = None,
) -> None:
    """Choose a keeper per group with ordered keep rules and write what would be removed, why,
    and the bytes it frees. Changes nothing."""
    from astradup.review import KeepRules, make_plan, write_plan
    from astradup.store import Store

    try:
        # a relative --hold is held both under the media folder and under the current folder:
        # for a legal hold, holding too much is the safe mistake
        kr = KeepRules.from_file(rules, hold=[x for h in hold or [] for x in dict.fromkeys([h, str(Path(h).absolute())])])
        with Store(store, read_only=True) as st:
            p = make_plan(st, kr)
        js, csv = write_plan(p, out)
    except AstradupError as exc:
        _fail(exc)
    t = p["totals"]
    typer.echo(f"{t['groups']} groups: {t['files_to_remove']} files to remove, {t['bytes_to_free']:,} bytes to free"
               f", {t['ties']} tied (nothing removed)")
    typer.echo(f"plan: {js}  ({csv})")


@app.command("apply")
def apply_(
    plan_file: Annotated[Path, typer.Argument(help="plan.json from `astradup plan`.")],
    quarantine: Annotated[Path, typer.Option(help="Folder the removed files move to (outside the media folder).")],
    link: Annotated[str | None, typer.Option(help="hard | sym: leave a link to the keeper in each removed file's place.")] = None,
    store: Annotated[Path | None, typer.Option("--store", "-s", help="Store to journal in [default: the plan's].")] = None,
    hold: Annotated[list[str] | None, typer.Option("--hold", help="File or folder never to move (repeatable).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Move the plan's removals into the quarantine (re-checking each file; journaled; undoable)."""
    from astradup.review import apply_plan, read_plan

    modes = {None: "quarantine", "hard": "hardlink", "sym": "symlink"}
    try:
        if link not in modes:
            raise AstradupError(f"--link must be hard or sym, but got {link!r}")
        p = read_plan(plan_file)
        t = p["totals"]
        typer.echo(f"{t['files_to_remove']} files ({t['bytes_to_free']:,} bytes) move to {quarantine}"
                   + (f", each replaced by a {link} link to its keeper" if link else ""))
        if not yes and not typer.confirm("Go ahead?", default=False):
            raise typer.Exit(code=1)
        res = apply_plan(p, quarantine, mode=modes[link], store=store, hold=hold)
    except AstradupError as exc:
        _fail(exc)
    for line in res.lines():
        typer.echo(line)
    typer.echo(f"undo with: astradup undo --store {store or p['store']} --action {res.action_ids[0]}")


@app.command()
def undo(
    store: StoreOpt,
    action: Annotated[str | None, typer.Option(help="Action id to undo [default: the latest].")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Undo every action, newest first.")] = False,
) -> None:
    """Put back the files an apply moved (same bytes, same mtime), finishing a crashed apply too."""
    from astradup.review import undo as run_undo

    try:
        res = run_undo(store, action, all_=all_)
    except AstradupError as exc:
        _fail(exc)
    for line in res.lines():
        typer.echo(line)
    if res.counts.get("undo-failed"):
        raise typer.Exit(code=1)
# -- the query service and search (issue 12) -----------------------------------------------------


@app.command()
def serve(
    store: StoreOpt,
    host: Annotated[str, typer.Option(help="Address to bind; keep 127.0.0.1 and put an authenticating proxy in front to share it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    allow_review: Annotated[bool, typer.Option("--allow-review", help="Enable POST /decide (the review page's keys); read-only otherwise.")] = False,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload, MB; larger ones get 413.")] = 512.0,
    workers: Annotated[int, typer.Option(help="Queries extracted at once (the rest wait).")] = 2,
    config: ConfigOpt = None,
) -> None:
    """Serve the library over HTTP: /query, /health, /ready, /metrics, /videos, /pairs, /search,
    and the review page at / (FastAPI + uvicorn)."""
    from astradup.service import ServiceSettings
    from astradup.service import serve as run_server

    try:
        settings = ServiceSettings(
            store=store.resolve(), host=host, port=port, allow_review=allow_review,
            config=_load_config(config) if config else None, max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            max_concurrent_queries=workers,
        )
    except AstradupError as exc:
        _fail(exc)
    if not store.exists():
        _fail(AstradupError(f"{store}: store does not exist (run `astradup index` first)"))
    typer.echo(f"serving {store} on http://{host}:{port}/ ({'review enabled' if allow_review else 'read-only'}); Ctrl-C stops", err=True)
    run_server(settings)


@app.command()
def search(
    text: Annotated[str | None, typer.Argument(help="A text prompt, e.g. \"a rabbit in a forest\" (CLIP stores).")] = None,
    store: StoreOpt = Path("astradup.duckdb"),
    image: Annotated[Path | None, typer.Option("--image", help="Search by an example image instead (any model).")] = None,
    top: Annotated[int, typer.Option(help="Most videos to print.")] = 10,
    moments: Annotated[int, typer.Option(help="Moments listed per video.")] = 3,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Rank videos (and moments in them) by a text prompt or an example image."""
    from astradup.execution.search import search as run_search

    try:
        df = run_search(store, text=text, image=image, config=_load_config(config) if config else None,
                        top=top, moments=moments)
    except AstradupError as exc:
        _fail(exc)
    if json_out:
        for r in df.to_dict("records"):
            typer.echo(json.dumps(r))
        return
    if not len(df):
        typer.echo("no match")
    for r in df.to_dict("records"):
        when = ", ".join(f"{m['t']:.1f}s ({m['score']:.3f})" for m in r["moments"])
        typer.echo(f"{r['rank']:3d}  {r['score']:.4f}  {r['path']}  at {when}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
