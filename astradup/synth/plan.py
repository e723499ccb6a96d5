"""The planning state of :func:`astradup.synth.generate`: materials, jobs, and the ffmpeg argument
builders the role planners (:mod:`.planners`, :mod:`.hard`) share.

A *material* is something segments are cut from (a user's file, or a procedural rendering that a
stage-0 job makes). A *job* is one ffmpeg run; a job that makes a corpus video carries the
video's provenance (:class:`~astradup.synth.truth.VideoRecord`), from which the truth is derived.
Planning is pure and seeded: every random choice draws from :func:`stream` with a purpose key, so
adding a planner never reshuffles the choices of another.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from astradup.errors import ConfigError, MediaError
from astradup.synth import procedural
from astradup.synth._ffmpeg import BITEXACT
from astradup.synth.looks import Looks, looks_of, shows_again
from astradup.synth.transforms import aac, h264
from astradup.synth.truth import Span, VideoRecord

log = logging.getLogger(__name__)

FPS = 25  # frame rate of every source (Hz)
GAP = 1.0  # seconds kept free between segments cut from one material
MIN_SOURCE_SECONDS = 2.0


def stream(seed: int, *purpose: object) -> np.random.Generator:
    """An independent stream per purpose, so adding a transform never reshuffles the others."""
    key = zlib.crc32("/".join(map(str, purpose)).encode())
    return np.random.default_rng([seed, key])


def even(x: float) -> int:
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
    # stretches that show the pictures of a segment already cut (never used; see .looks)
    spoiled: list[tuple[float, float]] = field(default_factory=list)

    def free(self) -> list[tuple[float, float]]:
        """Free stretches (seconds), keeping GAP clear of every used or spoiled segment."""
        out, t = [], 0.0
        for a, b in sorted(self.busy + self.spoiled):
            if a - GAP - t > 0:
                out.append((t, a - GAP))
            t = max(t, b + GAP)
        if self.duration - t > 0:
            out.append((t, self.duration))
        return out

    def take(
        self, length: float, rng: np.random.Generator, min_length: float, at: str = "random"
    ) -> tuple[float, float] | None:
        """Reserve a segment of up to ``length`` seconds (at least ``min_length``), or None.
        A stretch that shows the pictures of a segment already taken is spoiled and another drawn."""
        while True:
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
            if not self.repeats((t0, t0 + seg)):
                self.busy.append((t0, t0 + seg))
                return t0, round(t0 + seg, 3)
            self.spoiled.append((t0, t0 + seg))

    def repeats(self, seg: tuple[float, float], *more: tuple[float, float]) -> bool:
        """True when ``seg`` of a user's file shows the same pictures as a segment already taken
        from it (or as one of ``more``): videos cut from the two would be labelled ``similar``
        while they show one thing (:mod:`astradup.synth.looks`). Procedural renderings move on."""
        others = [*self.busy, *more]
        if self.render is not None or not others:
            return False
        return shows_again(self.looks, seg, others)

    @cached_property
    def looks(self) -> Looks | None:
        """The file's thumbnails, decoded once, when a second segment is first wanted."""
        return looks_of(self.path, self.duration)

    def take_pair(self, length: float) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """Reserve two neighbouring segments of ``length`` seconds, GAP apart, at the start of the
        first free stretch that holds both and shows different pictures in them (and from the
        segments already taken); None when none does."""
        for a, b in self.free():
            while b - a >= 2 * length + GAP - 1e-9:
                first = (round(a, 3), round(a + length, 3))
                second = (round(a + length + GAP, 3), round(a + 2 * length + GAP, 3))
                if not (self.repeats(first) or self.repeats(second, first)):
                    self.busy += [first, second]
                    return first, second
                a += length + GAP
        return None


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


@dataclass(frozen=True)
class Spec:
    """What to plan: :func:`~astradup.synth.generate`'s checked parameters."""

    out: Path
    work: Path
    sources_dir: Path | None
    n_sources: int
    seed: int
    duration: float
    width: int
    height: int
    transforms: list[str]
    n_distractors: int
    n_partial: int
    n_similar: int
    n_shared: int
    n_hard: int = 0
    music: tuple[tuple[Path, float], ...] = ()  # (audio file, seconds): real "other music"


@dataclass
class Source:
    """A source segment: ``material`` seconds ``[t0, t1]`` written to ``out/<sid>.mp4``."""

    sid: str
    material: Material
    t0: float
    t1: float
    w: int = 0
    h: int = 0

    @property
    def seg(self) -> float:
        return round(self.t1 - self.t0, 3)


@dataclass
class Plan:
    """The planning state: what is made so far, and the shared seeded streams and pools."""

    spec: Spec
    rng: np.random.Generator  # the "plan" stream: which segments of user files are taken
    jobs: list[Job] = field(default_factory=list)
    materials: list[Material] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    wavs: list[tuple[Path, int, float]] = field(default_factory=list)
    user: list[Material] = field(default_factory=list)  # the user's files (sources_dir)
    spare: list[Material] = field(default_factory=list)  # user files not used yet
    filler_kinds: list[str] = field(default_factory=list)
    font: str | None = None
    # pairs whose relation provenance cannot tell (a before b in listing order is not required):
    # (a name, b name, relation, transform, group); used only when provenance relates them not
    extra_pairs: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def add(self, job: Job) -> Job:
        self.jobs.append(job)
        return job

    def procedural(self, mid: str, kind: str, length: float, w: int, h: int) -> Material:
        """A seeded procedural rendering ``mid`` (a stage-0 job with its own tune)."""
        rng = stream(self.spec.seed, "material", mid)
        slot = sum(m.origin == f"procedural:{kind}" for m in self.materials)  # renderings of this kind so far
        g = procedural.picture_graph(kind, w, h, FPS, length, rng, slot)
        mseed = int(rng.integers(2**31 - 1))
        wav = self.spec.work / f"{mid}.wav"
        self.wavs.append((wav, mseed, length))
        m = Material(
            mid,
            self.spec.work / f"{mid}.mkv",
            length,
            True,
            f"procedural:{kind}",
            w,
            h,
            (g, wav, mseed),
        )
        self.materials.append(m)
        # fmt: off
        args = [
            "-f", "lavfi", "-i", g, "-i", str(wav), "-t", f"{length:.3f}", "-map", "0:v", "-map", "1:a",
            *h264(crf=12), "-g", str(FPS), "-c:a", "pcm_s16le", *BITEXACT,
        ]
        # fmt: on
        self.add(Job(out=m.path, args=args, stage=0))
        return m

    def filler(self, tag: str, length: float, w: int, h: int) -> tuple[Material, float, float]:
        """An unrelated material segment: an unused user file if any, else a procedural one."""
        while self.spare:
            m = self.spare.pop(0)
            got = m.take(length, self.rng, min(length, MIN_SOURCE_SECONDS), "random")
            if got:
                m.role = "filler"
                return m, *got
        used = len([x for x in self.materials if x.id.startswith("f")])
        k = self.filler_kinds[used % len(self.filler_kinds)]
        m = self.procedural(f"f{tag}", k, length, w, h)
        m.role = "filler"
        return m, 0.0, length

    def footage(
        self, tag: str, length: float, w: int, h: int, avoid: Material | None = None
    ) -> tuple[Material, float, float]:
        """Real footage where there is any: an unused user file, else unused room in a user
        file other than ``avoid`` (then related, as ``similar``, to other videos cut from it),
        else procedural."""
        if not self.spare:
            for m in self.user:
                if m is avoid:
                    continue
                got = m.take(length, self.rng, min(length, MIN_SOURCE_SECONDS), "random")
                if got:
                    return m, *got
        return self.filler(tag, length, w, h)

    def music(self, name: str, length: float, *purpose: object) -> list[str]:
        """ffmpeg input args for ``length`` seconds of other music: a seeded stretch of one of
        the user's music files (looped if shorter), else a seeded tune written as ``name``."""
        if not self.spec.music:
            return ["-i", str(self.melody(name, length, *purpose))]
        rng = stream(self.spec.seed, "music", *purpose)
        path, seconds = self.spec.music[int(rng.integers(len(self.spec.music)))]
        if seconds < length + 0.5:
            return ["-stream_loop", "-1", "-i", str(path)]
        t0 = round(float(rng.uniform(0, seconds - length - 0.5)), 3)
        return ["-ss", f"{t0:.3f}", "-t", f"{length + 0.5:.3f}", "-i", str(path)]

    def melody(self, name: str, length: float, *purpose: object) -> Path:
        """A seeded tune of ``length`` seconds written to the work folder as ``name``."""
        wav = self.spec.work / name
        self.wavs.append((wav, int(stream(self.spec.seed, *purpose).integers(2**31 - 1)), length))
        return wav

    def box(self, m: Material) -> tuple[int, int]:
        """The frame size videos cut from ``m`` get: the box, or ``m``'s aspect fitted into it."""
        s = self.spec
        return (s.width, s.height) if m.render else fit(m, s.width, s.height)


# --- ffmpeg argument builders ---------------------------------------------------------------


def user_failure(m: Material, why: str) -> MediaError | None:
    """For jobs that read a user's file: a failure skips that file rather than stopping the run."""
    return None if m.render else MediaError(m.path, why)


def deps_of(m: Material) -> list[Path]:
    """Outputs a job reading ``m`` must wait for: the rendering, for procedural material."""
    return [m.path] if m.render else []


def input_args(m: Material, t0: float, t1: float) -> list[str]:
    """ffmpeg input args for seconds [t0, t1] of ``m``."""
    args = ["-ss", f"{t0:.3f}"] if t0 > 0 else []
    return args + ["-t", f"{t1 - t0:.3f}", "-i", str(m.path)]


def fill(w: int, h: int) -> str:
    """Filter chain: fill a ``w`` x ``h`` frame (scale up, crop the overflow) at FPS, yuv420p."""
    return f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,fps={FPS},format=yuv420p"


def fit(m: Material, w: int, h: int) -> tuple[int, int]:
    """Even size that fits ``m``'s picture into a ``w`` x ``h`` box, keeping its aspect."""
    if m.width <= 0 or m.height <= 0:
        return w, h
    r = min(w / m.width, h / m.height)
    return min(w, even(m.width * r)), min(h, even(m.height * r))


def cut_args(m: Material, t0: float, t1: float, w: int, h: int) -> list[str]:
    """Cut material seconds [t0, t1] to a ``w`` x ``h`` clip at FPS: a source-quality MP4."""
    args = [
        *input_args(m, t0, t1),
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


def cut_job(
    target: Path,
    m: Material,
    t0: float,
    t1: float,
    w: int,
    h: int,
    *,
    role: str,
    group: str,
    exact: bool,
    failure: str,
) -> Job:
    """The job that writes ``[t0, t1)`` of material ``m`` alone to ``target`` (sources, similar
    segments, distractors, neighbouring segments)."""
    return Job(
        out=target,
        args=cut_args(m, t0, t1, w, h),
        stage=1,
        deps=deps_of(m),
        video=VideoRecord(
            target.name, role, [Span(m.id, t0, t1, 0.0, round(t1 - t0, 3))], exact=exact
        ),
        source=group,
        params={"material": m.origin, "start": t0, "end": t1},
        skippable=user_failure(m, failure),
    )


def embed_args(
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
        f"[0:v]{fill(w, h)},split[h0][h1]",
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


# --- user materials -------------------------------------------------------------------------


def _skip(plan: Plan, path: object, stage: str, error: str, message: str) -> None:
    plan.skipped.append({"path": str(path), "stage": stage, "error": error, "message": message})


def user_materials(sources_dir: Path, plan: Plan) -> list[Material]:
    """The readable, distinct videos under ``sources_dir`` (the others are listed as skipped)."""
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
            _skip(plan, p, "probe", type(exc).__name__, exc.reason)
            continue
        digest = content_hash(p)
        if digest in seen:  # a byte copy (or a link) of a file already taken: unlabelled duplicates
            log.info("skipping %s: same content as %s", p, seen[digest])
            _skip(plan, p, "dedupe", "Duplicate", f"same content as {seen[digest]}")
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
