"""Geometric verification: do matched frames show the same pixels under one steady transform?

Frame embeddings say "same subject"; a different stretch of the same footage, or another video
in the same style, agrees with them as well as a cropped copy does, and where the hashes are at
chance (crops, picture-in-picture, overlays) nothing in the stored features tells the two apart.
This module looks at the pixels: for a few frame pairs spread along the aligned path it decodes
both frames from the media files (:func:`astradup.media.decode.frames_at`), finds ORB keypoints
(OpenCV), matches them with Lowe's ratio test (against the mirror image too) and fits a
similarity transform (scale, rotation, shift) with RANSAC (``cv2.estimateAffinePartial2D``).

Evidence it adds to a pair (:data:`GEO_FEATURES`, NaN when not checked):

- ``geo_inliers``: median RANSAC inlier count over the checked frame pairs. A copy (crop, resize,
  letterbox, inset, overlay, mirror) keeps tens of keypoints in one geometry; unrelated frames of
  a similar look keep a handful.
- ``geo_spread``: how much the fitted transform moves between the checked frame pairs (the larger
  of the spread of log scale and of the shift in frame widths). A copy keeps one framing for its
  whole length; a different edit of the same photos or footage (another pan, zoom or framing)
  matches frame by frame with a transform that changes along the path.

Only pairs the hashes do not already confirm are checked (:func:`needs_geometry`); media that
cannot be read, or frames with too little texture for keypoints, leave the evidence NaN (no
evidence, not evidence against). Frames are cut to the content box indexing stored (the picture
the features describe), and frames and keypoints are cached per process (:class:`KeypointCache`),
so a frame seen in many pairs is decoded once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from astradup.media.files import FileLocks

log = logging.getLogger(__name__)

#: Evidence this module adds, in the learned scorer's column order.
GEO_FEATURES = ("geo_inliers", "geo_spread")

WIDTH = 320  # frames are compared at this width (pixels)
N_FEATURES = 500  # ORB keypoints per frame at most
FAST_THRESHOLD = 12
RATIO = 0.8  # Lowe's ratio test
REPROJ_PX = 4.0  # RANSAC inlier distance at WIDTH
MIN_KEYPOINTS = 24  # a frame with fewer cannot be checked (flat, tiny or blurred)
STEADY_INLIERS = 8  # a fitted transform counts for geo_spread with this many inliers
N_PROBES = 3  # frame pairs checked along the path
WHOLE_WITH_BOX_S = 20.0  # a video this short is decoded whole once (its probes would decode most of it anyway)


@dataclass
class Keypoints:
    """ORB keypoints of one frame: positions (n, 2) float32 and descriptors (n, 32) uint8."""

    pts: np.ndarray
    desc: np.ndarray | None

    def __len__(self) -> int:
        return 0 if self.desc is None else len(self.desc)


def keypoints(gray: np.ndarray) -> Keypoints:
    """ORB keypoints of a grey uint8 frame."""
    import cv2

    orb = cv2.ORB.create(nfeatures=N_FEATURES, fastThreshold=FAST_THRESHOLD)
    kps, desc = orb.detectAndCompute(np.ascontiguousarray(gray), None)
    pts = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
    return Keypoints(pts, desc)


def fit(ka: Keypoints, kb: Keypoints) -> tuple[int, np.ndarray | None]:
    """RANSAC inliers of the similarity transform taking ``ka``'s matched keypoints onto ``kb``'s
    (ratio-tested Hamming matches), and that transform (2x3) or None when none was found."""
    import cv2

    if ka.desc is None or kb.desc is None or len(ka) < 2 or len(kb) < 2:
        return 0, None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(ka.desc, kb.desc, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < 4:
        return 0, None
    src = ka.pts[[g.queryIdx for g in good]]
    dst = kb.pts[[g.trainIdx for g in good]]
    cv2.setRNGSeed(0)  # RANSAC's samples: the same pair gives the same answer in any process, in any order
    M, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJ_PX, maxIters=500)
    if M is None or inl is None:
        return 0, None
    return int(inl.sum()), M


def transform_params(M: np.ndarray, mirrored: bool) -> np.ndarray:
    """(log scale, shift x, shift y, mirrored) of a 2x3 similarity transform, shifts in frame widths."""
    s = float(np.hypot(M[0, 0], M[1, 0]))
    return np.array([np.log(max(s, 1e-6)), M[0, 2] / WIDTH, M[1, 2] / WIDTH, 1.0 if mirrored else 0.0])


class KeypointCache:
    """Grey frames of recently seen videos (``max_bytes`` of them at most) and the keypoints of
    their frames (and of their mirror images), least recently used video dropped first; one per
    process (:func:`default_cache`).

    A video whose content box indexing stored (the picture its features describe: bars cut, an
    inset cut out) is decoded at the times asked for and cut to that box (:func:`crop_to_box`);
    one whose sample grid ends within :data:`WHOLE_WITH_BOX_S` is decoded at every time of its
    grid at once instead (a short file usually has one keyframe, so its probes would decode most
    of it anyway, and the pairs after find their frames cached).
    One indexed before the box was kept is decoded once at every time of its sample grid (the
    timestamps its features were sampled at) when the grid has at most ``grid_max`` frames, and
    cut to the box decided again over them (:func:`crop_to_content`); a longer one is decoded at
    the times asked for and compared whole. Keypoints are computed when first asked for.

    Threads may share one (a match verifying on several threads): a file is loaded by one
    thread at a time (the others wait for its frames instead of decoding it again), and the
    cache's bookkeeping is locked."""

    def __init__(self, max_bytes: int = 256 << 20, grid_max: int = 240):
        self.max_bytes, self.grid_max = max_bytes, grid_max
        self._frames: OrderedDict[str, dict[float, np.ndarray]] = OrderedDict()
        self._kps: dict[str, dict[tuple[float, bool], Keypoints]] = {}  # by file, then (time, mirrored)
        self._stamps: dict[str, tuple] = {}  # file's mtime and size, inset setting, content box
        self._bytes = 0
        self.unreadable: set[str] = set()  # files already reported as unreadable
        self._lock = threading.Lock()  # the dicts above and the byte count
        self._files = FileLocks()  # one loader per file at a time

    def _drop(self, path: str) -> None:
        frames = self._frames.pop(path, None)
        self._kps.pop(path, None)
        if frames is not None:
            self._bytes -= sum(g.nbytes for g in frames.values())

    @staticmethod
    def _t(t: float) -> float:
        return round(float(t), 4)

    def _load(self, path: str, times: list[float], grid: np.ndarray | None, rotation: int,
              inset: bool, box: tuple[float, float, float, float] | None = None) -> dict[float, np.ndarray]:
        with self._files.hold(path):
            return self._load_file(path, times, grid, rotation, inset, box)

    def _load_file(self, path: str, times: list[float], grid: np.ndarray | None, rotation: int,
                   inset: bool, box: tuple[float, float, float, float] | None) -> dict[float, np.ndarray]:
        from astradup.media.decode import frames_at

        st = os.stat(path)  # a file changed since it was cached (or asked for with another inset or box) is decoded again
        stamp = (st.st_mtime_ns, st.st_size, inset, box)
        want = [self._t(t) for t in times]
        with self._lock:
            if self._stamps.get(path) != stamp:
                self._drop(path)
                self._stamps[path] = stamp
            have = self._frames.get(path)
            if have is not None and all(t in have for t in want):
                self._frames.move_to_end(path)
                return have
        todo = set(want) - set(have or {})
        whole = have is None and grid is not None and 2 <= len(grid) <= self.grid_max and (box is None or float(grid[-1]) <= WHOLE_WITH_BOX_S)
        if whole and grid is not None:
            todo |= {self._t(t) for t in grid}
        got = frames_at(path, sorted(todo), width=WIDTH, gray=True, rotation=rotation, skip_nonref=True)
        if box is not None:  # the picture the features describe, as indexing stored it
            got = crop_to_box(got, box)
        elif whole:  # decided again over the whole grid: bars cut, an inset cut out (as indexed)
            got = crop_to_content(got, inset)
        merged = {**(have or {}), **{self._t(t): g for t, g in got.items()}}
        with self._lock:
            old = self._frames.pop(path, None)  # ``have``, unless another thread's eviction dropped it
            self._bytes += sum(g.nbytes for g in merged.values()) - sum(g.nbytes for g in (old or {}).values())
            self._frames[path] = merged
            while self._bytes > self.max_bytes and len(self._frames) > 1:
                self._drop(next(iter(self._frames)))
        return merged

    def get(self, path: str, times: list[float], grid: np.ndarray | None = None, rotation: int = 0,
            inset: bool = True, box: tuple[float, float, float, float] | None = None) -> dict[float, Frame]:
        """The frames at ``times`` (lazy keypoints; see :class:`Frame`); ``inset``: cut out a
        picture-in-picture inset as ``sampling.inset`` does; ``box``: the content box indexing
        stored (:attr:`VideoFeatures.content_box`), which spares decoding the whole grid to decide
        it again. Raises :class:`astradup.errors.MediaError` when the file cannot be decoded."""
        frames = self._load(path, times, grid, rotation, inset, box)
        return {t: Frame(self, path, self._t(t), frames[self._t(t)]) for t in times}

    def keypoints(self, path: str, t: float, grey: np.ndarray, mirrored: bool) -> Keypoints:
        with self._lock:
            per_file = self._kps.setdefault(path, {})
            kp = per_file.get((t, mirrored))
        if kp is None:  # two threads may both compute it: the same keypoints
            kp = keypoints(np.ascontiguousarray(grey[:, ::-1]) if mirrored else grey)
            with self._lock:
                per_file[(t, mirrored)] = kp
        return kp


def crop_to_content(frames: dict[float, np.ndarray], inset: bool = True) -> dict[float, np.ndarray]:
    """Grey frames of one video cut to the region its features describe
    (:func:`astradup.features.preprocess.content_box`, decided on 160 px square copies as sampled)
    and scaled back to :data:`WIDTH` pixels wide; unchanged when that is the whole frame."""
    import cv2

    from astradup.features.preprocess import content_box

    if len(frames) < 2:
        return frames
    sq = np.stack([cv2.resize(g, (160, 160), interpolation=cv2.INTER_AREA) for g in frames.values()])
    return crop_to_box(frames, content_box(np.repeat(sq[..., None], 3, axis=3), inset))


def crop_to_box(frames: dict[float, np.ndarray], box: tuple[float, float, float, float]) -> dict[float, np.ndarray]:
    """Grey frames cut to ``box`` (top, bottom, left, right as fractions of the frame) and scaled
    back to :data:`WIDTH` pixels wide; unchanged when the box is the whole frame."""
    import cv2

    from astradup.features.preprocess import WHOLE_FRAME

    t, b, l_, r = box
    if (t, b, l_, r) == WHOLE_FRAME:
        return frames
    out = {}
    for k, g in frames.items():
        h, w = g.shape
        y0, y1, x0, x1 = int(round(t * h)), int(round(b * h)), int(round(l_ * w)), int(round(r * w))
        crop = g[y0:max(y1, y0 + 2), x0:max(x1, x0 + 2)]
        ch = max(2, int(round(WIDTH * crop.shape[0] / max(crop.shape[1], 1))))
        out[k] = cv2.resize(crop, (WIDTH, ch), interpolation=cv2.INTER_LINEAR)
    return out


@dataclass
class Frame:
    """One decoded frame whose keypoints (and its mirror image's) are computed on first use."""

    cache: KeypointCache
    path: str
    t: float
    grey: np.ndarray

    def kp(self, mirrored: bool = False) -> Keypoints:
        return self.cache.keypoints(self.path, self.t, self.grey, mirrored)


_CACHE: KeypointCache | None = None
_CACHE_LOCK = threading.Lock()


def default_cache() -> KeypointCache:
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            import cv2

            cv2.setNumThreads(1)  # one thread per process or per verifying thread: one per core
            _CACHE = KeypointCache()
        return _CACHE


def probe_cells(path: np.ndarray, informative: np.ndarray | None = None, n: int = N_PROBES) -> np.ndarray:
    """``n`` cells of an aligned path (rows of (i, j)), evenly spread, informative ones first."""
    path = np.asarray(path)
    if len(path) == 0:
        return path.reshape(0, 2)
    cand = path[informative] if informative is not None and informative.any() else path
    idx = np.unique(np.linspace(0, len(cand) - 1, min(n, len(cand)) + 2).round().astype(int)[1:-1]) \
        if len(cand) > n else np.arange(len(cand))
    return cand[idx]


MIRROR_TRY = 20  # the mirror image is tried only when the frames as they are keep fewer inliers


def check_frames(pairs: list[tuple[Frame | tuple[Keypoints, Keypoints], Frame | tuple[Keypoints, Keypoints]]]) -> dict[str, float]:
    """:data:`GEO_FEATURES` of frame pairs (a, b): each fit is tried on b as it is, and on b's
    mirror image when that keeps under :data:`MIRROR_TRY` inliers (a :class:`Frame`, or a pair of
    :class:`Keypoints` (as is, mirrored)). Frame pairs where either frame has under
    :data:`MIN_KEYPOINTS` keypoints are skipped."""
    nan = float("nan")
    counts, params = [], []
    for fa, fb in pairs:
        ka = fa.kp() if isinstance(fa, Frame) else fa[0]
        kb = fb.kp() if isinstance(fb, Frame) else fb[0]
        if len(ka) < MIN_KEYPOINTS or len(kb) < MIN_KEYPOINTS:
            continue
        n, M = fit(ka, kb)
        mir = False
        if n < MIRROR_TRY:
            n2, m2 = fit(ka, fb.kp(True) if isinstance(fb, Frame) else fb[1])
            if n2 > n:
                n, M, mir = n2, m2, True
        counts.append(n)
        if M is not None and n >= STEADY_INLIERS:
            params.append(transform_params(M, mir))
    if not counts:
        return {"geo_inliers": nan, "geo_spread": nan}
    spread = nan
    if len(params) >= 2:
        P = np.stack(params)
        spread = float(max(P[:, 0].std(), np.hypot(P[:, 1].std(), P[:, 2].std()), P[:, 3].std()))
    return {"geo_inliers": float(np.median(counts)), "geo_spread": spread}


def pair_geometry(path_a: str, path_b: str, times: list[tuple[float, float]], rotation_a: int = 0,
                  rotation_b: int = 0, cache: KeypointCache | None = None, grid_a: np.ndarray | None = None,
                  grid_b: np.ndarray | None = None, inset: bool = True,
                  box_a: tuple[float, float, float, float] | None = None,
                  box_b: tuple[float, float, float, float] | None = None) -> dict[str, float]:
    """:data:`GEO_FEATURES` for frame pairs at ``times`` ((t in a, t in b), seconds) of two files
    (``box_*``: each video's stored content box, or None to decide it again from ``grid_*``, each
    video's sample grid, decoded whole when short; ``inset``: the ``sampling.inset`` the features
    were made with; see :class:`KeypointCache`);
    NaN when either file cannot be read (moved, deleted or damaged since it was indexed: one
    warning per file and process, naming it; the pair is still scored on its stored features)."""
    from astradup.errors import AstradupError

    c = cache or default_cache()
    try:
        fa = c.get(os.fspath(path_a), [t for t, _ in times], grid_a, rotation_a, inset, box_a)
        fb = c.get(os.fspath(path_b), [t for _, t in times], grid_b, rotation_b, inset, box_b)
    except (AstradupError, OSError) as exc:
        bad = getattr(exc, "filename", None) or getattr(exc, "path", None) or f"{path_a} or {path_b}"
        if str(bad) not in c.unreadable:
            c.unreadable.add(str(bad))
            log.warning("geometric check skipped for pairs with %s (%s); they are scored without it", bad, exc)
        return {f: float("nan") for f in GEO_FEATURES}
    return check_frames([(fa[ta], fb[tb]) for ta, tb in times])
