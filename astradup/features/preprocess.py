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
    luma = frames.max(axis=3)  # brightest channel per pixel, (N, H, W)
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
    top, bottom, left, right = border_box(frames, threshold)
    h, w = frames.shape[1], frames.shape[2]
    if (top, bottom, left, right) == (0, h, 0, w):
        return frames
    from PIL import Image

    out = np.empty_like(frames)
    for i, f in enumerate(frames[:, top:bottom, left:right]):
        out[i] = np.asarray(Image.fromarray(np.ascontiguousarray(f)).resize((w, h), Image.Resampling.BILINEAR))
    return out
