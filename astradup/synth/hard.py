"""Hard negatives: videos that look alike, or sound alike, but are not copies.

Each kind reproduces a failure measured on real corpora (issue 9), so a benchmark that counts
them punishes a scorer that calls them duplicates. One *set* (``hard_negatives=1``) makes, named
``hnNN__<kind>_<a|b>.mp4``:

``hard_lowdetail`` (``different``)
    Two unrelated videos with long low-detail stretches: a slow fade in from black over footage,
    a near-white stretch, a smooth colour gradient, a near-black stretch, and footage fading out
    to white (the order of the three flat stretches is seeded). Their flat frames match anything.
``hard_slideshow`` (``different``)
    Two slideshows of four stills with cross-fades, each still a frame of *other* footage
    blurred to a smooth, low-contrast picture: different stills with the same lack of detail.
``hard_edit`` (``similar``)
    Two different edits of one source's footage: its shots re-ordered, re-framed (a 1.5-1.9x
    crop that pans across each shot, a Ken Burns move), over other music. Same material,
    different pixels: ``similar`` to each other and to every video that shows that material.
``hard_neighbour`` (``similar``)
    Two neighbouring segments of one recording (one second apart, no shared frame).
``hard_soundtrack`` (``different``)
    Other pictures over a source's soundtrack (needs a source with audio): the same sound is
    not the same video. Listed as ``different`` against the source and each video of its group.

The low-detail videos and slideshows of a set are listed as ``different`` pairs among themselves
(group ``hnNN``, so a grouped train/test split keeps a set on one side); the edits and neighbours
get their ``similar`` rows from provenance. Footage comes from the user's files where they have
room (then a video is also ``similar`` to the others cut from that file), else from procedural
renderings. Hard negatives are never a copy relation.
"""

from __future__ import annotations

import logging

import numpy as np

from astradup.synth._ffmpeg import BITEXACT
from astradup.synth.plan import (
    FPS,
    MIN_SOURCE_SECONDS,
    Job,
    Material,
    Plan,
    Source,
    cut_job,
    deps_of,
    fill,
    input_args,
    stream,
    user_failure,
)
from astradup.synth.transforms import aac, h264, on_frame
from astradup.synth.truth import Span, VideoRecord

log = logging.getLogger(__name__)

#: hard-negative kind -> the relation its pairs carry in the truth (from
#: :data:`astradup.labels.RELATIONS`, never one of its ``POSITIVE_RELATIONS``)
HARD_KINDS = {
    "hard_lowdetail": "different",
    "hard_slideshow": "different",
    "hard_edit": "similar",
    "hard_neighbour": "similar",
    "hard_soundtrack": "different",
}


def plan_hard_negatives(plan: Plan, sources: list[Source]) -> None:
    """``plan.spec.n_hard`` sets of every kind in :data:`HARD_KINDS`."""
    with_audio = [s for s in sources if s.material.has_audio]
    for k in range(plan.spec.n_hard):
        tag = f"hn{k + 1:02d}"
        _neighbours(plan, tag, sources)  # first: it needs the most room in one file
        flat = [_lowdetail(plan, tag, side) for side in "ab"]
        flat += [_slideshow(plan, tag, side) for side in "ab"]
        for i, (a, ka) in enumerate(flat):
            for b, kb in flat[i + 1 :]:
                label = ka if ka == kb else "+".join(sorted((ka, kb)))
                plan.extra_pairs.append((a, b, "different", label, tag))
        if sources:
            source = sources[k % len(sources)]
            shots = _shot_orders(stream(plan.spec.seed, tag, "edit-order"))
            for side, order in zip("ab", shots):
                _edit(plan, tag, side, source, order)
        if with_audio:
            _soundtrack(plan, tag, with_audio[k % len(with_audio)])
    if plan.spec.n_hard and not with_audio:
        log.info("no source has audio; no hard_soundtrack negatives")


def _job(plan: Plan, name: str, args: list[str], deps: list, video: VideoRecord, **kw) -> Job:
    return plan.add(
        Job(
            out=plan.spec.out / name,
            args=args + BITEXACT,
            stage=2,
            deps=deps,
            video=video,
            source=kw.pop("source", name.split("__")[0]),
            **kw,
        )
    )


def _colour(rng: np.random.Generator, lo: int, hi: int) -> str:
    return "0x{:02X}{:02X}{:02X}".format(*tuple(int(v) for v in rng.integers(lo, hi, 3)))


def _flat(kind: str, rng: np.random.Generator, w: int, h: int, seconds: float) -> str:
    """A low-detail lavfi chain: near-white, near-black, or a smooth drifting gradient."""
    base = f"s={w}x{h}:r={FPS}:d={seconds:.3f}"
    if kind == "white":
        return f"color=c={_colour(rng, 232, 256)}:{base},format=yuv420p,noise=alls=2:allf=t:all_seed={int(rng.integers(1, 2**31 - 1))}"
    if kind == "black":
        return f"color=c={_colour(rng, 0, 22)}:{base},format=yuv420p"
    ax, ay = (rng.uniform(-1, 1, 2) * 90).round(1)
    y0, u0, v0 = (int(v) for v in rng.integers(60, 200, 3))
    du, dv = (rng.uniform(-40, 40, 2)).round(1)
    return (
        f"color=c=black:{base},format=yuv444p,geq=lum='clip({y0}+{ax}*(X/W-0.5)+{ay}*(Y/H-0.5)+6*sin(T),0,255)'"
        f":cb='clip({u0}+{du}*(X/W-0.5),0,255)':cr='clip({v0}+{dv}*(Y/H-0.5),0,255)',format=yuv420p"
    )


def _lowdetail(plan: Plan, tag: str, side: str) -> tuple[str, str]:
    """Footage fading in from black, three flat stretches, footage fading out to white."""
    spec = plan.spec
    w, h, d = spec.width, spec.height, spec.duration
    rng = stream(spec.seed, tag, "lowdetail", side)
    fin, fout = on_frame(0.25 * d, FPS), on_frame(0.15 * d, FPS)
    fm, f0, f1 = plan.footage(f"{tag}ld{side}", round(fin + fout, 3), w, h)
    fin = min(fin, on_frame((f1 - f0) * 0.6, FPS))
    fout = min(fout, on_frame(f1 - f0 - fin, FPS))
    flats = [str(x) for x in rng.permutation(["white", "gradient", "black"])]
    lengths = [on_frame(0.2 * d * float(u), FPS) for u in rng.uniform(0.85, 1.25, 3)]
    g = [
        f"[0:v]{fill(w, h)},split[c0][c1]",
        f"[c0]trim=end={fin},setpts=PTS-STARTPTS,fade=t=in:st=0:d={0.8 * fin:.3f}[v0]",
    ]
    for i, (kind, sec) in enumerate(zip(flats, lengths)):
        g.append(f"{_flat(kind, rng, w, h, max(sec, 1 / FPS))},setsar=1[v{i + 1}]")
    g.append(
        f"[c1]trim=start={fin}:end={fin + fout},setpts=PTS-STARTPTS,"
        f"fade=t=out:st=0:d={fout:.3f}:color=white[v4]"
    )
    g.append("[v0][v1][v2][v3][v4]concat=n=5:v=1:a=0[v]")
    mid = round(fin + sum(max(sec, 1 / FPS) for sec in lengths), 3)
    total = round(mid + fout, 3)
    music = plan.music(f"{tag}__lowdetail_{side}.wav", total, tag, "lowdetail-music", side)
    name = f"{tag}__lowdetail_{side}.mp4"
    # fmt: off
    args = [
        *input_args(fm, f0, f1), *music, "-filter_complex", ";".join(g), "-map", "[v]",
        "-map", "1:a", *aac(), *h264(), "-t", f"{total:.3f}",
    ]
    # fmt: on
    spans = [
        Span(fm.id, f0, f0 + fin, 0.0, fin),
        Span(fm.id, f0 + fin, f0 + fin + fout, mid, total),
    ]
    name_kind = (name, "hard_lowdetail")
    _job(
        plan,
        name,
        args,
        deps_of(fm),
        VideoRecord(name, "hard_lowdetail", spans),
        params={"flat": flats, "flat_seconds": lengths, "fade_in": fin, "fade_out": fout},
        skippable=user_failure(fm, "footage for a low-detail video could not be read"),
    )
    return name_kind


def _slideshow(plan: Plan, tag: str, side: str, n: int = 4, xf: float = 0.6) -> tuple[str, str]:
    """Four smoothed, low-contrast stills of other footage, cross-faded."""
    spec = plan.spec
    w, h, d = spec.width, spec.height, spec.duration
    rng = stream(spec.seed, tag, "slideshow", side)
    hold = on_frame((d + (n - 1) * xf) / n, FPS)
    fm, f0, f1 = plan.footage(f"{tag}ss{side}", min(d, 4.0), w, h)
    times = sorted(on_frame(float(t), FPS) for t in rng.uniform(0, (f1 - f0) - 0.2, n))
    bright = float(rng.uniform(-0.25, 0.3))
    g = [f"[0:v]{fill(w, h)},split={n}" + "".join(f"[s{i}]" for i in range(n))]
    for i, t in enumerate(times):
        k = int(round(t * FPS))
        g.append(
            f"[s{i}]trim=start_frame={k}:end_frame={k + 1},setpts=PTS-STARTPTS,scale=12:8,"
            f"scale={w}:{h}:flags=bicubic,eq=contrast={rng.uniform(0.25, 0.45):.2f}:brightness={bright:.2f},"
            f"tpad=stop_mode=clone:stop_duration={hold:.3f},trim=duration={hold:.3f},fps={FPS},setsar=1,"
            f"format=yuv420p,settb=1/{FPS}[p{i}]"
        )
    prev = "p0"
    for i in range(1, n):
        g.append(
            f"[{prev}][p{i}]xfade=transition=fade:duration={xf}:offset={i * (hold - xf):.3f}[x{i}]"
        )
        prev = f"x{i}"
    total = round(n * hold - (n - 1) * xf, 3)
    music = plan.music(f"{tag}__slideshow_{side}.wav", total, tag, "slideshow-music", side)
    name = f"{tag}__slideshow_{side}.mp4"
    # fmt: off
    args = [
        *input_args(fm, f0, f1), *music, "-filter_complex", ";".join(g), "-map", f"[{prev}]",
        "-map", "1:a", *aac(), *h264(), "-t", f"{total:.3f}",
    ]
    # fmt: on
    # a still shows one instant of the footage: a span with no length in the material
    spans = [
        Span(fm.id, f0 + t, f0 + t, round(i * (hold - xf), 3), round(i * (hold - xf) + hold, 3))
        for i, t in enumerate(times)
    ]
    _job(
        plan,
        name,
        args,
        deps_of(fm),
        VideoRecord(name, "hard_slideshow", spans),
        params={"stills": times, "hold": hold, "crossfade": xf},
        skippable=user_failure(fm, "footage for a slideshow could not be read"),
    )
    return name, "hard_slideshow"


def _shot_orders(rng: np.random.Generator, n: int = 4) -> list[list[int]]:
    """Two different orders of ``n`` shots, neither the original one."""
    orders: list[list[int]] = []
    while len(orders) < 2:
        o = [int(i) for i in rng.permutation(n)]
        if o != list(range(n)) and o not in orders:
            orders.append(o)
    return orders


def _edit(plan: Plan, tag: str, side: str, source: Source, order: list[int]) -> None:
    """The source's shots in another order, each re-framed by a panning crop, other music."""
    spec = plan.spec
    rng = stream(spec.seed, tag, "edit", side)
    w, h, seg = source.w, source.h, source.seg
    cuts = [on_frame(seg * i / len(order), FPS) for i in range(len(order) + 1)]
    g = [f"[0:v]split={len(order)}" + "".join(f"[s{i}]" for i in range(len(order)))]
    spans, t, frames = [], 0.0, []
    for j, shot in enumerate(order):
        a, b = cuts[shot], cuts[shot + 1]
        z = float(rng.uniform(1.5, 1.9))
        cw, ch = int(w / z) // 2 * 2, int(h / z) // 2 * 2
        (x0, x1), (y0, y1) = rng.uniform(0, w - cw, 2).round(), rng.uniform(0, h - ch, 2).round()
        dur = round(b - a, 3)
        g.append(
            f"[s{j}]trim=start={a}:end={b},setpts=PTS-STARTPTS,"
            f"crop={cw}:{ch}:x='{x0:.0f}+({x1 - x0:.0f})*t/{dur}':y='{y0:.0f}+({y1 - y0:.0f})*t/{dur}',"
            f"scale={w}:{h},setsar=1[e{j}]"
        )
        spans.append(Span(source.material.id, source.t0 + a, source.t0 + b, t, round(t + dur, 3)))
        frames.append({"shot": shot, "zoom": round(z, 3), "from": [x0, y0], "to": [x1, y1]})
        t = round(t + dur, 3)
    g.append("".join(f"[e{j}]" for j in range(len(order))) + f"concat=n={len(order)}:v=1:a=0[v]")
    music = plan.music(f"{tag}__edit_{side}.wav", t, tag, "edit-music", side)
    name = f"{tag}__edit_{side}.mp4"
    src = spec.out / f"{source.sid}.mp4"
    # fmt: off
    args = [
        "-i", str(src), *music, "-filter_complex", ";".join(g), "-map", "[v]", "-map", "1:a",
        *aac(), *h264(), "-t", f"{t:.3f}",
    ]
    # fmt: on
    _job(
        plan,
        name,
        args,
        [src],
        VideoRecord(name, "hard_edit", spans, edit=True),
        source=source.sid,
        params={"edit_of": f"{source.sid}.mp4", "shots": frames},
    )


def _neighbours(plan: Plan, tag: str, sources: list[Source]) -> None:
    """Two neighbouring segments of one recording: an unused user file, else a user file that
    has room, else a new procedural rendering."""
    spec = plan.spec
    length = spec.duration
    used = list({id(s.material): s.material for s in sources if not s.material.render}.values())
    for pool in (plan.spare, used):
        for m in list(pool):
            for seconds in (length, max(MIN_SOURCE_SECONDS, length / 2)):
                got = m.take_pair(seconds)
                if got:
                    if m in plan.spare:
                        plan.spare.remove(m)
                    _neighbour_jobs(plan, tag, m, got)
                    return
    kind = plan.filler_kinds[
        int(stream(spec.seed, tag, "neighbour").integers(len(plan.filler_kinds)))
    ]
    m = plan.procedural(f"{tag}nb", kind, round(2 * length + 1.0, 3), spec.width, spec.height)
    got = m.take_pair(length)
    if got:
        _neighbour_jobs(plan, tag, m, got)


def _neighbour_jobs(
    plan: Plan, tag: str, m: Material, segments: tuple[tuple[float, float], ...]
) -> None:
    plan.groups.setdefault(m.id, tag)
    w, h = plan.box(m)
    for side, (t0, t1) in zip("ab", segments):
        name = f"{tag}__neighbour_{side}.mp4"
        plan.add(
            cut_job(
                plan.spec.out / name,
                m,
                t0,
                t1,
                w,
                h,
                role="hard_neighbour",
                group=plan.groups[m.id],
                exact=True,
                failure="neighbouring segment could not be cut",
            )
        )


def _soundtrack(plan: Plan, tag: str, source: Source) -> None:
    """Other pictures over the source's soundtrack; ``different`` to every video of its group."""
    spec = plan.spec
    w, h = source.w, source.h
    fm, f0, f1 = plan.footage(f"{tag}st", source.seg, w, h, avoid=source.material)
    name = f"{tag}__soundtrack.mp4"
    src = spec.out / f"{source.sid}.mp4"
    # fmt: off
    args = [
        *input_args(fm, f0, f1), "-i", str(src), "-filter_complex", f"[0:v]{fill(w, h)}[v]",
        "-map", "[v]", "-map", "1:a:0", "-c:a", "copy", *h264(), "-t", f"{min(source.seg, f1 - f0):.3f}",
    ]
    # fmt: on
    group = [j.out.name for j in plan.jobs if j.video is not None and j.source == source.sid]
    _job(
        plan,
        name,
        args,
        [src, *deps_of(fm)],
        VideoRecord(name, "hard_soundtrack", [Span(fm.id, f0, f1, 0.0, round(f1 - f0, 3))]),
        source=source.sid,
        params={"audio_from": f"{source.sid}.mp4"},
        skippable=user_failure(fm, "picture segment could not be read"),
    )
    for other in group:
        if other.startswith(f"{tag}__"):
            continue
        plan.extra_pairs.append((other, name, "different", "hard_soundtrack", source.sid))
