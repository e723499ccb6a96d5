"""Temporal alignment of two videos' frame-similarity matrix.

Local alignment by dynamic programming along diagonals (in the spirit of the VCSL baselines'
DP alignment): a path may step (1, 1), or skip one frame on either side at a small cost, which
tolerates offsets, trims and speed changes of about +-10 % at 1 fps. The best-scoring path gives
the aligned segments in both videos.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Alignment:
    """Result of :func:`align`. Indices are frame rows/columns of the similarity matrix.

    Attributes:
        path: (K, 2) int array of aligned (i, j) frame pairs, increasing in both.
        path_sim: mean similarity along the path.
        background: median similarity of the whole matrix (how alike unrelated moments are).
        a_start, a_end, b_start, b_end: aligned time ranges (seconds).
    """

    path: np.ndarray
    path_sim: float
    background: float
    a_start: float
    a_end: float
    b_start: float
    b_end: float
    top_frames: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.path)


def align(
    sim: np.ndarray,
    ts_a: np.ndarray,
    ts_b: np.ndarray,
    threshold: float = 0.7,
    gap: float = 0.15,
    half_step_a: float = 0.5,
    half_step_b: float = 0.5,
    duration_a: float | None = None,
    duration_b: float | None = None,
    n_top: int = 5,
) -> Alignment | None:
    """Best local alignment path through ``sim`` (Na, Nb); ``None`` if no cell beats ``threshold``.

    Args:
        sim: frame similarity matrix, higher is more alike (e.g. cosine).
        ts_a, ts_b: frame timestamps (seconds).
        threshold: similarity a cell must exceed to extend a path.
        gap: extra cost of skipping a frame on one side.
        half_step_a, half_step_b: half the sampling interval (seconds): a frame stands for
            that much time on each side when segments are reported.
    """
    na, nb = sim.shape
    if na == 0 or nb == 0:
        return None
    m = sim.astype(np.float64) - threshold
    if m.max() <= 0:
        return None
    d = np.zeros((na + 2, nb + 2))
    ptr = np.zeros((na + 2, nb + 2), dtype=np.int8)  # 0 start, 1 diag, 2 skip b, 3 skip a
    for i in range(na):
        r = i + 2
        cands = np.stack([
            np.zeros(nb),
            d[r - 1, 1 : nb + 1],
            d[r - 1, 0:nb] - gap,
            d[r - 2, 1 : nb + 1] - gap,
        ])
        best = cands.argmax(axis=0)
        d[r, 2:] = m[i] + cands[best, np.arange(nb)]
        ptr[r, 2:] = best
    r, c = (int(x) for x in np.unravel_index(int(np.argmax(d)), d.shape))
    if d[r, c] <= 0:
        return None
    path = []
    while r >= 2 and c >= 2:
        path.append((r - 2, c - 2))
        p = ptr[r, c]
        if p == 0:
            break
        if p == 1:
            r, c = r - 1, c - 1
        elif p == 2:
            r, c = r - 1, c - 2
        else:
            r, c = r - 2, c - 1
    arr = np.asarray(path[::-1], dtype=np.int64)
    # trim weak ends (cells below threshold that the DP carried through)
    vals = sim[arr[:, 0], arr[:, 1]]
    good = np.nonzero(vals > threshold)[0]
    arr = arr[good[0] : good[-1] + 1]
    return _from_path(sim, arr, ts_a, ts_b, half_step_a, half_step_b, duration_a, duration_b, n_top)


def _from_path(
    sim: np.ndarray,
    arr: np.ndarray,
    ts_a: np.ndarray,
    ts_b: np.ndarray,
    half_a: float,
    half_b: float,
    duration_a: float | None,
    duration_b: float | None,
    n_top: int,
) -> Alignment:
    """The :class:`Alignment` of path ``arr`` (K, 2): segments widened by the half steps, clipped
    to the durations, and the ``n_top`` best frame pairs."""
    vals = sim[arr[:, 0], arr[:, 1]]
    da = duration_a if duration_a else float(ts_a[-1] + half_a)
    db = duration_b if duration_b else float(ts_b[-1] + half_b)
    # best first, ties (to 1e-6: a matrix product's last bits differ with the thread count, so the
    # driver and a Dask worker must not order them apart) in path order
    order = np.lexsort((np.arange(len(vals)), -np.round(vals, 6)))[:n_top]
    top = [(float(ts_a[arr[k, 0]]), float(ts_b[arr[k, 1]]), float(vals[k])) for k in order]
    return Alignment(
        path=arr,
        path_sim=float(vals.mean()),
        background=float(np.median(sim)),
        a_start=float(max(0.0, ts_a[arr[0, 0]] - half_a)),
        a_end=float(min(da, ts_a[arr[-1, 0]] + half_a)),
        b_start=float(max(0.0, ts_b[arr[0, 1]] - half_b)),
        b_end=float(min(db, ts_b[arr[-1, 1]] + half_b)),
        top_frames=top,
    )


def align_offset(
    sim: np.ndarray,
    ts_a: np.ndarray,
    ts_b: np.ndarray,
    threshold: float = 0.7,
    half_step_a: float = 0.5,
    half_step_b: float = 0.5,
    duration_a: float | None = None,
    duration_b: float | None = None,
    n_top: int = 5,
    max_offsets: int = 256,
) -> Alignment | None:
    """Alignment when one side is sampled sparsely (e.g. a query decoded at keyframes only).

    The DP of :func:`align` steps frame by frame, which needs both sides sampled at about the same
    rate. Here the time offset ``ts_b - ts_a`` that the matching frame pairs (similarity above
    ``threshold``) agree on is found by voting, each weighted by how far it stands above the
    threshold and its row's median, and every frame of ``a`` takes its best partner within one dense step of that offset. A
    constant offset is assumed (trims, clips, re-encodes; not speed changes). Both sides' segments
    extend by the coarser half step, the time one sparse frame stands for.
    """
    na, nb = sim.shape
    if na == 0 or nb == 0:
        return None
    s64 = sim.astype(np.float64)
    if s64.max() <= threshold:
        return None
    # a pair votes by how far it stands out from its row (slowly changing pictures make many
    # pairs pass the threshold; the true partner is the one above the rest)
    gain = s64 - np.maximum(threshold, np.median(s64, axis=1, keepdims=True))
    if gain.max() <= 0:
        gain = s64 - threshold
    off = np.asarray(ts_b, np.float64)[None, :] - np.asarray(ts_a, np.float64)[:, None]
    tol = 2 * min(half_step_a, half_step_b) + 1e-6
    cells = np.flatnonzero(gain.ravel() > 0)
    cells = cells[np.argsort(-gain.ravel()[cells], kind="stable")[:max_offsets]]
    cand = off.ravel()[cells]
    pos = np.where(gain > 0, gain, 0.0)
    # support of each candidate offset: per row of a, the best gain within tol of it
    within = np.abs(off[None, :, :] - cand[:, None, None]) <= tol
    support = np.where(within, pos[None], 0.0).max(axis=2).sum(axis=1)
    best = float(cand[int(np.argmax(support))])
    near = np.abs(off - best) <= tol
    masked = np.where(near & (gain > 0), sim, -np.inf)
    cols = masked.argmax(axis=1)
    rows = np.flatnonzero(np.isfinite(masked[np.arange(na), cols]))
    arr = np.column_stack([rows, cols[rows]]).astype(np.int64)
    half = max(half_step_a, half_step_b)
    da = duration_a if duration_a else float(ts_a[-1] + half_step_a)
    db = duration_b if duration_b else float(ts_b[-1] + half_step_b)
    return _from_path(sim, arr, ts_a, ts_b, half, half, da, db, n_top)


SPARSE_RATIO = 2.0  # one side sampled at least this many times more sparsely than the other...
SPARSE_STEP = 2.0  # ...and at least this many seconds per frame: align by offset voting


def align_any(
    sim: np.ndarray,
    ts_a: np.ndarray,
    ts_b: np.ndarray,
    threshold: float,
    gap: float,
    half_step_a: float,
    half_step_b: float,
    duration_a: float | None = None,
    duration_b: float | None = None,
) -> Alignment | None:
    """:func:`align` for videos sampled alike; :func:`align_offset` when one side is sparse."""
    lo, hi = sorted((half_step_a, half_step_b))
    if 2 * hi >= SPARSE_STEP and hi >= SPARSE_RATIO * lo:
        if half_step_a >= half_step_b:
            return align_offset(sim, ts_a, ts_b, threshold, half_step_a, half_step_b, duration_a, duration_b)
        flipped = align_offset(sim.T, ts_b, ts_a, threshold, half_step_b, half_step_a, duration_b, duration_a)
        if flipped is None:
            return None
        return Alignment(
            path=flipped.path[:, ::-1].copy(),
            path_sim=flipped.path_sim,
            background=flipped.background,
            a_start=flipped.b_start,
            a_end=flipped.b_end,
            b_start=flipped.a_start,
            b_end=flipped.a_end,
            top_frames=[(tb, ta, v) for ta, tb, v in flipped.top_frames],
        )
    return align(sim, ts_a, ts_b, threshold, gap, half_step_a, half_step_b, duration_a, duration_b)
