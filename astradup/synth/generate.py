"""``generate()``: plan a labelled corpus, render it with ffmpeg, write the ground truth.

Planning is pure and seeded (:mod:`.planners`, one planner per role, and :mod:`.hard` for the hard
negatives); rendering runs ffmpeg jobs in stages on a small thread pool (procedural renderings;
plain cuts of sources, "similar" segments and distractors; copies and composed videos); the ground
truth is then derived from each video's provenance (:mod:`.truth`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pandas as pd

from astradup.errors import AstradupError, ConfigError, MediaError
from astradup.synth._ffmpeg import FFmpegError, ffmpeg_exe, ffmpeg_version, run_ffmpeg
from astradup.synth.audio import melody, write_wav
from astradup.synth.plan import MIN_SOURCE_SECONDS, Job, Plan, Spec, even
from astradup.synth.planners import make_plan
from astradup.synth.transforms import check_transforms
from astradup.synth.truth import ground_truth

log = logging.getLogger(__name__)

OUR_FILES = ("ground_truth.csv", "videos.csv", "skipped.csv", "synth.json")
WORK = ".work"


# --- running -------------------------------------------------------------------------------


def _prepare_out_dir(out: Path, sources_dir: Path | None) -> None:
    if sources_dir is not None:
        src = sources_dir.resolve()
        o = out.resolve()
        if o == src or src in o.parents:
            raise ConfigError(
                f"out_dir {str(out)!r} is inside sources_dir {str(sources_dir)!r}; choose a folder outside it"
            )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    listing = out / "videos.csv"
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    if listing.is_file():
        # a previous corpus: remove exactly the files it lists, and nothing else
        old = pd.read_csv(listing)
        for name in old.get("path", pd.Series(dtype=str)).astype(str):
            p = out / name
            if "/" not in name and os.sep not in name and p.is_file():
                p.unlink()
        for name in OUR_FILES:
            (out / name).unlink(missing_ok=True)
    elif visible:
        raise ConfigError(
            f"out_dir {str(out)!r} is not empty and holds no previous synth corpus (no videos.csv); "
            "choose an empty or new folder"
        )
    shutil.rmtree(out / WORK, ignore_errors=True)


def _run(plan: Plan, workers: int, progress: bool) -> tuple[set[Path], dict[Path, MediaError]]:
    """Run every job, stage by stage; return the outputs made and the skipped ones with why."""
    from tqdm.auto import tqdm

    done: set[Path] = set()
    failed: dict[Path, MediaError] = {}
    bar = tqdm(total=len(plan.jobs), desc="synth", unit="file", disable=not progress)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for stage in sorted({j.stage for j in plan.jobs}):
                todo = []
                for job in (j for j in plan.jobs if j.stage == stage):
                    missing = [d for d in job.deps if d in failed]
                    if missing:
                        failed[job.out] = failed[missing[0]]
                        bar.update(1)
                        continue
                    todo.append(job)
                futures = {pool.submit(run_ffmpeg, job.args, job.out): job for job in todo}
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in finished:
                        job = futures[fut]
                        bar.update(1)
                        exc = fut.exception()
                        if exc is None:
                            done.add(job.out)
                        elif isinstance(exc, FFmpegError) and job.skippable is not None:
                            log.warning("skipping %s: %s", job.skippable.path, exc.reason)
                            failed[job.out] = MediaError(job.skippable.path, exc.reason)
                        else:
                            for f in pending:
                                f.cancel()
                            raise exc
    finally:
        bar.close()
    return done, failed


def generate(
    out_dir: str | os.PathLike[str],
    sources_dir: str | os.PathLike[str] | None = None,
    n_sources: int = 6,
    seed: int = 0,
    duration: float = 8.0,
    width: int = 320,
    height: int = 180,
    transforms: list[str] | tuple[str, ...] | str | None = None,
    n_distractors: int = 2,
    n_partial: int | None = None,
    n_similar: int | None = None,
    progress: bool = False,
    n_shared_audio: int | None = None,
    workers: int | None = None,
    keep_work: bool = False,
    hard_negatives: int = 0,
    music_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Make a labelled corpus in ``out_dir`` and return its ground truth.

    See :mod:`astradup.synth` for what is made and how pairs are labelled.

    Args:
        out_dir: folder for the videos and the CSV files; created if missing. It must be empty
            or hold an earlier corpus (whose listed files are replaced).
        sources_dir: a folder of the user's videos to cut sources from (read only); None makes
            procedural sources.
        n_sources: number of source segments (>= 1).
        seed: everything (segments, transforms, parameters, pictures, tunes) follows from it.
        duration: length of each source (seconds, >= 2).
        width, height: the frame box (pixels, even, >= 32); user videos keep their aspect inside it.
        transforms: copy transforms to apply to every source (names from :data:`TRANSFORMS`,
            a list or a comma-separated string); None means all.
        n_distractors: unrelated videos added.
        n_partial: sources that get a partial copy of each kind (cut out alone, embedded in a
            longer unrelated video); None means all.
        n_similar: sources that get a "similar" video (another segment of the same material);
            None means all.
        progress: show a tqdm progress bar.
        n_shared_audio: shared-soundtrack negatives (other pictures, a source's audio); None means
            ``min(2, n_sources)``.
        workers: ffmpeg processes at a time; None means ``min(4, os.cpu_count())``. Each runs
            one encoder thread, which keeps output bytes reproducible.
        keep_work: keep the intermediate files in ``out_dir/.work`` (for debugging).
        hard_negatives: sets of hard negatives to add (0: none); each set holds one video pair
            of every kind in :data:`~astradup.synth.hard.HARD_KINDS` (see :mod:`.hard`).
        music_dir: a folder of music files (read only) for the "other music" of trailers,
            re-edits, low-detail videos and slideshows; None uses seeded tunes.

    Returns:
        The ground truth (columns ``a, b, relation, transform, a_start, a_end, b_start, b_end,
        group``), also written to ``ground_truth.csv``. ``attrs`` holds ``out_dir``,
        ``videos`` (the listing as records), ``skipped`` (source files not used, with why)
        and ``seconds`` (wall time).

    Raises:
        ConfigError: a parameter is out of range, ``sources_dir`` is missing or holds no usable
            video, or ``out_dir`` holds files that are not an earlier corpus.
        UnknownBackendError: a transform name is not known (the message lists the valid ones).
        FFmpegError: ffmpeg failed on a file we generate (names the file, quotes ffmpeg).

    Example: see :mod:`astradup.synth`.
    """
    started = time.perf_counter()
    spec = _spec(
        out_dir,
        sources_dir,
        n_sources,
        seed,
        duration,
        width,
        height,
        transforms,
        n_distractors=n_distractors,
        n_partial=n_partial,
        n_similar=n_similar,
        n_shared_audio=n_shared_audio,
        hard_negatives=hard_negatives,
        music_dir=music_dir,
    )
    n_workers = _workers(workers)
    ffmpeg_exe()  # fail early, with a clear message, when there is no ffmpeg
    _prepare_out_dir(spec.out, spec.sources_dir)
    spec.work.mkdir()
    try:
        plan = make_plan(spec)
        for wav, mseed, length in plan.wavs:
            write_wav(wav, melody(mseed, length))
        done, failed = _run(plan, n_workers, progress)
        _record_failures(plan, failed)
        corpus = [j for j in plan.jobs if j.video is not None and j.out in done]
        if not corpus:
            raise ConfigError("no video could be generated; see the skipped files")
        _measure(corpus, n_workers)
    finally:
        if not keep_work:
            shutil.rmtree(spec.work, ignore_errors=True)
    return _write(spec, plan, corpus, started)


MUSIC_SUFFIXES = (".ogg", ".oga", ".opus", ".mp3", ".wav", ".flac", ".m4a")


def _music_files(folder: Path) -> tuple[tuple[Path, float], ...]:
    """The readable audio files under ``folder`` with their durations (seconds), sorted."""
    import av

    if not folder.is_dir():
        raise ConfigError(f"music_dir {str(folder)!r} does not exist or is not a folder")
    found = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in MUSIC_SUFFIXES or not p.is_file():
            continue
        try:
            with av.open(str(p)) as c:
                if not c.streams.audio or not c.duration:
                    raise ValueError("no audio stream or no duration")
                found.append((p, round(c.duration / 1e6, 3)))
        except Exception as exc:  # noqa: BLE001 - PyAV raises many types for a bad file
            log.warning("music_dir: skipping %s: %s", p, exc)
    if not found:
        raise ConfigError(
            f"music_dir {str(folder)!r} holds no readable audio file {MUSIC_SUFFIXES}"
        )
    return tuple(found)


def _record_failures(plan: Plan, failed: dict[Path, MediaError]) -> None:
    """List each user file whose cut failed (once) among the skipped sources."""
    for exc in failed.values():
        if exc.path not in {s["path"] for s in plan.skipped}:
            plan.skipped.append(
                {
                    "path": exc.path,
                    "stage": "cut",
                    "error": type(exc).__name__,
                    "message": exc.reason,
                }
            )


def _workers(workers: int | None) -> int:
    n = workers or min(4, os.cpu_count() or 1)
    if n < 1:
        raise ConfigError(f"workers must be >= 1, but got {workers!r}")
    return n


def _count(label: str, value: object) -> int:
    if not isinstance(value, int | np.integer) or value < 0:
        raise ConfigError(f"{label} must be an integer >= 0, but got {value!r}")
    return int(value)


def _spec(
    out_dir: str | os.PathLike[str],
    sources_dir: str | os.PathLike[str] | None,
    n_sources: int,
    seed: int,
    duration: float,
    width: int,
    height: int,
    transforms: list[str] | tuple[str, ...] | str | None,
    music_dir: str | os.PathLike[str] | None = None,
    **counts: int | None,
) -> Spec:
    """Check :func:`generate`'s parameters (ConfigError naming the bad one) into a Spec."""
    names = check_transforms(transforms)
    if not isinstance(n_sources, int | np.integer) or n_sources < 1:
        raise ConfigError(f"n_sources must be an integer >= 1, but got {n_sources!r}")
    if not duration >= MIN_SOURCE_SECONDS:
        raise ConfigError(f"duration must be >= {MIN_SOURCE_SECONDS} seconds, but got {duration!r}")
    for label, side in (("width", width), ("height", height)):
        if not isinstance(side, int | np.integer) or side < 32 or side > 3840:
            raise ConfigError(f"{label} must be an integer in [32, 3840], but got {side!r}")
    defaults = {
        "n_distractors": 0,
        "n_partial": n_sources,
        "n_similar": n_sources,
        "n_shared_audio": min(2, n_sources),
        "hard_negatives": 0,
    }
    n = {k: _count(k, d if counts[k] is None else counts[k]) for k, d in defaults.items()}
    src_dir = Path(sources_dir) if sources_dir is not None else None
    if src_dir is not None and not src_dir.is_dir():
        raise ConfigError(f"sources_dir {str(src_dir)!r} does not exist or is not a folder")
    out = Path(out_dir)
    return Spec(
        out=out,
        work=out / WORK,
        sources_dir=src_dir,
        n_sources=int(n_sources),
        seed=int(seed),
        duration=float(duration),
        width=even(width),
        height=even(height),
        transforms=names,
        n_distractors=n["n_distractors"],
        n_partial=n["n_partial"],
        n_similar=n["n_similar"],
        n_shared=n["n_shared_audio"],
        n_hard=n["hard_negatives"],
        music=_music_files(Path(music_dir)) if music_dir is not None else (),
    )


def _write(spec: Spec, plan: Plan, corpus: list[Job], started: float) -> pd.DataFrame:
    """Write ground_truth.csv, videos.csv, skipped.csv and synth.json; return the truth."""
    out = spec.out
    made = {j.out.name for j in corpus}
    extra = [p for p in plan.extra_pairs if p[0] in made and p[1] in made]
    truth = ground_truth([j.video for j in corpus if j.video is not None], plan.groups, extra=extra)
    listing = pd.DataFrame(
        [
            {
                "path": j.out.name,
                "source": j.source,
                "transform": j.video.transform,
                "duration": round(j.video.duration, 3),
                "params": json.dumps(j.params, sort_keys=True, default=str),
            }
            for j in corpus
            if j.video is not None
        ],
        columns=["path", "source", "transform", "duration", "params"],
    )
    truth.to_csv(out / "ground_truth.csv", index=False)
    listing.to_csv(out / "videos.csv", index=False)
    if plan.skipped:
        pd.DataFrame(plan.skipped, columns=["path", "stage", "error", "message"]).to_csv(
            out / "skipped.csv", index=False
        )
    seconds = round(time.perf_counter() - started, 2)
    meta = {
        "seed": spec.seed,
        "n_sources": spec.n_sources,
        "duration": spec.duration,
        "width": spec.width,
        "height": spec.height,
        "transforms": spec.transforms,
        "sources_dir": str(spec.sources_dir) if spec.sources_dir else None,
        "n_distractors": spec.n_distractors,
        "n_partial": spec.n_partial,
        "n_similar": spec.n_similar,
        "n_shared_audio": spec.n_shared,
        "hard_negatives": spec.n_hard,
        "music": [str(p) for p, _ in spec.music],
        "videos": len(listing),
        "pairs": len(truth),
        "skipped": len(plan.skipped),
        "ffmpeg": ffmpeg_version(),
        "seconds": seconds,
    }
    (out / "synth.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info(
        "synth: %d videos, %d labelled pairs in %s (%.1f s)", len(listing), len(truth), out, seconds
    )
    truth.attrs.update(
        out_dir=str(out),
        videos=listing.to_dict("records"),
        skipped=list(plan.skipped),
        seconds=seconds,
    )
    return truth


def _measure(corpus: list[Job], workers: int) -> None:
    """Set each video's duration from the file (seconds), probing in parallel."""
    from astradup.media import probe

    def one(job: Job) -> None:
        if job.video is None:
            return
        try:
            job.video.duration = float(probe(job.out).duration)
        except AstradupError as exc:
            raise FFmpegError(job.out, f"generated file cannot be read back ({exc})") from exc
        if job.video.duration <= 0:
            job.video.duration = max(s.v1 for s in job.video.spans)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, corpus))
