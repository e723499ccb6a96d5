"""Does a stretch of a user's file show the same pictures as another stretch of it?

The truth (:mod:`.truth`) labels two videos cut from *different* stretches of one file ``similar``:
same material, no shared moment. That holds for footage that moves on; it does not for a file
whose pictures come back (a test card held for a minute, a looping logo, a screencast that sits
on one screen): there two "different" stretches are the same pictures, and a detector that calls
them copies is right. Such labels would count true detections as false duplicates and teach a
pair model trained on ``astradup synth`` output that identical pictures are not a copy.

So before a second segment is cut from a file, its pictures are compared with those of the
segments already cut from it (grey thumbnails, :data:`LOOK_FPS` a second): when a run of at least
:data:`SAME_RUN_S` seconds of informative frames is the same picture in both, at any offset, the
stretch is not used and another is drawn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astradup.errors import MediaError

log = logging.getLogger(__name__)

LOOK_FPS = 2.0  # thumbnails a second
LOOK_SIZE = 32  # thumbnail side (pixels)
SAME_PICTURE = 2.0  # mean absolute grey difference (0-255) under which two thumbnails are one picture
# (a still camera on a swaying tree, or on a street with passers-by, differs by more: those
# stretches are other moments of one scene, "similar", and stay in the benchmark as hard cases)
FLAT_STD = 3.0  # thumbnails with less grey spread than this are flat (black, white, one colour)
SAME_RUN_S = 2.0  # seconds of one picture in a row that make two stretches show the same thing
MAX_LOOK_FRAMES = 3600  # at most this many thumbnails a file (30 minutes at LOOK_FPS)


@dataclass(frozen=True)
class Looks:
    """Grey thumbnails of a file: ``grey`` (N, LOOK_SIZE**2) float32 at ``times`` (N,) seconds."""

    times: np.ndarray
    grey: np.ndarray

    def within(self, t0: float, t1: float) -> np.ndarray:
        return self.grey[(self.times >= t0) & (self.times < t1)]


def looks_of(path: Path, duration: float) -> Looks | None:
    """The thumbnails of ``path``, or None when it cannot be decoded (then nothing is compared)."""
    from astradup.media.decode import sample_frames

    try:
        s = sample_frames(path, duration, LOOK_FPS, LOOK_SIZE, "pyav", MAX_LOOK_FRAMES)
    except (MediaError, OSError, ValueError) as exc:
        log.info("%s: not compared for repeated pictures (%s)", path, exc)
        return None
    grey = s.frames.astype(np.float32).mean(axis=3).reshape(len(s.frames), -1)
    return Looks(np.asarray(s.timestamps, dtype=float), grey)


def same_run(a: np.ndarray, b: np.ndarray) -> int:
    """The longest run of consecutive thumbnails of ``a`` that equal consecutive thumbnails of
    ``b`` at one offset (flat thumbnails never count: they carry no picture)."""
    if len(a) == 0 or len(b) == 0:
        return 0
    d = np.abs(a[:, None, :] - b[None, :, :]).mean(axis=2)
    same = (d < SAME_PICTURE) & (a.std(axis=1) >= FLAT_STD)[:, None] & (b.std(axis=1) >= FLAT_STD)[None, :]
    best = 0
    for k in range(-len(a) + 1, len(b)):
        run = 0
        for v in np.diagonal(same, k):
            run = run + 1 if v else 0
            best = max(best, run)
    return best


def shows_again(looks: Looks | None, seg: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """True when segment ``seg`` shows the same pictures as one of ``others`` for
    :data:`SAME_RUN_S` seconds or more."""
    if looks is None:
        return False
    need = max(2, int(round(SAME_RUN_S * LOOK_FPS)))
    mine = looks.within(*seg)
    return any(same_run(mine, looks.within(*o)) >= need for o in others)
