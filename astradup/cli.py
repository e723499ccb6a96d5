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


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _load_config(path: Path | None, **overrides) -> AstradupConfig:
    cfg = AstradupConfig.from_file(path)
    dotted = {k: v for k, v in overrides.items() if v is not None}
    return cfg.replace(**dotted) if dotted else cfg


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


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
    quiet: QuietOpt = False,
) -> None:
    """Probe and extract every video under MEDIA_DIR into the store (incremental)."""
    from astradup.api import Library

    try:
        lib = Library(store, _load_config(config, **{"sampling.fps": fps}))
        summary = lib.index(
            media_dir, scheduler=scheduler, gpus=gpus, workers=workers, progress=not quiet, eager=eager,
            on_dashboard=lambda link: typer.echo(f"Dask dashboard: {link}", err=True),
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
    workers: Annotated[int | None, typer.Option(help="LocalCluster worker processes [default: one per core].")] = None,
    eager: Annotated[bool, typer.Option("--eager", help="Verify in this process even for many candidates.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Retrieve candidate pairs with FAISS, verify, fuse and classify them; write pairs.csv.

    Verification runs on Dask with --scheduler, and on a LocalCluster by default when there are
    many candidates (see astradup.execution.verify.DASK_MATCH_ABOVE); the pairs are the same."""
    from astradup.api import Library

    try:
        df = Library(store, _load_config(config)).match(out=out, min_score=min_score, progress=not quiet,
                                                        scheduler=scheduler, workers=workers, eager=eager)
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
                         progress=not quiet)
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
        res = run_tune(table, load_truth(truth), base=_load_config(config), objective=objective,
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
