"""Procedural source pictures: seeded ffmpeg lavfi graphs.

Each kind draws moving content (a fractal zoom, cellular automata, test patterns, shapes over a
smooth colour field, Perlin noise, a pan over colour bars) and drifts slowly in hue, so two non-overlapping
segments of one rendering look alike but are not copies ("similar"). Kinds are used in a seeded
order so that a small corpus gets different kinds for its sources.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

# Points on the Mandelbrot set's boundary where a zoom keeps showing structure.
_MANDEL_POINTS = [
    (-0.743643887037158, -0.131825904205311),
    (-0.7453, 0.1127),
    (-0.1011, 0.9563),
    (-1.25066, 0.02012),
    (-0.16, 1.0405),
    (0.3245046418497685, 0.04855101129280834),
]


def _hex(rng: np.random.Generator) -> str:
    return "0x{:02X}{:02X}{:02X}".format(*tuple(int(v) for v in rng.integers(30, 256, size=3)))


def _mandelbrot(w: int, h: int, fps: int, length: float, rng: np.random.Generator) -> str:
    x, y = _MANDEL_POINTS[int(rng.integers(len(_MANDEL_POINTS)))]
    # start already zoomed in, at a seeded scale, so two renderings differ from the first frame
    start = float(rng.uniform(0.3, 1.5))
    end = start * float(rng.uniform(0.005, 0.03))
    return (
        f"mandelbrot=s={w // 2}x{h // 2}:r={fps}:maxiter=128:start_scale={start:.4f}:end_scale={end:.6f}"
        f":end_pts={int(length * fps) + 1}:start_x={x}:start_y={y}:inner=period,scale={w}:{h}"
    )


@functools.lru_cache(maxsize=1)
def _roam_points(n: int = 96, spacing: float = 0.06) -> tuple[tuple[float, float], ...]:
    """Up to ``n`` fixed points (76 with the defaults) near the Mandelbrot set's boundary, each at
    least ``spacing`` (more than the widest first view, 0.05) from the others: uniform draws over
    the set's box (a fixed seed) whose orbit escapes late (after 40-120 of 128 iterations), so a
    zoom into one keeps showing structure, taken greedily in draw order."""
    rng = np.random.default_rng(20261130)
    c = rng.uniform(-2.0, 0.5, 20000) + 1j * rng.uniform(-1.2, 1.2, 20000)
    z = np.zeros_like(c)
    n_esc = np.full(len(c), 128)
    for i in range(128):
        live = n_esc == 128
        z[live] = z[live] * z[live] + c[live]
        n_esc[live & (np.abs(z) > 2.0)] = i
    out: list[complex] = []
    for p in c[(n_esc >= 40) & (n_esc < 120)]:
        if all(abs(p - q) >= spacing for q in out):
            out.append(p)
            if len(out) == n:
                break
    return tuple((float(p.real), float(p.imag)) for p in out)


def _mandelbrot_roam(w: int, h: int, fps: int, length: float, rng: np.random.Generator, slot: int = 0) -> str:
    # Fillers only: filler number ``slot`` of this kind zooms into a point of its own, starting
    # close in, so two fillers show different pictures (two ``mandelbrot`` renderings at one of
    # its six points show the same fractal in another hue: unrelated fillers were copies). A corpus
    # with more roam fillers than points (76: about 380 fillers, ~90 sources) reuses them in turn.
    points = _roam_points()
    x, y = points[slot % len(points)]
    start = float(rng.uniform(0.02, 0.05))
    end = start * float(rng.uniform(0.03, 0.15))
    return (
        f"mandelbrot=s={w // 2}x{h // 2}:r={fps}:maxiter=128:start_scale={start:.4f}:end_scale={end:.6f}"
        f":end_pts={int(length * fps) + 1}:start_x={x!r}:start_y={y!r}:inner=period,scale={w}:{h}"
    )


def _life(w: int, h: int, fps: int, length: float, rng: np.random.Generator) -> str:
    cell = int(rng.choice([3, 4, 5]))
    return (
        f"life=s={w // cell}x{h // cell}:r={fps}:ratio={rng.uniform(0.15, 0.4):.3f}"
        f":seed={int(rng.integers(1, 2**31 - 1))}:mold={int(rng.integers(5, 40))}"
        f":life_color={_hex(rng)}:death_color={_hex(rng)}:mold_color={_hex(rng)},scale={w}:{h}:flags=neighbor"
    )


def _cellauto(w: int, h: int, fps: int, length: float, rng: np.random.Generator) -> str:
    rule = int(rng.choice([18, 30, 45, 57, 73, 86, 110, 150]))
    cell = int(rng.choice([3, 4]))
    r, g, b = (rng.uniform(0.2, 1.0, size=3)).round(2)
    return (
        f"cellauto=s={w // cell}x{h // cell}:r={fps}:rule={rule}:ratio={rng.uniform(0.3, 0.7):.3f}"
        f":seed={int(rng.integers(1, 2**31 - 1))}:scroll=1,scale={w}:{h}:flags=neighbor,"
        f"format=rgb24,colorchannelmixer=rr={r}:gg={g}:bb={b}:rb={1 - r:.2f}:gr={1 - g:.2f}"
    )


def _testsrc2(w: int, h: int, fps: int, length: float, rng: np.random.Generator) -> str:
    bw, bh = w // 6, h // 4
    return (
        f"testsrc2=s={w}x{h}:r={fps},drawbox=x='mod(t*{rng.uniform(30, 90):.1f},{w})':"
        f"y='{h // 2}+{h // 4}*sin(t*{rng.uniform(0.5, 2):.2f})':w={bw}:h={bh}:c={_hex(rng)}:t=fill"
    )


def _shapes(w: int, h: int, fps: int, length: float, rng: np.random.Generator) -> str:
    # ffmpeg's "gradients" source varies from run to run even with a seed, so the smooth
    # background is a large-scale Perlin field in a colour map instead.
    preset = str(rng.choice(["turbo", "magma", "viridis", "spectral", "cool", "heat"]))
    parts = [
        f"perlin=s={max(8, w // 8)}x{max(8, h // 8)}:r={fps}:octaves=1:xscale={rng.uniform(0.05, 0.15):.3f}"
        f":yscale={rng.uniform(0.05, 0.15):.3f}:tscale={rng.uniform(0.05, 0.2):.3f}:random_mode=seed"
        f":random_seed={int(rng.integers(1, 2**31 - 1))},scale={w}:{h}:flags=bicubic,"
        f"normalize=smoothing=0:independence=0,format=yuv444p,pseudocolor=p={preset},format=yuv420p"
    ]
    for _ in range(int(rng.integers(3, 6))):
        bw, bh = int(rng.integers(w // 12, w // 4)), int(rng.integers(h // 10, h // 3))
        vx, vy = rng.uniform(20, 120, size=2).round(1)
        px, py = rng.uniform(0, 100, size=2).round(1)
        parts.append(
            f"drawbox=x='abs(mod(t*{vx}+{px},2*{w - bw})-{w - bw})':y='abs(mod(t*{vy}+{py},2*{h - bh})-{h - bh})'"
            f":w={bw}:h={bh}:c={_hex(rng)}@0.9:t=fill"
        )
    return ",".join(parts)


def _perlin(w: int, h: int, fps: int, length: float, rng: np.random.Generator) -> str:
    preset = str(rng.choice(["turbo", "magma", "viridis", "cividis", "heat", "spectral"]))
    s = rng.uniform(0.8, 3.0)
    return (
        f"perlin=s={w // 2}x{h // 2}:r={fps}:octaves=4:persistence=0.5:xscale={s:.3f}:yscale={s:.3f}"
        f":tscale={rng.uniform(0.5, 1.5):.2f}:random_mode=seed:random_seed={int(rng.integers(1, 2**31 - 1))},"
        f"scale={w}:{h},normalize=smoothing=0:independence=0,format=yuv444p,pseudocolor=p={preset}"
    )


def _zoompan(w: int, h: int, fps: int, length: float, rng: np.random.Generator) -> str:
    base = str(rng.choice(["smptehdbars", "testsrc", "rgbtestsrc", "pal100bars"]))
    a, b = rng.uniform(20, 60, size=2).round(1)
    return (
        f"{base}=s={2 * w}x{2 * h}:r={fps},zoompan=z='1.3+0.3*sin(in/{a})':x='iw/2-(iw/zoom/2)+iw/6*sin(in/{b})'"
        f":y='ih/2-(ih/zoom/2)+ih/8*cos(in/{a})':d=1:s={w}x{h}:fps={fps}"
    )


KINDS: dict[str, Callable[[int, int, int, float, np.random.Generator], str]] = {
    "mandelbrot": _mandelbrot,
    "life": _life,
    "cellauto": _cellauto,
    "testsrc2": _testsrc2,
    "shapes": _shapes,
    "perlin": _perlin,
    "zoompan": _zoompan,
}


def picture_graph(
    kind: str, w: int, h: int, fps: int, length: float, rng: np.random.Generator, slot: int = 0
) -> str:
    """The lavfi graph for ``kind``, with a slow seeded hue drift, ending in yuv420p at ``w``x``h``.
    ``slot`` numbers the renderings of a filler kind (:data:`FILLER_KINDS`) so each differs."""
    drift = rng.uniform(6, 18) * rng.choice([-1, 1])
    offset = rng.uniform(0, 360)
    picture = KINDS[kind](w, h, fps, length, rng) if kind in KINDS else FILLER_KINDS[kind](w, h, fps, length, rng, slot)
    return f"{picture},hue=h={offset:.1f}+t*{drift:.2f},setsar=1,format=yuv420p"


# Kinds used only for fillers (hosts, backgrounds), outside ``KINDS`` so the seeded order of
# sources and distractors stays as it was.
FILLER_KINDS: dict[str, Callable[..., str]] = {
    "mandelbrot_roam": _mandelbrot_roam,
}

# Kinds whose look changes a lot with the seed; the others (test patterns) look alike across
# seeds, so they are only used for sources and distractors, where the seeded order keeps them apart.
# Fillers must also differ from each other: "mandelbrot" zooms into one of six fixed points, so
# they take "mandelbrot_roam" (which sorts in its place, leaving the other fillers' order as it was).
VARIED_KINDS = ("cellauto", "life", "mandelbrot_roam", "perlin", "shapes")


def kind_order(rng: np.random.Generator, n: int, kinds: tuple[str, ...] | None = None) -> list[str]:
    """``n`` kinds: seeded shuffles of ``kinds`` (all by default), concatenated, so the first differ."""
    out: list[str] = []
    names = sorted(kinds or KINDS)
    while len(out) < n:
        block = [str(k) for k in rng.permutation(names)]
        if out and len(block) > 1 and block[0] == out[-1]:
            block = block[1:] + block[:1]  # no kind twice in a row across two shuffles
        out.extend(block)
    return out[:n]
