"""Frame quality: how much picture detail a sampled frame carries.

A flat, near-black or near-white frame, a fade, or a smooth gradient looks the same in every video,
so its hash and embedding match frames of unrelated videos. PDQ drops such frames with its quality
score (gradient energy), but a full-range ramp has plenty of gradient energy and passes. Here the
frame is reduced to a 32x32 grey thumbnail (area averaging, which also averages out sensor and
compression noise) and the quality is the root-mean-square of its discrete Laplacian, in grey
levels: a ramp has none, a vignette or radial gradient a little (about 2), text, edges and texture
a lot (tens to a hundred).
"""

from __future__ import annotations

import numpy as np

from astradup.features.base import FrameExtractor

THUMB = 32  # side of the grey thumbnail the quality is measured on (pixels)


def _thumbnails(frames: np.ndarray, side: int) -> np.ndarray:
    """Grey (ITU-R 601 luma) thumbnails (N, side, side), float64, by area averaging."""
    f = np.asarray(frames)
    grey = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114 if f.ndim == 4 else f.astype(np.float64)
    n, h, w = grey.shape
    if h % side == 0 and w % side == 0:
        return grey.reshape(n, side, h // side, side, w // side).mean(axis=(2, 4))
    from PIL import Image

    out = np.empty((n, side, side))
    for i, g in enumerate(grey):
        out[i] = np.asarray(Image.fromarray(g.astype(np.float32), mode="F").resize((side, side), Image.Resampling.BOX))
    return out


def frame_quality(frames: np.ndarray, side: int = THUMB) -> np.ndarray:
    """Picture detail of each frame: RMS of the Laplacian of its grey thumbnail (grey levels).

    Args:
        frames: (N, H, W, 3) uint8 RGB frames, or (N, H, W) grey.
        side: thumbnail side the measure is taken on (pixels, >= 3).

    Returns:
        float32 (N,), >= 0; about 0 for flat frames and smooth gradients.

    Example:
        >>> ramp = np.broadcast_to(np.linspace(0, 255, 64)[None, :, None], (64, 64, 3)).astype(np.uint8)
        >>> float(frame_quality(ramp[None])[0]) < 0.5
        True
    """
    if len(frames) == 0:
        return np.zeros(0, dtype=np.float32)
    t = _thumbnails(frames, side)
    lap = 4 * t[:, 1:-1, 1:-1] - t[:, :-2, 1:-1] - t[:, 2:, 1:-1] - t[:, 1:-1, :-2] - t[:, 1:-1, 2:]
    return np.sqrt(np.mean(lap * lap, axis=(1, 2))).astype(np.float32)


class FrameQuality(FrameExtractor):
    """Per-frame quality (see :func:`frame_quality`) as a registered extractor."""

    name = "quality"

    def __init__(self, side: int = THUMB):
        self.side = side

    def extract(self, frames: np.ndarray) -> np.ndarray:
        return frame_quality(frames, self.side)
