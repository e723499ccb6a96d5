"""Exact-moment check: are the aligned frames the same pictures once their moments line up?

Indexing samples each video on its own grid (one frame a second, faster for short videos), so
the two frames an aligned path pairs can be up to half a sample step apart in the story. Where
the picture moves fast (an animated intro, a zoom, a camera move), that is enough for their
perceptual hashes to disagree although one file is a cut of the other, and the stored features
then see a copy of fast footage as they see another stretch of the same scene.

This module looks again at a few cells of the path (the geometric check's probe cells): it
decodes frame *a* at its sampled time and every frame of *b* within half a sample step (plus
a frame) of its sampled time, cuts both to the content box indexing stored, and takes the smallest Hamming
distance between the 256-bit pHash of *a* and those of *b* (as they are, or mirrored). A copy
finds its own frame among them (a few bits: re-encoding noise); another moment of the same
scene, or a re-edit, does not.

Only pairs the learned scorer leaves between even odds (:data:`EXACT_MIN_P`) and its operating
point are checked (:func:`needs_exact`), so the check costs a few decodes per uncertain pair and
nothing for the rest; a pair is *confirmed* when the median probe finds its frame within
:data:`EXACT_BITS` bits, the probes' pictures differ by :data:`EXACT_MOVES` bits or more and the
match pins a moment (``exact_pin`` at least :data:`EXACT_PIN`; :func:`confirmed`), and its probability is then lifted over the operating point, keeping the
order among lifted pairs (:func:`lift`). On the three labelled sets' matches (every pair the
check looked at, train and test halves, 2026-12-01, as shipped): 1,305 of 3,701 copies confirmed
and 0 of 622 non-copies (benchmarks/RESULTS.md, ninth session); the copies it leaves are mostly crops,
insets and overlays, whose frames pHash does not see as the same, and still pictures.

Pairs the model calls copies but a rule holds back because their aligned stretch is short or
their path does not stand out (:data:`astradup.scoring.learned.CLEARED_BY_MOMENT`) are checked too,
and a confirmed moment releases them. On four sets' matches (2026-12-01, tenth session) that
added 91 partial copies on the held-out set and 49 copies on a second draw of the blind set, and
no non-copy on any (benchmarks/RESULTS.md).

Evidence (:data:`EXACT_FEATURES`, NaN when not checked):

- ``exact_bits``: the median over the probes of that smallest distance (bits of 256).
- ``exact_moves``: the smallest distance between the probes' frames of *a* themselves. A still
  picture matches itself at any moment, so an exact match of a picture that does not move says
  nothing about which moment was copied.
- ``exact_pin``: the median over the probes of how much farther the nearest quarter of *b*'s
  window is than the match (:data:`PIN_QUANTILE` quantile of the distances minus the smallest).
  A title card or a still shot matches the frames around it alike, even where the window runs
  past its end: the match pins no moment (two unrelated trailers whose cards carry the same
  caption in another colour look alike to pHash).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from astradup.media.files import FileLocks

log = logging.getLogger(__name__)

#: Evidence this module adds.
EXACT_FEATURES = ("exact_bits", "exact_moves", "exact_pin")
WIDTH = 160  # frames are decoded this wide before the box is cut (pHash reads 64 x 64)
FRAME_STEP = 0.02  # seconds between the times asked of the decoder in b's window (50 a second)
WHOLE_S = 60.0  # a video this short is decoded whole once per process (MomentCache) ...
# ... and this small (frames x width x height: 60 s of 640 x 360 at 25 fps); a larger one is decoded
# at its probes' windows, the same frames. Decoding a 60 s 720p file whole took 5.7 s: the match of
# the 8 x 60 s 720p benchmark took 17.6-25.8 s so, 6.4 s at the windows (RESULTS, tenth session)
WHOLE_PIXELS = 60 * 25 * 640 * 360
EXACT_MIN_P = 0.5  # pairs the model gives at least even odds are checked (and under its operating point)
EXACT_BITS = 31  # median smallest distance (bits of 256) at which the probes found their own frames (PDQ's match bar)
EXACT_MOVES = 16  # the probes' pictures must differ by this much (bits) from each other: not a still
EXACT_PIN = 6  # the nearest quarter of b's window must be this much (bits) farther than the match: a moment, not a still
PIN_QUANTILE = 0.25  # (a card that fills part of the window then pins nothing); 6 bits is over re-encoding noise
WINDOW_PAD_S = 0.04  # added to half a sample step when looking for a's moment in b (a frame at 25 fps)


def window_s(times_a: npt.ArrayLike, times_b: npt.ArrayLike) -> float:
    """How far from a path cell's time in *b* the frame of *a*'s moment can be, for two videos
    sampled at ``times_*``: half the coarser sample step (the path pairs samples, each up to half a
    step from the other's moment), plus a frame."""
    from astradup.scoring.similarity import half_step

    return max(half_step(np.asarray(times_a, np.float64)), half_step(np.asarray(times_b, np.float64))) + WINDOW_PAD_S


def needs_exact(p: np.ndarray, near_p: float | None, held: np.ndarray, aligned: np.ndarray,
                clearable: np.ndarray | None = None) -> np.ndarray:
    """Which pairs the check looks at: the model gives them even odds or more, they have an
    aligned path, and either the model's probability is under its operating point ``near_p`` and
    no rule holds them back, or only rules a confirmed moment answers hold them back
    (``clearable``: :func:`astradup.scoring.learned.clearable_by_moment`)."""
    if near_p is None:
        return np.zeros(len(p), dtype=bool)
    p = np.asarray(p, dtype=np.float64)
    held = np.asarray(held, bool)
    open_ = (p < near_p) & ~held
    if clearable is not None:
        open_ |= np.asarray(clearable, bool)
    return (p >= EXACT_MIN_P) & np.asarray(aligned, bool) & open_


def confirmed(bits: npt.ArrayLike, moves: npt.ArrayLike, pin: npt.ArrayLike) -> np.ndarray:
    """Whether the check found the same moving pictures at one moment (NaN: not checked, not
    confirmed)."""
    b, m, q = (np.asarray(x, dtype=np.float64) for x in (bits, moves, pin))
    return ((np.nan_to_num(b, nan=np.inf) <= EXACT_BITS) & (np.nan_to_num(m, nan=-np.inf) >= EXACT_MOVES)
            & (np.nan_to_num(q, nan=-np.inf) >= EXACT_PIN))


def read_evidence(evidence: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``exact_bits``, ``exact_moves`` and ``exact_pin`` of pairs' evidence dicts (NaN where the
    check did not look), as :func:`confirmed` and :func:`lift` take them."""
    def get(k: str) -> np.ndarray:
        return np.array([np.nan if e.get(k) is None else float(e[k]) for e in evidence], dtype=np.float64)

    return get("exact_bits"), get("exact_moves"), get("exact_pin")


def lift(p: np.ndarray, bits: np.ndarray, moves: np.ndarray, pin: np.ndarray, near_p: float | None) -> np.ndarray:
    """The probabilities with confirmed pairs (:func:`confirmed`, at least :data:`EXACT_MIN_P`)
    lifted over the operating point: [EXACT_MIN_P, near_p) maps linearly onto a hundredth to
    half of the way from near_p to 1, so they stay in the model's order and under the pairs it was sure of."""
    p = np.asarray(p, dtype=np.float64)
    if near_p is None:
        return p
    ok = confirmed(bits, moves, pin) & (p >= EXACT_MIN_P) & (p < near_p)
    frac = np.clip((p - EXACT_MIN_P) / max(near_p - EXACT_MIN_P, 1e-12), 0.0, 1.0)
    return np.where(ok, near_p + (1.0 - near_p) * (0.01 + 0.49 * frac), p)


def _hashes(frames: list[np.ndarray], flip: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    from astradup.features.phash import PHash

    rgb = np.stack([np.repeat(f[..., None], 3, axis=2) for f in frames])
    h = PHash()
    if flip:
        a, m = h.extract_with_flip(rgb)
        return a, m
    return h.extract(rgb), None


def _cut(frames: dict[float, np.ndarray], box: tuple[float, float, float, float] | None) -> dict[float, np.ndarray]:
    from astradup.scoring.geometry import crop_to_box

    return frames if box is None else crop_to_box(frames, box)


def exact_distances(a_frames: list[np.ndarray], b_windows: list[list[np.ndarray]]) -> dict[str, float]:
    """:data:`EXACT_FEATURES` of probe frames of *a* (grey, cut) and, for each, the distinct
    frames of *b* around its moment (grey, cut)."""
    keep = [k for k, win in enumerate(b_windows) if len(win)]
    if not keep:
        return {f: float("nan") for f in EXACT_FEATURES}
    ha, _ = _hashes([a_frames[k] for k in keep])
    return _from_hashes(ha, [_hashes(b_windows[k], flip=True) for k in keep])


def _from_hashes(ha: np.ndarray, windows: list[tuple[np.ndarray, np.ndarray | None]]) -> dict[str, float]:
    """:data:`EXACT_FEATURES` from the probes' hashes of *a* (k, 32) and, per probe, the hashes
    of *b*'s window as it is and mirrored."""
    from astradup.features.phash import hamming_matrix

    nan = float("nan")
    if len(ha) == 0:
        return {f: nan for f in EXACT_FEATURES}
    best, pin = [], []
    for k, (hb, hm) in enumerate(windows):
        d = hamming_matrix(ha[k:k + 1], hb)[0]
        if hm is not None:
            d = np.minimum(d, hamming_matrix(ha[k:k + 1], hm)[0])
        best.append(int(d.min()))
        pin.append(float(np.quantile(d, PIN_QUANTILE) - d.min()))
    moves = nan
    if len(ha) >= 2:
        dm = hamming_matrix(ha, ha).astype(float)
        np.fill_diagonal(dm, np.inf)
        moves = float(dm.min())
    return {"exact_bits": float(np.median(best)), "exact_moves": moves, "exact_pin": float(np.median(pin))}


class Moments:
    """Every frame of one short video, as the check compares them: times (seconds) and grey
    frames cut to the content box; each frame's pHash (as it is and mirrored) and a digest of
    its pixels (frames that decode to the same pixels count once in a window) are computed when
    first asked for."""

    def __init__(self, times: np.ndarray, frames: list[np.ndarray]):
        self.times, self.frames = times, frames
        self.nbytes = sum(f.nbytes for f in frames)
        self._h: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._d: dict[int, bytes] = {}

    def at(self, t: float) -> int:
        """The frame shown at ``t``: the first at or after it (the last past the end)."""
        return min(int(np.searchsorted(self.times, t - 1e-3, side="left")), len(self.times) - 1)

    def window(self, targets: list[float]) -> list[int]:
        """Indices of the distinct frames shown at ``targets`` (the first of each look)."""
        import hashlib

        out, seen = [], set()
        for i in (self.at(t) for t in targets):
            if i not in self._d:
                self._d[i] = hashlib.blake2b(self.frames[i].tobytes(), digest_size=8).digest()
            if self._d[i] not in seen:
                seen.add(self._d[i])
                out.append(i)
        return out

    def hashes(self, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """pHashes of frames ``idx`` as they are and mirrored ((n, 32) each)."""
        todo = [i for i in dict.fromkeys(idx) if i not in self._h]
        if todo:
            h, m = _hashes([self.frames[i] for i in todo], flip=True)
            for k, i in enumerate(todo):
                self._h[i] = (h[k], m[k] if m is not None else h[k])
        return np.stack([self._h[i][0] for i in idx]), np.stack([self._h[i][1] for i in idx])


class MomentCache:
    """Per process: short videos (at most :data:`WHOLE_S` seconds) decoded whole once, kept as
    :class:`Moments` up to ``max_bytes`` of frames (least recently used dropped first): a video
    in many uncertain pairs is decoded once, not once per pair. A video asked for inside a
    content box keeps its whole frames too (the check compares them next where only one box cuts:
    :func:`pair_exact`), so either picture of it is one decode. Threads may share one: a file is
    decoded by one thread at a time, the others wait for it."""

    def __init__(self, max_bytes: int = 256 << 20):
        self.max_bytes = max_bytes
        self._v: OrderedDict[tuple, Moments] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # ``_v`` and the byte count
        self._files = FileLocks()  # one decoder per file at a time

    def get(self, path: str, rotation: int, box: tuple[float, float, float, float] | None) -> Moments:
        st = os.stat(path)  # a file changed since it was cached is decoded again
        base = (path, st.st_mtime_ns, st.st_size, rotation)
        with self._files.hold(base):
            return self._get(path, rotation, base, box)

    def _get(self, path: str, rotation: int, base: tuple, box: tuple[float, float, float, float] | None) -> Moments:
        from astradup.media.decode import every_frame

        key = (*base, box)
        with self._lock:
            if key in self._v:
                self._v.move_to_end(key)
                return self._v[key]
            whole = self._v.get((*base, None))
        if whole is None:
            whole = Moments(*every_frame(path, width=WIDTH, rotation=rotation))
            self._put((*base, None), whole)
        if box is None:
            return whole
        cut = _cut(dict(enumerate(whole.frames)), box)
        mo = Moments(whole.times, [cut[i] for i in range(len(whole.frames))])
        self._put(key, mo)
        return mo

    def _put(self, key: tuple, mo: Moments) -> None:
        with self._lock:
            old = self._v.pop(key, None)
            self._bytes += mo.nbytes - (old.nbytes if old is not None else 0)
            self._v[key] = mo
            while self._bytes > self.max_bytes and len(self._v) > 1:
                self._bytes -= self._v.popitem(last=False)[1].nbytes


_CACHE: MomentCache | None = None
_CACHE_LOCK = threading.Lock()


def default_cache() -> MomentCache:
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            _CACHE = MomentCache()
        return _CACHE


def _targets(tb: float, window_s: float) -> list[float]:
    return [round(float(t), 3) for t in np.arange(max(0.0, tb - window_s), tb + window_s + 1e-9, FRAME_STEP)]


def pair_exact(path_a: str, path_b: str, times: list[tuple[float, float]], window_s: float,
               rotation_a: int = 0, rotation_b: int = 0,
               box_a: tuple[float, float, float, float] | None = None,
               box_b: tuple[float, float, float, float] | None = None,
               duration_a: float | None = None, duration_b: float | None = None,
               cache: MomentCache | None = None, pixels_a: float | None = None,
               pixels_b: float | None = None, ref_a: bool = False) -> dict[str, float]:
    """:data:`EXACT_FEATURES` for the path cells ``times`` ((t in a, t in b), seconds): *a*'s frame
    at each time, *b*'s frames within ``window_s`` of its time. A video whose ``duration_*`` is
    at most :data:`WHOLE_S`, and whose ``pixels_*`` (all its frames' pixels: :func:`video_pixels`;
    None when unknown) are at most :data:`WHOLE_PIXELS`, is read from the :class:`MomentCache`
    (decoded whole once per process); a longer or larger one, or one of unknown duration, is
    decoded at the times asked (the same frames; ``ref_a``: *a*'s times are those of reference
    frames, as PyAV samples them, so its decoder skips the others on the way: the same frames,
    sooner). Where exactly one of the two boxes cuts part of its frame and the boxes do not
    confirm the moment, the whole frames are compared too, and a confirmation there counts (a
    letterboxed source quoted in a trailer whose title cards fill the bars, as
    :func:`astradup.scoring.similarity.hash_agreement_matrix` does with the stored hashes; two
    boxed videos are compared inside their boxes only: they would agree on their bars). NaN when
    either file cannot be read (the pair is scored without it)."""
    from astradup.errors import AstradupError
    from astradup.features.preprocess import cuts_frame

    nan = {f: float("nan") for f in EXACT_FEATURES}
    if not times:
        return nan
    c = cache or default_cache()
    whole_a, whole_b = _whole(duration_a, pixels_a), _whole(duration_b, pixels_b)
    cuts_a, cuts_b = cuts_frame(box_a), cuts_frame(box_b)
    box_a, box_b = (box_a if cuts_a else None), (box_b if cuts_b else None)  # one cache entry per picture
    try:
        ev = _pair_hashes(c, os.fspath(path_a), os.fspath(path_b), times, window_s, rotation_a, rotation_b,
                          box_a, box_b, whole_a, whole_b, ref_a)
        if cuts_a != cuts_b and not confirmed(ev["exact_bits"], ev["exact_moves"], ev["exact_pin"]):
            whole = _pair_hashes(c, os.fspath(path_a), os.fspath(path_b), times, window_s, rotation_a, rotation_b,
                                 None, None, whole_a, whole_b, ref_a)
            if confirmed(whole["exact_bits"], whole["exact_moves"], whole["exact_pin"]):
                ev = whole
    except (AstradupError, OSError) as exc:
        log.info("exact-moment check skipped for %s / %s (%s)", path_a, path_b, exc)
        return nan
    return ev


def _pair_hashes(c: MomentCache, path_a: str, path_b: str, times: list[tuple[float, float]], window_s: float,
                 rotation_a: int, rotation_b: int, box_a: tuple[float, float, float, float] | None,
                 box_b: tuple[float, float, float, float] | None, whole_a: bool, whole_b: bool,
                 ref_a: bool = False) -> dict[str, float]:
    """:func:`_from_hashes` of *a*'s probe frames and *b*'s windows; ``whole_*``: that video is read
    from the cache, decoded whole (:func:`_whole`), else decoded at the times asked."""
    ha = _side_a(c, path_a, [ta for ta, _ in times], rotation_a, box_a, whole_a, ref_a)
    wins = _side_b(c, path_b, [tb for _, tb in times], window_s, rotation_b, box_b, whole_b)
    keep = [k for k, w in enumerate(wins) if w is not None and len(w[0])]
    return _from_hashes(ha[keep], [wins[k] for k in keep])


def _whole(duration: float | None, pixels: float | None = None) -> bool:
    """Whether a video is decoded whole once (:class:`MomentCache`): short and small enough."""
    return duration is not None and 0 < duration <= WHOLE_S and (pixels is None or pixels <= WHOLE_PIXELS)


def video_pixels(info: dict, duration: float | None) -> float | None:
    """All the pixels of a video's frames (frames x width x height) from its probe ``info``, or
    None when it does not say."""
    try:
        px = float(info["width"]) * float(info["height"]) * float(info.get("avg_fps") or 0) * float(duration or 0)
    except (KeyError, TypeError, ValueError):
        return None
    return px if px > 0 else None


def _side_a(c: MomentCache, path: str, ts: list[float], rotation: int,
            box: tuple[float, float, float, float] | None, whole: bool, ref: bool = False) -> np.ndarray:
    """Hashes of *a*'s frames at ``ts`` (rows in order); ``ref``: ``ts`` are reference frames' times."""
    from astradup.media.decode import frames_at

    if whole:
        mo = c.get(path, rotation, box)
        return mo.hashes([mo.at(t) for t in ts])[0]
    fa = _cut(frames_at(path, ts, width=WIDTH, rotation=rotation, skip_nonref=ref), box)
    return _hashes([fa[t] for t in ts])[0]


def _side_b(c: MomentCache, path: str, ts: list[float], window_s: float, rotation: int,
            box: tuple[float, float, float, float] | None,
            whole: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per time in ``ts``: the hashes (as they are, mirrored) of *b*'s distinct frames within
    ``window_s`` of it."""
    from astradup.media.decode import frames_at

    want = sorted({t for tb in ts for t in _targets(tb, window_s)})
    near = [[t for t in want if abs(t - tb) <= window_s + 1e-9] for tb in ts]  # every asked time in reach
    if whole:
        mo = c.get(path, rotation, box)
        return [mo.hashes(mo.window(w)) for w in near]
    fb = _cut(frames_at(path, want, width=WIDTH, rotation=rotation), box)
    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    for w in near:
        win = {fb[t].tobytes(): fb[t] for t in w if t in fb}
        out.append(_hashes(list(win.values()), flip=True) if win else (np.zeros((0, 32), np.uint8), None))
    return out
