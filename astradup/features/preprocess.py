"""Frame preparation shared by the visual extractors."""

from __future__ import annotations

import numpy as np


def border_box(frames: np.ndarray, threshold: int = 24, min_fraction: float = 0.02) -> tuple[int, int, int, int]:
    """The (top, bottom, left, right) box of the picture inside letterbox/pillarbox bars.

    Decided once per video (over all sampled frames), so a dark scene is not mistaken for a bar.
    A side is trimmed only when its bar is at least ``min_fraction`` of the frame.
    """
    if frames.size == 0:
        return 0, frames.shape[1], 0, frames.shape[2]
    # brightest channel per pixel, (N, H, W): what frames.max(axis=3) gives, 20x faster
    luma = np.maximum(np.maximum(frames[..., 0], frames[..., 1]), frames[..., 2])
    rows = luma.max(axis=(0, 2)) > threshold
    cols = luma.max(axis=(0, 1)) > threshold
    h, w = frames.shape[1], frames.shape[2]
    if not rows.any() or not cols.any():
        return 0, h, 0, w
    top, bottom = int(np.argmax(rows)), int(h - np.argmax(rows[::-1]))
    left, right = int(np.argmax(cols)), int(w - np.argmax(cols[::-1]))
    if top < min_fraction * h:
        top = 0
    if h - bottom < min_fraction * h:
        bottom = h
    if left < min_fraction * w:
        left = 0
    if w - right < min_fraction * w:
        right = w
    if bottom - top < h // 4 or right - left < w // 4:
        return 0, h, 0, w
    return top, bottom, left, right


def trim_borders(frames: np.ndarray, threshold: int = 24) -> np.ndarray:
    """Cut letterbox/pillarbox bars and scale the picture back to the frames' size."""
    box = border_box(frames, threshold)
    if box == (0, frames.shape[1], 0, frames.shape[2]):
        return frames
    return _crop_resize(frames, box)


# Picture-in-picture: a video shown as an inset inside other pictures. Its four sides are straight
# edges that stay put while the pictures on both sides change, and the pictures around it move
# (v6: or stand still while the inset moves as a video does; a window on a still desktop that
# changes now and then does not count). Measured on 40 picture-in-picture copies and 300
# other videos of the real-clip set (160 px frames, 1 fps, detector v3): 29 insets found, 1 false
# inset; at the shipped sampling (sampling.min_frames) 28 of the 40 are found. Detector v4 adds a
# third look (_activity_box) for busy surroundings: on the set as regenerated on 2026-11-30, at the
# shipped sampling, 32 of the 40 found (v3: 27) and 11 of the 1,222 other videos given an inset (v3: 9).
# Detector v5 also asks the surroundings to move between sampled frames most of the time
# (INSET_STEP_MOTION): a trailer that cuts between title cards and a still desktop recording
# changes around its window only at the cuts, yet differed from its median enough to pass the
# motion test, and the window was cut out as an inset, so nothing of its source matched it. On the
# real-clip and held-out sets (2026-11-30, eighth session, shipped sampling) the lower quartile of
# the surroundings' step between sampled frames was 4.8-108 grey levels for the 60 of 77
# picture-in-picture copies found (v4 and v5 find the same 60) and 0.00-0.02 for the four trailers
# of screen recordings v4 gave an inset (v5: none; other videos with an inset: 3, v4: 7).
# Detector v6 adds a fourth look (_lively_box, 2026-12-01): a video over surroundings that stand
# still or change less, which the rule above refuses (a still camera's view, a static background).
# On the real-clip, held-out and blind sets at the shipped sampling it finds 4 more of the 89
# picture-in-picture copies (70 -> 74, each box within 2 px of where the copy was put) and gives
# none of the 2,801 other videos an inset; without its edge rule a still camera's pedestrians
# (opencv's vtest.avi) and one re-encode were taken for insets, without its step rule noise over
# two screen recordings.
INSET_VERSION = 6  # in the feature key: a store made by another version of the detector re-indexes
INSET_EDGE = 10.0  # mean grey-level step across a side (over the sampled frames)
INSET_CONTRAST = 1.5  # ... and that many times the step 3 px to either side of it
INSET_SIDES = (0.25, 0.8)  # an inset's side, as a fraction of the frame's
INSET_COVER = 0.85  # fraction of each side that must be an edge
INSET_MOTION = 15.0  # mean grey-level distance of the outside from its median over the frames (rate-free)
INSET_STEP_MOTION = 2.0  # ... and the lower quartile of its mean change from one sampled frame to the next
_INSET_LINES = 64  # longest candidate lines kept per direction
INSET_FRAMES = 0.6  # second look: share of the frames a side must be an edge in
INSET_ACTIVITY_STEP = 8.0  # third look: step of the temporal-std map across a side (grey levels) ...
INSET_ACTIVITY_SPAN = 3  # ... between the means of this many lines on either side
INSET_LIVELY = 1.5  # fourth look: a side's inner lines change this many times more than its outer ...
INSET_LIVELY_FLOOR = 1.0  # ... plus this many grey levels (temporal std, means of ACTIVITY_SPAN lines)
INSET_SNAP = 3  # ... each side then moves to the sharpest picture edge within this many pixels,
INSET_SIDE_EDGE = 8.0  # ... where the grey step across it (within a pixel) is this large
INSET_SIDE_SHARE = 0.5  # ... at this share of its pixels over the frames, on every side


def _dilate(m: np.ndarray) -> np.ndarray:
    """A blurred edge falls on either of two neighbouring lines: OR each line with its neighbours."""
    o = m.copy()
    o[1:] |= m[:-1]
    o[:-1] |= m[1:]
    return o


def _dilate_lines(m: np.ndarray) -> np.ndarray:
    """:func:`_dilate` of each frame of a stack (N, lines, length)."""
    o = m.copy()
    o[:, 1:] |= m[:, :-1]
    o[:, :-1] |= m[:, 1:]
    return o


def _longest_runs(mask: np.ndarray, gap: int = 3) -> np.ndarray:
    """Per line (row of ``mask``): length of its longest run of True, gaps up to ``gap`` bridged
    (from the run's first True to its last). All lines at once: a False is bridged when the Trues
    either side of it are at most ``gap + 1`` apart; then the longest run of the bridged line."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or m.shape[1] == 0:
        return np.zeros(m.shape[0] if m.ndim else 0, dtype=np.int64)
    n = m.shape[1]
    pos = np.arange(n, dtype=np.int64)
    prev = np.maximum.accumulate(np.where(m, pos, -n - gap - 2), axis=1)  # last True at or before
    nxt = np.minimum.accumulate(np.where(m, pos, 2 * n + gap + 2)[:, ::-1], axis=1)[:, ::-1]  # first at or after
    b = m | (nxt - prev <= gap + 1)
    c = np.cumsum(b, axis=1, dtype=np.int64)
    base = np.maximum.accumulate(np.where(b, 0, c), axis=1)  # count at the last False
    return (c - base).max(axis=1).astype(np.int64)


def _edges(step: np.ndarray, axis: int) -> np.ndarray:
    """Where the mean step across a line is strong and stands out from the steps 3 px either side.
    ``axis`` counts from the end, so a stack of steps (N, H, W) is done frame by frame at once."""
    axis = axis - 2 if axis >= 0 else axis  # 0 -> -2 (rows), 1 -> -1 (columns)
    n = step.shape[axis]
    pad = np.pad(step, [(3, 3) if a == step.ndim + axis else (0, 0) for a in range(step.ndim)], mode="edge")
    near = np.maximum(np.take(pad, np.arange(n), axis=axis), np.take(pad, np.arange(6, 6 + n), axis=axis))
    return (step > INSET_EDGE) & (step > INSET_CONTRAST * np.maximum(near, 1.0))


def inset_box(frames: np.ndarray) -> tuple[int, int, int, int] | None:
    """The (top, bottom, left, right) box of a picture-in-picture inset, or None.

    Decided once per video over all sampled frames (N, H, W, 3): the box whose four sides are the
    best-covered persistent edges (ties: the larger box), each side a fraction ``INSET_SIDES`` of
    the frame, and the pictures outside it moving by at least ``INSET_MOTION`` grey levels (and by
    ``INSET_STEP_MOTION`` from one sampled frame to the next in three steps of four). Edges
    are first looked for in the mean step over the frames; where busy surroundings drown that,
    in each frame on its own (an edge in at least ``INSET_FRAMES`` of them), then in the map of
    how much each pixel changes over the frames (:func:`_activity_box`). Last, a moving picture
    over surroundings that stand still or change less (:func:`_lively_box`).
    """
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim != 4 or len(f) < 2:
        return None
    g = grey(f)
    return _edge_box(g) or _activity_box(g) or _lively_box(g)


def grey(frames: np.ndarray) -> np.ndarray:
    """Luma (BT.601 weights) of RGB frames (..., 3), float32."""
    f = np.asarray(frames, dtype=np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def _edge_box(g: np.ndarray) -> tuple[int, int, int, int] | None:
    """The first two looks of :func:`inset_box` over grey frames ``g`` (N, H, W): persistent
    edges in the mean step over the frames, then in each frame on its own."""
    sx, sy = np.abs(np.diff(g, axis=2)), np.abs(np.diff(g, axis=1))
    box = _box_from_edges(_dilate(_edges(sx.mean(axis=0), 1).T), _dilate(_edges(sy.mean(axis=0), 0)), g)
    if box is None:
        # every frame's edges at once; the shares are counts over len(f), exact in any order
        per_x = np.ascontiguousarray(_dilate_lines(_edges(sx, 1).transpose(0, 2, 1))).mean(axis=0) >= INSET_FRAMES
        per_y = np.ascontiguousarray(_dilate_lines(_edges(sy, 0))).mean(axis=0) >= INSET_FRAMES
        box = _box_from_edges(per_x, per_y, g)
    return box


def _side_means(m: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """At each boundary between two lines of ``m`` (H, W) along ``axis``, the means of the
    ``INSET_ACTIVITY_SPAN`` lines before it and after it (fewer at the frame's edge). Shape
    (H, W - 1) for ``axis=1`` (a boundary right of column x), (H - 1, W) for ``axis=0``."""
    r, n = INSET_ACTIVITY_SPAN, m.shape[axis]
    c = np.cumsum(np.pad(m.astype(np.float64), [(1, 0) if a == axis else (0, 0) for a in range(2)]), axis=axis)
    at = np.arange(1, n)
    lo, hi = np.clip(at - r, 0, n), np.clip(at + r, 0, n)
    shape = [-1 if a == axis else 1 for a in range(2)]

    def mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (np.take(c, b, axis=axis) - np.take(c, a, axis=axis)) / np.maximum(b - a, 1).reshape(shape)

    return mean(lo, at), mean(at, hi)


def _activity_steps(m: np.ndarray, axis: int) -> np.ndarray:
    """Edges of a map ``m`` (H, W) across lines along ``axis``: at each boundary between two
    lines, the difference of the means of ``INSET_ACTIVITY_SPAN`` lines either side
    (:func:`_side_means`), where it exceeds ``INSET_ACTIVITY_STEP`` and is the largest within two
    lines (a step, not a texture). Shapes as :func:`_side_means`."""
    n = m.shape[axis]
    before, after = _side_means(m, axis)
    step = np.abs(after - before)
    pad = np.pad(step, [(2, 2) if a == axis else (0, 0) for a in range(2)])
    rivals = np.max([np.take(pad, np.arange(k, k + n - 1), axis=axis) for k in (0, 1, 3, 4)], axis=0)
    return (step > INSET_ACTIVITY_STEP) & (step >= rivals)


def _activity_box(g: np.ndarray) -> tuple[int, int, int, int] | None:
    """Third look of :func:`inset_box`: where busy surroundings (cellular automata, a fractal
    zoom) are edges everywhere, the inset still differs from them in how much each pixel changes
    over time. The box is looked for in the edges of the per-pixel temporal standard deviation."""
    if len(g) < 3:
        return None
    sd = g.std(axis=0)
    return _box_from_edges(_dilate(_activity_steps(sd, 1).T), _dilate(_activity_steps(sd, 0)), g)


def _lively_box(g: np.ndarray) -> tuple[int, int, int, int] | None:
    """Fourth look of :func:`inset_box`: a video shown over surroundings that stand still or
    change less (a frame of artwork, a still background, a video window in a screen recording),
    which the other looks refuse because the pictures around the box do not move. Each side is
    where the temporal standard deviation just inside is ``INSET_LIVELY`` times that just outside;
    the box must then move as the other looks ask of surroundings (:func:`_moves`), by
    ``INSET_STEP_MOTION`` more than its surroundings in three steps of four (noise over a
    screen recording moves both), and be a picture's edge on every side (people walking through
    one stretch of a still camera's view are not an inset)."""
    if len(g) < 3:
        return None
    sd = g.std(axis=0)
    box = _best_box(_dilate(_lively_steps(sd, 1).T), _dilate(_lively_steps(sd, 0)), g.shape[1], g.shape[2])
    if box is None:
        return None
    box = _snap(g, box)
    if box is None:
        return None
    inside = _inside(g.shape, box)
    if sd[inside].mean() < INSET_LIVELY * sd[~inside].mean() or not _moves(g, inside):
        return None
    steps = np.abs(np.diff(g, axis=0))
    if np.percentile(steps[:, inside].mean(axis=1) - steps[:, ~inside].mean(axis=1), 25) < INSET_STEP_MOTION:
        return None
    return box


def _lively_steps(m: np.ndarray, axis: int) -> np.ndarray:
    """Where the means of ``INSET_ACTIVITY_SPAN`` lines of ``m`` (H, W) on one side of a boundary
    exceed ``INSET_LIVELY`` times those on the other plus ``INSET_LIVELY_FLOOR`` (either way round);
    shapes as :func:`_side_means`."""
    before, after = _side_means(m, axis)
    return (after > INSET_LIVELY * before + INSET_LIVELY_FLOOR) | (before > INSET_LIVELY * after + INSET_LIVELY_FLOOR)


def _snap(g: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """``box`` with each side moved (by up to ``INSET_SNAP`` pixels) to the line across which the
    grey frames ``g`` step by ``INSET_SIDE_EDGE`` at the largest share of the side's pixels and
    frames; None where, at that line, under ``INSET_SIDE_SHARE`` of them step so much (a pixel's
    step there: the largest within one pixel of the line, as a blurred edge spreads)."""
    top, bottom, left, right = box
    n, h, w = g.shape
    sx, sy = np.abs(np.diff(g, axis=2)), np.abs(np.diff(g, axis=1))  # step right of x / below y

    def side(steps: np.ndarray, at: int, span: slice) -> int | None:
        # steps: (N, lines, length) with lines the boundaries; the side lies at boundary at - 1
        k = np.arange(max(at - 1 - INSET_SNAP, 1), min(at - 1 + INSET_SNAP, steps.shape[1] - 2) + 1)
        if not len(k):
            return None
        exact = (steps[:, k, span] >= INSET_SIDE_EDGE).mean(axis=(0, 2))
        j = int(np.argmax(exact - 1e-6 * np.abs(k - (at - 1))))  # ties: the nearest line
        near = np.maximum(np.maximum(steps[:, k[j] - 1, span], steps[:, k[j], span]), steps[:, k[j] + 1, span])
        return int(k[j]) + 1 if (near >= INSET_SIDE_EDGE).mean() >= INSET_SIDE_SHARE else None

    rows, cols = slice(top, bottom), slice(left, right)
    by_x = sx.transpose(0, 2, 1)  # (N, w - 1, h)
    sides = (side(sy, top, cols), side(sy, bottom, cols), side(by_x, left, rows), side(by_x, right, rows))
    return None if any(s is None for s in sides) else sides  # type: ignore[return-value]


def _box_from_edges(sv: np.ndarray, sh: np.ndarray, g: np.ndarray) -> tuple[int, int, int, int] | None:
    """The inset box from edge masks ``sv`` (w-1, h: an edge right of column x at row y) and ``sh``
    (h-1, w: below row y at column x) of grey frames ``g`` (N, H, W), where the pictures around it
    move; see :func:`inset_box`."""
    box = _best_box(sv, sh, g.shape[1], g.shape[2])
    return box if box is not None and _surroundings_move(g, box) else None


def _best_box(sv: np.ndarray, sh: np.ndarray, h: int, w: int) -> tuple[int, int, int, int] | None:
    """The best-covered box of :func:`_box_from_edges` (frame size ``h`` x ``w``), or None."""
    lo, hi = INSET_SIDES

    def lines(mask: np.ndarray, side: int) -> list[int]:
        runs = _longest_runs(mask)
        ok = np.flatnonzero(runs >= lo * side * INSET_COVER)
        return sorted(ok[np.argsort(-runs[ok], kind="stable")[:_INSET_LINES]].tolist())

    cols, rows = lines(sv, h), lines(sh, w)
    cv = np.concatenate([np.zeros((sv.shape[0], 1), np.int64), np.cumsum(sv, axis=1)], axis=1)
    ch = np.concatenate([np.zeros((sh.shape[0], 1), np.int64), np.cumsum(sh, axis=1)], axis=1)
    best: tuple[tuple[float, int], tuple[int, int, int, int]] | None = None
    r = np.asarray(rows, dtype=np.int64)
    dy = (r[None, :] - r[:, None]).astype(np.float64)  # (y0, y1) -> y1 - y0
    ok_y = (dy >= lo * h) & (dy <= hi * h)
    if not ok_y.any():
        return None
    span = np.where(ok_y, dy, 1.0)
    for i, x0 in enumerate(cols):
        for x1 in (x for x in cols[i + 1 :] if lo * w <= x - x0 <= hi * w):
            side_l = (cv[x0, r + 1][None, :] - cv[x0, r + 1][:, None]) / span  # every (y0, y1) at once
            side_r = (cv[x1, r + 1][None, :] - cv[x1, r + 1][:, None]) / span
            flat = (ch[r, x1 + 1] - ch[r, x0 + 1]) / (x1 - x0)  # top/bottom side at each row
            cover = np.minimum(np.minimum(side_l, side_r), np.minimum(flat[:, None], flat[None, :]))
            cover = np.where(ok_y, np.round(cover, 2), -1.0)
            area = np.where(cover == cover.max(), dy * (x1 - x0), -1.0)
            j0, j1 = np.unravel_index(int(np.argmax(area)), area.shape)
            key = (float(cover[j0, j1]), int(area[j0, j1]))
            if key[0] >= INSET_COVER and (best is None or key > best[0]):
                best = (key, (int(r[j0]) + 1, int(r[j1]) + 1, x0 + 1, x1 + 1))
    return None if best is None else best[1]


def _inside(shape: tuple[int, ...], box: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = box
    m = np.zeros(shape[-2:], dtype=bool)
    m[top:bottom, left:right] = True
    return m


def _moves(g: np.ndarray, where: np.ndarray) -> bool:
    """Whether the pictures at ``where`` (H, W) differ from their median over the frames by
    ``INSET_MOTION`` and change from one sampled frame to the next by ``INSET_STEP_MOTION`` in
    three steps of four (a window that changes only at cuts does not move)."""
    if np.abs(g - np.median(g, axis=0)).mean(axis=0)[where].mean() < INSET_MOTION:
        return False
    steps = np.abs(np.diff(g, axis=0))[:, where].mean(axis=1)  # per pair of consecutive frames
    return bool(np.percentile(steps, 25) >= INSET_STEP_MOTION)


def _surroundings_move(g: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    return _moves(g, ~_inside(g.shape, box))


def _crop_resize(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    from PIL import Image

    top, bottom, left, right = box
    h, w = frames.shape[1], frames.shape[2]
    out = np.empty_like(frames)
    for i, f in enumerate(frames[:, top:bottom, left:right]):
        out[i] = np.asarray(Image.fromarray(np.ascontiguousarray(f)).resize((w, h), Image.Resampling.BILINEAR))
    return out


def _content(frames: np.ndarray, inset: bool) -> tuple[tuple[int, int, int, int], np.ndarray, tuple[int, int, int, int] | None]:
    """The steps :func:`content_frames` and :func:`content_box` share: the picture's box inside
    letterbox/pillarbox bars, the frames cut to it and scaled back, and (with ``inset``) the
    picture-in-picture inset's box within those, or None."""
    h, w = frames.shape[1], frames.shape[2]
    border = border_box(frames)
    inner = frames if border == (0, h, 0, w) else _crop_resize(frames, border)
    return border, inner, (inset_box(inner) if inset else None)


def content_frames(frames: np.ndarray, inset: bool = True) -> np.ndarray:
    """The picture the features describe: letterbox/pillarbox bars cut (:func:`trim_borders`),
    then, with ``inset``, a picture-in-picture inset (:func:`inset_box`) cut out and scaled back
    to the frames' size, so the copy inside another video's frame matches its source."""
    return content_frames_and_box(frames, inset)[0]


def content_box(frames: np.ndarray, inset: bool = True) -> tuple[float, float, float, float]:
    """The region :func:`content_frames` describes, as fractions (top, bottom, left, right) of
    the frame: inside letterbox/pillarbox bars and, with ``inset``, the picture-in-picture inset
    within that. ``frames``: (N, H, W, 3) as sampled (or grey stacked three times)."""
    return content_frames_and_box(frames, inset)[1]


#: The content box of a picture with nothing cut away (top, bottom, left, right as fractions).
WHOLE_FRAME = (0.0, 1.0, 0.0, 1.0)


def cuts_frame(box: tuple[float, float, float, float] | None) -> bool:
    """Whether a content box (None: none stored) cuts part of the frame away."""
    return box is not None and tuple(float(x) for x in box) != WHOLE_FRAME


def content_frames_and_box(frames: np.ndarray, inset: bool = True) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """:func:`content_frames` and :func:`content_box` of the same frames, each step done once
    (indexing stores the box, so the geometric check cuts decoded frames as the features were)."""
    h, w = frames.shape[1], frames.shape[2]
    (top, bottom, left, right), inner, ib = _content(frames, inset)
    t, b, l_, r = top / h, bottom / h, left / w, right / w
    if ib is None:
        return inner, (t, b, l_, r)
    box = t + (b - t) * ib[0] / h, t + (b - t) * ib[1] / h, l_ + (r - l_) * ib[2] / w, l_ + (r - l_) * ib[3] / w
    return _crop_resize(inner, ib), box
