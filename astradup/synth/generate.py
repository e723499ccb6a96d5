"""``generate()``: plan a labelled corpus, render it with ffmpeg, write the ground truth.

Planning is pure and seeded (materials, segments, transforms and their parameters); rendering runs
ffmpeg jobs in three stages on a small thread pool (procedural renderings; sources, "similar"
segments and distractors; copies); the ground truth is then derived from each video's provenance
(:mod:`.truth`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import zlib
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from astradup.errors import AstradupError, ConfigError, MediaError
from astradup.synth import procedural
from astradup.synth._ffmpeg import BITEXACT, FFmpegError, ffmpeg_exe, ffmpeg_version, run_ffmpeg
from astradup.synth.audio import melody, write_wav
from astradup.synth.transforms import (
    NEEDS_BACKGROUND,
    NEEDS_MELODY,
    TRANSFORMS,
    Clip,
    Extras,
    aac,
    check_transforms,
    font_file,
    graph,
    h264,
    on_frame,
)
from astradup.synth.truth import Span, VideoRecord, ground_truth

log = logging.getLogger(__name__)

FPS = 25  # frame rate of every source (Hz)
GAP = 1.0  # seconds kept free between segments cut from one material
MIN_SOURCE_SECONDS = 2.0
OUR_FILES = ("ground_truth.csv", "videos.csv", "skipped.csv", "synth.json")
WORK = ".work"


def _rng(seed: int, *purpose: object) -> np.random.Generator:
    """An independent stream per purpose, so adding a transform never reshuffles the others."""
    key = zlib.crc32("/".join(map(str, purpose)).encode())
    return np.random.default_rng([seed, key])


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


@dataclass
class Material:
    """Something segments are cut from: a user's file or a procedural rendering."""

    id: str
    path: Path
    duration: float
    has_audio: bool
    origin: str
    width: int = 0
    height: int = 0
    render: tuple[str, Path, int] | None = None  # (lavfi graph, melody wav, melody seed)
    busy: list[tuple[float, float]] = field(default_factory=list)
    role: str = ""  # "source", "distractor" or "filler" once used

    def free(self) -> list[tuple[float, float]]:
        """Free stretches (seconds), keeping GAP clear of every used segment."""
        out, t = [], 0.0
        for a, b in sorted(self.busy):
            if a - GAP - t > 0:
                out.append((t, a - GAP))
            t = max(t, b + GAP)
        if self.duration - t > 0:
            out.append((t, self.duration))
        return out

    def take(
        self, length: float, rng: np.random.Generator, min_length: float, at: str = "random"
    ) -> tuple[float, float] | None:
        """Reserve a segment of up to ``length`` seconds (at least ``min_length``), or None."""
        fits = [(a, b) for a, b in self.free() if b - a >= min_length - 1e-9]
        if not fits:
            return None
        a, b = (
            max(fits, key=lambda ab: ab[1] - ab[0])
            if at != "random"
            else fits[int(rng.integers(len(fits)))]
        )
        seg = round(min(length, b - a), 3)
        if at == "start":
            t0 = a
        elif at == "end":
            t0 = b - seg
        else:
            t0 = a + float(rng.uniform(0, b - a - seg)) if b - a > seg else a
        t0 = max(0.0, round(t0, 3))  # never -0.0
        self.busy.append((t0, t0 + seg))
        return t0, round(t0 + seg, 3)


@dataclass
class Job:
    """One ffmpeg run. ``deps`` name the outputs it reads; ``stage`` orders the runs."""

    out: Path
    args: list[str]
    stage: int
    deps: list[Path] = field(default_factory=list)
    video: VideoRecord | None = None  # set for files that belong to the corpus
    source: str = ""
    params: dict = field(default_factory=dict)
    skippable: MediaError | None = None  # a user file this job reads: failure skips, not raises


@dataclass
class _Plan:
    jobs: list[Job] = field(default_factory=list)
    materials: list[Material] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    wavs: list[tuple[Path, int, float]] = field(default_factory=list)


# --- planning ------------------------------------------------------------------------------


def _procedural_material(
    plan: _Plan, work: Path, seed: int, mid: str, kind: str, length: float, w: int, h: int
) -> Material:
    rng = _rng(seed, "material", mid)
    g = procedural.picture_graph(kind, w, h, FPS, length, rng)
    mseed = int(rng.integers(2**31 - 1))
    wav = work / f"{mid}.wav"
    plan.wavs.append((wav, mseed, length))
    m = Material(
        mid, work / f"{mid}.mkv", length, True, f"procedural:{kind}", w, h, (g, wav, mseed)
    )
    plan.materials.append(m)
    # fmt: off
    args = [
        "-f", "lavfi", "-i", g, "-i", str(wav), "-t", f"{length:.3f}", "-map", "0:v", "-map", "1:a",
        *h264(crf=12), "-g", str(FPS), "-c:a", "pcm_s16le", *BITEXACT,
    ]
    # fmt: on
    plan.jobs.append(Job(m.path, args, stage=0))
    return m


def _user(m: Material, why: str) -> MediaError | None:
    """For jobs that read a user's file: a failure skips that file rather than stopping the run."""
    return None if m.render else MediaError(m.path, why)


def _deps(m: Material) -> list[Path]:
    """Outputs a job reading ``m`` must wait for: the rendering, for procedural material."""
    return [m.path] if m.render else []


def _input_args(m: Material, t0: float, t1: float) -> list[str]:
    """ffmpeg input args for seconds [t0, t1] of ``m``."""
    args = ["-ss", f"{t0:.3f}"] if t0 > 0 else []
    return args + ["-t", f"{t1 - t0:.3f}", "-i", str(m.path)]


def _fill(w: int, h: int) -> str:
    """Filter chain: fill a ``w`` x ``h`` frame (scale up, crop the overflow) at FPS, yuv420p."""
    return f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,fps={FPS},format=yuv420p"


def _fit(m: Material, w: int, h: int) -> tuple[int, int]:
    """Even size that fits ``m``'s picture into a ``w`` x ``h`` box, keeping its aspect."""
    if m.width <= 0 or m.height <= 0:
        return w, h
    r = min(w / m.width, h / m.height)
    return min(w, _even(m.width * r)), min(h, _even(m.height * r))


def _cut_job(
    target: Path,
    m: Material,
    t0: float,
    t1: float,
    w: int,
    h: int,
    role: str,
    group: str,
    exact: bool,
    failure: str,
) -> Job:
    """The job that writes ``[t0, t1)`` of material ``m`` alone to ``target`` (sources, similar
    segments, distractors)."""
    return Job(
        target,
        _cut_args(m, t0, t1, w, h),
        1,
        _deps(m),
        VideoRecord(target.name, role, [Span(m.id, t0, t1, 0.0, round(t1 - t0, 3))], exact=exact),
        group,
        {"material": m.origin, "start": t0, "end": t1},
        _user(m, failure),
    )


def _cut_args(m: Material, t0: float, t1: float, w: int, h: int) -> list[str]:
    """Cut material seconds [t0, t1] to a ``w`` x ``h`` clip at FPS: a source-quality MP4."""
    args = [
        *_input_args(m, t0, t1),
        "-vf",
        f"scale={w}:{h},setsar=1,fps={FPS},format=yuv420p",
        "-map",
        "0:v:0",
    ]
    if m.has_audio:
        args += ["-map", "0:a:0", "-af", "aresample=44100", *aac("128k")]
    else:
        args += ["-an"]
    return args + h264(crf=18, preset="veryfast", tune="fastdecode") + BITEXACT


def _user_materials(sources_dir: Path, plan: _Plan) -> list[Material]:
    from astradup.media import content_hash, discover, probe

    try:
        found = discover(sources_dir)
    except MediaError as exc:
        raise ConfigError(
            f"sources_dir {str(sources_dir)!r} does not exist or is not a folder"
        ) from exc
    mats: list[Material] = []
    seen: dict[str, Path] = {}
    for p in found:
        try:
            info = probe(p)
            if info.duration < MIN_SOURCE_SECONDS:
                raise MediaError(
                    p, f"too short ({info.duration:.2f} s; need at least {MIN_SOURCE_SECONDS} s)"
                )
        except MediaError as exc:
            log.warning("skipping source %s: %s", p, exc.reason)
            plan.skipped.append(
                {
                    "path": str(p),
                    "stage": "probe",
                    "error": type(exc).__name__,
                    "message": exc.reason,
                }
            )
            continue
        digest = content_hash(p)
        if digest in seen:  # a byte copy (or a link) of a file already taken: unlabelled duplicates
            log.info("skipping %s: same content as %s", p, seen[digest])
            plan.skipped.append(
                {
                    "path": str(p),
                    "stage": "dedupe",
                    "error": "Duplicate",
                    "message": f"same content as {seen[digest]}",
                }
            )
            continue
        seen[digest] = p
        w = int(round(info.height * info.display_aspect)) if info.display_aspect > 0 else info.width
        mats.append(
            Material(
                f"m{len(mats):03d}", p, float(info.duration), info.has_audio, str(p), w, info.height
            )
        )
    if not mats:
        n = len(found)
        what = f"none of its {n} video file(s) could be read" if n else "it holds no video files"
        raise ConfigError(f"sources_dir {str(sources_dir)!r} cannot be used: {what}")
    return mats


def _plan(
    out: Path,
    work: Path,
    sources_dir: Path | None,
    n_sources: int,
    seed: int,
    duration: float,
    width: int,
    height: int,
    transforms: list[str],
    n_distractors: int,
    n_partial: int,
    n_similar: int,
    n_shared: int,
) -> _Plan:
    plan = _Plan()
    rng = _rng(seed, "plan")
    font = font_file()
    user: list[Material] = []
    if sources_dir is not None:
        user = _user_materials(sources_dir, plan)
        order = [int(i) for i in rng.permutation(len(user))]
        user = [user[i] for i in order]
    kinds = procedural.kind_order(_rng(seed, "kinds"), n_sources + n_distractors)
    filler_kinds = procedural.kind_order(
        _rng(seed, "filler-kinds"), 4 * n_sources + 4, procedural.VARIED_KINDS
    )

    # 1. source segments (and, for the first n_similar sources, a second segment of the same material)
    sources: list[tuple[str, Material, float, float]] = []
    similar: dict[str, tuple[Material, float, float]] = {}
    if user:
        passes = 0
        while len(sources) < n_sources and passes < 50:
            progressed = False
            for m in user:
                if len(sources) >= n_sources:
                    break
                if passes > 0 and m.role != "source":
                    continue
                at = (
                    "random"
                    if m.duration >= 2 * duration + GAP or passes > 0
                    else str(rng.choice(["start", "end"]))
                )
                got = m.take(
                    duration,
                    rng,
                    min(duration, MIN_SOURCE_SECONDS if passes == 0 else duration),
                    at,
                )
                if got:
                    m.role = "source"
                    sid = f"src{len(sources) + 1:02d}"
                    plan.groups.setdefault(m.id, sid)
                    sources.append((sid, m, *got))
                    progressed = True
            passes += 1
            if not progressed:
                break
        if len(sources) < n_sources:
            log.warning(
                "sources_dir yields %d source segment(s) of up to %.1f s; %d were asked for",
                len(sources),
                duration,
                n_sources,
            )
        for sid, m, t0, t1 in sources[:n_similar]:
            got = m.take(t1 - t0, rng, max(MIN_SOURCE_SECONDS, 0.4 * (t1 - t0)), "largest")
            if got:
                similar[sid] = (m, *got)
            else:
                log.info(
                    "%s: no room in %s for a second, non-overlapping segment; no 'similar' copy",
                    sid,
                    m.path.name,
                )
    else:
        for i in range(n_sources):
            sid = f"src{i + 1:02d}"
            length = round(2 * duration + GAP if i < n_similar else duration, 3)
            m = _procedural_material(plan, work, seed, sid, kinds[i], length, width, height)
            m.role = "source"
            plan.groups[m.id] = sid
            sources.append((sid, m, 0.0, duration))
            if i < n_similar:
                similar[sid] = (m, duration + GAP, round(2 * duration + GAP, 3))

    spare = [m for m in user if m.role == ""]

    def filler(tag: str, length: float, w: int, h: int) -> tuple[Material, float, float]:
        """An unrelated material segment: an unused user file if any, else a procedural one."""
        while spare:
            m = spare.pop(0)
            got = m.take(length, rng, min(length, MIN_SOURCE_SECONDS), "random")
            if got:
                m.role = "filler"
                return m, *got
        k = filler_kinds[
            len([x for x in plan.materials if x.id.startswith("f")]) % len(filler_kinds)
        ]
        m = _procedural_material(plan, work, seed, f"f{tag}", k, length, w, h)
        m.role = "filler"
        return m, 0.0, length

    # distractors get the unused user files first; fillers (backgrounds, hosts) take what is left
    distractors: list[tuple[str, Material, float, float]] = []
    for i in range(n_distractors):
        did = f"dis{i + 1:02d}"
        if spare:
            dm, d0, d1 = filler(f"d{i + 1:02d}", duration, width, height)
        else:
            kind = kinds[(0 if user else n_sources) + i]
            dm, d0, d1 = (
                _procedural_material(plan, work, seed, did, kind, duration, width, height),
                0.0,
                duration,
            )
        dm.role = "distractor"
        distractors.append((did, dm, d0, d1))

    def add(job: Job) -> None:
        plan.jobs.append(job)

    # 2. the sources themselves, and their copies
    for si, (sid, m, t0, t1) in enumerate(sources):
        seg = round(t1 - t0, 3)
        w, h = (width, height) if m.render else _fit(m, width, height)
        src = out / f"{sid}.mp4"
        add(_cut_job(src, m, t0, t1, w, h, "source", sid, True, "source could not be cut"))
        clip = Clip(src, w, h, seg, FPS, m.has_audio)
        bg: tuple[Material, float, float] | None = None
        melody_wav = None
        if NEEDS_BACKGROUND & set(transforms):
            bg = filler(f"{si + 1:02d}bg", seg, w, h)
        if NEEDS_MELODY & set(transforms):
            melody_wav = work / f"{sid}__melody.wav"
            plan.wavs.append((melody_wav, int(_rng(seed, "melody", sid).integers(2**31 - 1)), seg))
        extras = Extras(
            background=tuple(_input_args(*bg)) if bg else None, melody=melody_wav, font=font
        )
        for name in transforms:
            recipe = TRANSFORMS[name](clip, _rng(seed, sid, name), extras)
            target = out / f"{sid}__{name}{recipe.ext}"
            shown = seg - recipe.head - recipe.tail
            spans = [
                Span(
                    m.id,
                    t0 + recipe.head,
                    t0 + recipe.head + shown,
                    0.0,
                    round(shown / recipe.speed, 3),
                )
            ]
            deps, skip = [src], None
            if name in NEEDS_BACKGROUND and bg is not None:
                spans.append(Span(bg[0].id, bg[1], bg[2], 0.0, round(bg[2] - bg[1], 3)))
                deps += _deps(bg[0])
                skip = _user(bg[0], "background segment could not be read")
            add(
                Job(
                    target,
                    recipe.args + BITEXACT,
                    2,
                    deps,
                    VideoRecord(target.name, name, spans, exact=recipe.exact),
                    sid,
                    recipe.params,
                    skip,
                )
            )

        if sid in similar:
            sm, s0, s1 = similar[sid]
            target = out / f"{sid}__similar.mp4"
            add(
                _cut_job(target, sm, s0, s1, w, h, "similar", sid, True, "segment could not be cut")
            )

        if si < n_partial:
            prng = _rng(seed, sid, "partial")
            # (b) a segment cut out alone: 25-45% of the source
            cl = on_frame(seg * float(prng.uniform(0.25, 0.45)), FPS)
            c0 = on_frame(float(prng.uniform(0, seg - cl)), FPS)
            target = out / f"{sid}__partial_cut.mp4"
            vf, af = (
                f"trim=start={c0}:end={c0 + cl},setpts=PTS-STARTPTS",
                f"atrim=start={c0}:end={c0 + cl},asetpts=PTS-STARTPTS",
            )
            add(
                Job(
                    target,
                    graph(clip, vf, af, video=h264(crf=23), audio=aac()) + BITEXACT,
                    2,
                    [src],
                    VideoRecord(
                        target.name, "partial_cut", [Span(m.id, t0 + c0, t0 + c0 + cl, 0.0, cl)]
                    ),
                    sid,
                    {"start": c0, "end": round(c0 + cl, 3)},
                )
            )
            # (a) a segment embedded in an unrelated, longer video
            el = on_frame(seg * float(prng.uniform(0.4, 0.6)), FPS)
            e0 = on_frame(float(prng.uniform(0, seg - el)), FPS)
            hm, h0, h1 = filler(f"{si + 1:02d}host", round(1.5 * duration, 3), w, h)
            hl = round(h1 - h0, 3)
            p = on_frame(float(prng.uniform(0.2, 0.8)) * hl, FPS)
            target = out / f"{sid}__partial_embed.mp4"
            args = _embed_args(
                _input_args(hm, h0, h1), hm.has_audio, src, m.has_audio, p, hl, e0, el, w, h
            )
            spans = [
                Span(hm.id, h0, h0 + p, 0.0, p),
                Span(m.id, t0 + e0, t0 + e0 + el, p, p + el),
                Span(hm.id, h0 + p, h1, p + el, hl + el),
            ]
            add(
                Job(
                    target,
                    args + h264(crf=21) + BITEXACT,
                    2,
                    [src, *_deps(hm)],
                    VideoRecord(target.name, "partial_embed", spans),
                    sid,
                    {
                        "segment_start": e0,
                        "segment_end": round(e0 + el, 3),
                        "host_start": p,
                        "host_end": round(p + el, 3),
                    },
                    _user(hm, "host segment could not be read"),
                )
            )

    # 3. distractors: unrelated videos
    for did, dm, d0, d1 in distractors:
        dw, dh = (width, height) if dm.render else _fit(dm, width, height)
        target = out / f"{did}.mp4"
        add(
            _cut_job(
                target, dm, d0, d1, dw, dh, "distractor", did, False, "distractor could not be cut"
            )
        )

    # 4. shared soundtrack negatives: other pictures with a source's audio (not in the truth)
    with_audio = [s for s in sources if s[1].has_audio]
    for i in range(min(n_shared, len(with_audio))):
        sid, m, t0, t1 = with_audio[i]
        seg = round(t1 - t0, 3)
        w, h = (width, height) if m.render else _fit(m, width, height)
        fm, f0, f1 = filler(f"{i + 1:02d}sa", seg, w, h)
        target = out / f"{sid}__shared_audio.mp4"
        # fmt: off
        args = [
            *_input_args(fm, f0, f1), "-i", str(out / f"{sid}.mp4"), "-filter_complex",
            f"[0:v]{_fill(w, h)}[v]", "-map", "[v]", "-map", "1:a:0", "-c:a", "copy", *h264(), "-t",
            f"{min(seg, f1 - f0):.3f}",
        ]
        # fmt: on
        add(
            Job(
                target,
                args + BITEXACT,
                2,
                [out / f"{sid}.mp4", *_deps(fm)],
                VideoRecord(
                    target.name, "shared_audio", [Span(fm.id, f0, f1, 0.0, round(f1 - f0, 3))]
                ),
                sid,
                {"audio_from": f"{sid}.mp4"},
                _user(fm, "picture segment could not be read"),
            )
        )
    if n_shared and not with_audio:
        log.info("no source has audio; no shared-soundtrack negatives")
    return plan


def _embed_args(
    host: list[str],
    host_audio: bool,
    src: Path,
    src_audio: bool,
    p: float,
    hl: float,
    e0: float,
    el: float,
    w: int,
    h: int,
) -> list[str]:
    """Host seconds [0, p] + source seconds [e0, e0 + el] + host seconds [p, hl], video and audio.

    ``host`` are the host's input args; its picture is fitted to the source's ``w`` x ``h``.
    """
    fmt = "aresample=44100,aformat=sample_fmts=fltp:channel_layouts=stereo"
    g = [
        f"[0:v]{_fill(w, h)},split[h0][h1]",
        f"[h0]trim=end={p},setpts=PTS-STARTPTS[v0]",
        f"[1:v]trim=start={e0}:end={e0 + el},setpts=PTS-STARTPTS[v1]",
        f"[h1]trim=start={p},setpts=PTS-STARTPTS[v2]",
    ]
    audio = host_audio or src_audio
    if audio:
        if host_audio:
            g += [
                "[0:a]asplit[ha0][ha1]",
                f"[ha0]atrim=end={p},asetpts=PTS-STARTPTS,{fmt}[a0]",
                f"[ha1]atrim=start={p},asetpts=PTS-STARTPTS,{fmt}[a2]",
            ]
        else:
            g += [
                f"anullsrc=r=44100:cl=stereo,atrim=end={p}[a0]",
                f"anullsrc=r=44100:cl=stereo,atrim=end={hl - p:.3f}[a2]",
            ]
        if src_audio:
            g.append(f"[1:a]atrim=start={e0}:end={e0 + el},asetpts=PTS-STARTPTS,{fmt}[a1]")
        else:
            g.append(f"anullsrc=r=44100:cl=stereo,atrim=end={el}[a1]")
        g.append("[v0][a0][v1][a1][v2][a2]concat=n=3:v=1:a=1[v][a]")
    else:
        g.append("[v0][v1][v2]concat=n=3:v=1:a=0[v]")
    args = [*host, "-i", str(src), "-filter_complex", ";".join(g), "-map", "[v]"]
    return args + (["-map", "[a]", *aac()] if audio else ["-an"])


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


def _run(plan: _Plan, workers: int, progress: bool) -> tuple[set[Path], dict[Path, MediaError]]:
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

    Example:
        >>> truth = generate("data/demo_corpus", n_sources=2, duration=4)  # doctest: +SKIP
        >>> truth.relation.value_counts()  # doctest: +SKIP
    """
    started = time.perf_counter()
    names = check_transforms(transforms)
    if not isinstance(n_sources, int | np.integer) or n_sources < 1:
        raise ConfigError(f"n_sources must be an integer >= 1, but got {n_sources!r}")
    if not duration >= MIN_SOURCE_SECONDS:
        raise ConfigError(f"duration must be >= {MIN_SOURCE_SECONDS} seconds, but got {duration!r}")
    for label, side in (("width", width), ("height", height)):
        if not isinstance(side, int | np.integer) or side < 32 or side > 3840:
            raise ConfigError(f"{label} must be an integer in [32, 3840], but got {side!r}")
    width, height = _even(width), _even(height)
    counts: dict[str, int] = {}
    for label, v, default in (
        ("n_distractors", n_distractors, 0),
        ("n_partial", n_partial, n_sources),
        ("n_similar", n_similar, n_sources),
        ("n_shared_audio", n_shared_audio, min(2, n_sources)),
    ):
        value = default if v is None else v
        if not isinstance(value, int | np.integer) or value < 0:
            raise ConfigError(f"{label} must be an integer >= 0, but got {value!r}")
        counts[label] = int(value)
    n_workers = workers or min(4, os.cpu_count() or 1)
    if n_workers < 1:
        raise ConfigError(f"workers must be >= 1, but got {workers!r}")
    src_dir = Path(sources_dir) if sources_dir is not None else None
    if src_dir is not None and not src_dir.is_dir():
        raise ConfigError(f"sources_dir {str(src_dir)!r} does not exist or is not a folder")
    ffmpeg_exe()  # fail early, with a clear message, when there is no ffmpeg
    out = Path(out_dir)
    _prepare_out_dir(out, src_dir)
    work = out / WORK
    work.mkdir()
    try:
        plan = _plan(
            out,
            work,
            src_dir,
            int(n_sources),
            int(seed),
            float(duration),
            width,
            height,
            names,
            counts["n_distractors"],
            counts["n_partial"],
            counts["n_similar"],
            counts["n_shared_audio"],
        )
        for wav, mseed, length in plan.wavs:
            write_wav(wav, melody(mseed, length))
        done, failed = _run(plan, n_workers, progress)
        for _path, exc in failed.items():
            if exc.path not in {s["path"] for s in plan.skipped}:
                plan.skipped.append(
                    {
                        "path": exc.path,
                        "stage": "cut",
                        "error": type(exc).__name__,
                        "message": exc.reason,
                    }
                )
        corpus = [j for j in plan.jobs if j.video is not None and j.out in done]
        if not corpus:
            raise ConfigError("no video could be generated; see the skipped files")
        _measure(corpus, n_workers)
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)

    truth = ground_truth([j.video for j in corpus if j.video is not None], plan.groups)
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
        "seed": int(seed),
        "n_sources": int(n_sources),
        "duration": float(duration),
        "width": width,
        "height": height,
        "transforms": names,
        "sources_dir": str(src_dir) if src_dir else None,
        **counts,
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
