"""One planner per role of a corpus video: sources (with their "similar" segments), copies by the
transforms, partial copies, distractors and shared-soundtrack negatives; :func:`make_plan` calls
them in a fixed order (the listing order of ``videos.csv``), and then the hard negatives
(:mod:`.hard`) when they are asked for.
"""

from __future__ import annotations

import logging

import numpy as np

from astradup.synth import procedural
from astradup.synth._ffmpeg import BITEXACT
from astradup.synth.plan import (
    FPS,
    GAP,
    MIN_SOURCE_SECONDS,
    Job,
    Material,
    Plan,
    Source,
    Spec,
    cut_job,
    deps_of,
    embed_args,
    fill,
    input_args,
    stream,
    user_failure,
    user_materials,
)
from astradup.synth.transforms import (
    NEEDS_BACKGROUND,
    NEEDS_MELODY,
    TRANSFORMS,
    Clip,
    Extras,
    aac,
    font_file,
    graph,
    h264,
    on_frame,
)
from astradup.synth.truth import Span, VideoRecord

log = logging.getLogger(__name__)


def make_plan(spec: Spec) -> Plan:
    """Plan every job of the corpus ``spec`` describes (pure: nothing is run)."""
    plan = Plan(spec, rng=stream(spec.seed, "plan"), font=font_file())
    user: list[Material] = []
    if spec.sources_dir is not None:
        user = user_materials(spec.sources_dir, plan)
        order = [int(i) for i in plan.rng.permutation(len(user))]
        user = [user[i] for i in order]
    kinds = procedural.kind_order(stream(spec.seed, "kinds"), spec.n_sources + spec.n_distractors)
    plan.filler_kinds = procedural.kind_order(
        stream(spec.seed, "filler-kinds"), 4 * spec.n_sources + 4, procedural.VARIED_KINDS
    )
    if user:
        sources = plan_user_sources(plan, user)
        similar = plan_user_similar(plan, sources)
    else:
        sources, similar = plan_procedural_sources(plan, kinds)
    plan.user = user
    plan.spare = [m for m in user if m.role == ""]
    # distractors get the unused user files first; fillers (backgrounds, hosts) take what is left
    distractors = plan_distractor_segments(plan, kinds[0 if user else spec.n_sources :])
    for si, source in enumerate(sources):
        source.w, source.h = plan.box(source.material)
        plan.add(
            cut_job(
                spec.out / f"{source.sid}.mp4",
                source.material,
                source.t0,
                source.t1,
                source.w,
                source.h,
                role="source",
                group=source.sid,
                exact=True,
                failure="source could not be cut",
            )
        )
        plan_copies(plan, si, source)
        if source.sid in similar:
            plan_similar(plan, source, similar[source.sid])
        if si < spec.n_partial:
            plan_partials(plan, si, source)
    plan_distractors(plan, distractors)
    plan_shared_audio(plan, sources)
    if spec.n_hard:
        from astradup.synth.hard import plan_hard_negatives

        plan_hard_negatives(plan, sources)
    return plan


# --- sources --------------------------------------------------------------------------------


def plan_user_sources(plan: Plan, user: list[Material]) -> list[Source]:
    """Source segments from the user's files: one per file first, then more from long ones."""
    spec, rng = plan.spec, plan.rng
    sources: list[Source] = []
    passes = 0
    while len(sources) < spec.n_sources and passes < 50:
        progressed = False
        for m in user:
            if len(sources) >= spec.n_sources:
                break
            if passes > 0 and m.role != "source":
                continue
            at = (
                "random"
                if m.duration >= 2 * spec.duration + GAP or passes > 0
                else str(rng.choice(["start", "end"]))
            )
            got = m.take(
                spec.duration,
                rng,
                min(spec.duration, MIN_SOURCE_SECONDS if passes == 0 else spec.duration),
                at,
            )
            if got:
                m.role = "source"
                sid = f"src{len(sources) + 1:02d}"
                plan.groups.setdefault(m.id, sid)
                sources.append(Source(sid, m, *got))
                progressed = True
        passes += 1
        if not progressed:
            break
    if len(sources) < spec.n_sources:
        log.warning(
            "sources_dir yields %d source segment(s) of up to %.1f s; %d were asked for",
            len(sources),
            spec.duration,
            spec.n_sources,
        )
    return sources


def plan_user_similar(
    plan: Plan, sources: list[Source]
) -> dict[str, tuple[Material, float, float]]:
    """For the first ``n_similar`` sources, a second, non-overlapping segment of the same file."""
    similar: dict[str, tuple[Material, float, float]] = {}
    for s in sources[: plan.spec.n_similar]:
        got = s.material.take(s.seg, plan.rng, max(MIN_SOURCE_SECONDS, 0.4 * s.seg), "largest")
        if got:
            similar[s.sid] = (s.material, *got)
        else:
            log.info(
                "%s: no room in %s for a second, non-overlapping segment; no 'similar' copy",
                s.sid,
                s.material.path.name,
            )
    return similar


def plan_procedural_sources(
    plan: Plan, kinds: list[str]
) -> tuple[list[Source], dict[str, tuple[Material, float, float]]]:
    """Procedural sources; the first ``n_similar`` renderings are long enough for a second
    segment (the "similar" video) after a gap."""
    spec = plan.spec
    sources: list[Source] = []
    similar: dict[str, tuple[Material, float, float]] = {}
    d = spec.duration
    for i in range(spec.n_sources):
        sid = f"src{i + 1:02d}"
        length = round(2 * d + GAP if i < spec.n_similar else d, 3)
        m = plan.procedural(sid, kinds[i], length, spec.width, spec.height)
        m.role = "source"
        plan.groups[m.id] = sid
        sources.append(Source(sid, m, 0.0, d))
        if i < spec.n_similar:
            similar[sid] = (m, d + GAP, round(2 * d + GAP, 3))
    return sources, similar


def plan_similar(plan: Plan, source: Source, segment: tuple[Material, float, float]) -> None:
    """Another segment of the source's material, not overlapping it: ``similar``."""
    sm, s0, s1 = segment
    target = plan.spec.out / f"{source.sid}__similar.mp4"
    plan.add(
        cut_job(
            target,
            sm,
            s0,
            s1,
            source.w,
            source.h,
            role="similar",
            group=source.sid,
            exact=True,
            failure="segment could not be cut",
        )
    )


# --- copies ---------------------------------------------------------------------------------


def plan_copies(plan: Plan, si: int, source: Source) -> None:
    """One copy of ``source`` per transform in ``spec.transforms``."""
    spec = plan.spec
    sid, m, seg = source.sid, source.material, source.seg
    src = spec.out / f"{sid}.mp4"
    clip = Clip(src, source.w, source.h, seg, FPS, m.has_audio)
    bg: tuple[Material, float, float] | None = None
    melody_wav = None
    if NEEDS_BACKGROUND & set(spec.transforms):
        bg = plan.filler(f"{si + 1:02d}bg", seg, source.w, source.h)
    if NEEDS_MELODY & set(spec.transforms):
        melody_wav = plan.melody(f"{sid}__melody.wav", seg, "melody", sid)
    extras = Extras(
        background=tuple(input_args(*bg)) if bg else None, melody=melody_wav, font=plan.font
    )
    for name in spec.transforms:
        recipe = TRANSFORMS[name](clip, stream(spec.seed, sid, name), extras)
        target = spec.out / f"{sid}__{name}{recipe.ext}"
        shown = seg - recipe.head - recipe.tail
        h0 = source.t0 + recipe.head
        spans = [Span(m.id, h0, h0 + shown, 0.0, round(shown / recipe.speed, 3))]
        deps, skip = [src], None
        if name in NEEDS_BACKGROUND and bg is not None:
            spans.append(Span(bg[0].id, bg[1], bg[2], 0.0, round(bg[2] - bg[1], 3)))
            deps += deps_of(bg[0])
            skip = user_failure(bg[0], "background segment could not be read")
        plan.add(
            Job(
                out=target,
                args=recipe.args + BITEXACT,
                stage=2,
                deps=deps,
                video=VideoRecord(target.name, name, spans, exact=recipe.exact),
                source=sid,
                params=recipe.params,
                skippable=skip,
            )
        )


# --- partial copies -------------------------------------------------------------------------


def plan_partials(plan: Plan, si: int, source: Source) -> None:
    """Two partial copies of ``source``: a segment cut out alone, and one inside a longer
    unrelated video."""
    spec = plan.spec
    sid, m, seg, t0 = source.sid, source.material, source.seg, source.t0
    w, h = source.w, source.h
    src = spec.out / f"{sid}.mp4"
    clip = Clip(src, w, h, seg, FPS, m.has_audio)
    prng = stream(spec.seed, sid, "partial")
    # (b) a segment cut out alone: 25-45% of the source
    cl = on_frame(seg * float(prng.uniform(0.25, 0.45)), FPS)
    c0 = on_frame(float(prng.uniform(0, seg - cl)), FPS)
    target = spec.out / f"{sid}__partial_cut.mp4"
    vf, af = (
        f"trim=start={c0}:end={c0 + cl},setpts=PTS-STARTPTS",
        f"atrim=start={c0}:end={c0 + cl},asetpts=PTS-STARTPTS",
    )
    plan.add(
        Job(
            out=target,
            args=graph(clip, vf, af, video=h264(crf=23), audio=aac()) + BITEXACT,
            stage=2,
            deps=[src],
            video=VideoRecord(
                target.name, "partial_cut", [Span(m.id, t0 + c0, t0 + c0 + cl, 0.0, cl)]
            ),
            source=sid,
            params={"start": c0, "end": round(c0 + cl, 3)},
        )
    )
    # (a) a segment embedded in an unrelated, longer video
    el = on_frame(seg * float(prng.uniform(0.4, 0.6)), FPS)
    e0 = on_frame(float(prng.uniform(0, seg - el)), FPS)
    hm, h0, h1 = plan.filler(f"{si + 1:02d}host", round(1.5 * spec.duration, 3), w, h)
    hl = round(h1 - h0, 3)
    p = on_frame(float(prng.uniform(0.2, 0.8)) * hl, FPS)
    target = spec.out / f"{sid}__partial_embed.mp4"
    args = embed_args(input_args(hm, h0, h1), hm.has_audio, src, m.has_audio, p, hl, e0, el, w, h)
    spans = [
        Span(hm.id, h0, h0 + p, 0.0, p),
        Span(m.id, t0 + e0, t0 + e0 + el, p, p + el),
        Span(hm.id, h0 + p, h1, p + el, hl + el),
    ]
    plan.add(
        Job(
            out=target,
            args=args + h264(crf=21) + BITEXACT,
            stage=2,
            deps=[src, *deps_of(hm)],
            video=VideoRecord(target.name, "partial_embed", spans),
            source=sid,
            params={
                "segment_start": e0,
                "segment_end": round(e0 + el, 3),
                "host_start": p,
                "host_end": round(p + el, 3),
            },
            skippable=user_failure(hm, "host segment could not be read"),
        )
    )
    plan_trailer(plan, source)


def _card(plan: Plan, rng: np.random.Generator, w: int, h: int, seconds: float, label: str) -> str:
    """A title card: a seeded colour with a caption, ``seconds`` long (a lavfi chain)."""
    colour = "0x{:02X}{:02X}{:02X}".format(*tuple(int(v) for v in rng.integers(0, 160, 3)))
    chain = f"color=c={colour}:s={w}x{h}:r={FPS}:d={seconds:.3f},setsar=1,format=yuv420p"
    size = max(8, h // 7)
    if plan.font:
        return chain + (
            f",drawtext=fontfile='{plan.font}':text='{label}':fontsize={size}:fontcolor=white:"
            "x=(w-tw)/2:y=(h-th)/2"
        )
    return chain + f",drawbox=x=w/4:y=(h-{size})/2:w=w/2:h={size}:c=white:t=fill"


TRAILER_CARDS = ("COMING SOON", "THIS SUMMER", "ONLY IN CINEMAS", "THE STORY CONTINUES")


def plan_trailer(plan: Plan, source: Source) -> None:
    """A trailer that quotes the source: title cards around two short quotes of it (15-25% of
    the source each, one from each half, in a seeded order), over other music: ``partial``."""
    spec = plan.spec
    sid, m, seg, w, h = source.sid, source.material, source.seg, source.w, source.h
    rng = stream(spec.seed, sid, "trailer")
    quotes = []
    for half in (0, 1):
        ql = on_frame(seg * float(rng.uniform(0.15, 0.25)), FPS)
        q0 = on_frame(half * seg / 2 + float(rng.uniform(0, seg / 2 - ql)), FPS)
        quotes.append((q0, ql))
    if rng.random() < 0.5:
        quotes.reverse()
    cards = [on_frame(float(rng.uniform(0.8, 1.2)), FPS) for _ in range(3)]
    words = [str(t) for t in rng.permutation(TRAILER_CARDS)[:3]]
    g = ["[0:v]split[s0][s1]"]
    spans, t = [], 0.0
    for i, (q0, ql) in enumerate(quotes):
        g.append(f"{_card(plan, rng, w, h, cards[i], words[i])}[c{i}]")
        g.append(f"[s{i}]trim=start={q0}:end={q0 + ql},setpts=PTS-STARTPTS,fps={FPS}[q{i}]")
        t = round(t + cards[i], 3)
        spans.append(Span(m.id, source.t0 + q0, source.t0 + q0 + ql, t, round(t + ql, 3)))
        t = round(t + ql, 3)
    g.append(f"{_card(plan, rng, w, h, cards[2], words[2])}[c2]")
    g.append("[c0][q0][c1][q1][c2]concat=n=5:v=1:a=0[v]")
    total = round(t + cards[2], 3)
    music = plan.music(f"{sid}__trailer.wav", total, "trailer-music", sid)
    src = spec.out / f"{sid}.mp4"
    target = spec.out / f"{sid}__partial_trailer.mp4"
    # fmt: off
    args = [
        "-i", str(src), *music, "-filter_complex", ";".join(g), "-map", "[v]", "-map", "1:a",
        *aac(), *h264(crf=21), "-t", f"{total:.3f}",
    ]
    # fmt: on
    plan.add(
        Job(
            out=target,
            args=args + BITEXACT,
            stage=2,
            deps=[src],
            video=VideoRecord(target.name, "partial_trailer", spans),
            source=sid,
            params={"quotes": [[q0, round(q0 + ql, 3)] for q0, ql in quotes], "cards": cards},
        )
    )


# --- negatives ------------------------------------------------------------------------------


def plan_distractor_segments(
    plan: Plan, kinds: list[str]
) -> list[tuple[str, Material, float, float]]:
    """The distractors' material: unused user files first, else procedural renderings."""
    spec = plan.spec
    out: list[tuple[str, Material, float, float]] = []
    for i in range(spec.n_distractors):
        did = f"dis{i + 1:02d}"
        if plan.spare:
            dm, d0, d1 = plan.filler(f"d{i + 1:02d}", spec.duration, spec.width, spec.height)
        else:
            dm = plan.procedural(did, kinds[i], spec.duration, spec.width, spec.height)
            d0, d1 = 0.0, spec.duration
        dm.role = "distractor"
        out.append((did, dm, d0, d1))
    return out


def plan_distractors(plan: Plan, distractors: list[tuple[str, Material, float, float]]) -> None:
    """Unrelated videos (not in the truth)."""
    for did, dm, d0, d1 in distractors:
        dw, dh = plan.box(dm)
        target = plan.spec.out / f"{did}.mp4"
        plan.add(
            cut_job(
                target,
                dm,
                d0,
                d1,
                dw,
                dh,
                role="distractor",
                group=did,
                exact=False,
                failure="distractor could not be cut",
            )
        )


def plan_shared_audio(plan: Plan, sources: list[Source]) -> None:
    """Other pictures with a source's soundtrack: unrelated (not in the truth)."""
    spec = plan.spec
    with_audio = [s for s in sources if s.material.has_audio]
    for i in range(min(spec.n_shared, len(with_audio))):
        s = with_audio[i]
        w, h = plan.box(s.material)
        fm, f0, f1 = plan.filler(f"{i + 1:02d}sa", s.seg, w, h)
        target = spec.out / f"{s.sid}__shared_audio.mp4"
        src = spec.out / f"{s.sid}.mp4"
        # fmt: off
        args = [
            *input_args(fm, f0, f1), "-i", str(src), "-filter_complex", f"[0:v]{fill(w, h)}[v]",
            "-map", "[v]", "-map", "1:a:0", "-c:a", "copy", *h264(), "-t", f"{min(s.seg, f1 - f0):.3f}",
        ]
        # fmt: on
        plan.add(
            Job(
                out=target,
                args=args + BITEXACT,
                stage=2,
                deps=[src, *deps_of(fm)],
                video=VideoRecord(
                    target.name, "shared_audio", [Span(fm.id, f0, f1, 0.0, round(f1 - f0, 3))]
                ),
                source=s.sid,
                params={"audio_from": f"{s.sid}.mp4"},
                skippable=user_failure(fm, "picture segment could not be read"),
            )
        )
    if spec.n_shared and not with_audio:
        log.info("no source has audio; no shared-soundtrack negatives")
