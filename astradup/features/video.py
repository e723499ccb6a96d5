"""The in-memory features of one video, as extracted and as read back from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from astradup.features.audio import AudioFeatures


@dataclass
class VideoFeatures:
    """Everything the matcher needs about one video.

    Attributes:
        path: absolute path of the file.
        info: probe record (``MediaInfo.to_dict()``).
        timestamps: sampled frame times (seconds).
        phash, phash_flip: packed frame hashes (N, bits/8) of the frames and their mirror images.
        phash_full, phash_full_flip: the same of the whole decoded frames, bars and inset kept, where
            ``content_box`` cuts part of the frame away; ``None`` where it does not (``phash`` is
            then of the whole frame) or where unknown (a store indexed before they were kept).
            A stretch of a letterboxed video inside other footage (a trailer's quote, a clip in a
            longer video) is cut to another box than its source, so only these agree with it.
        embeddings: L2-normalised frame embeddings (N, dim), or ``None`` when disabled.
        quality: picture detail of each frame (N,) (:func:`astradup.features.quality.frame_quality`),
            or ``None`` when unknown (a store indexed before it existed); NaN entries are unknown too.
        descriptor: video-level embedding (dim,), or ``None``.
        audio: audio features, or ``None`` when audio extraction is disabled.
        timings: seconds spent per stage (decode, hash, embed, audio).
        content_box: the region of the frame the features describe, as fractions (top, bottom,
            left, right): inside letterbox/pillarbox bars and a picture-in-picture inset
            (:func:`astradup.features.preprocess.content_frames_and_box`); ``None`` when unknown
            (a store indexed before it was kept).
    """

    path: str
    info: dict[str, Any]
    timestamps: np.ndarray
    phash: np.ndarray
    phash_flip: np.ndarray
    embeddings: np.ndarray | None = None
    quality: np.ndarray | None = None
    descriptor: np.ndarray | None = None
    audio: AudioFeatures | None = None
    decoder: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    content_box: tuple[float, float, float, float] | None = None
    phash_full: np.ndarray | None = None
    phash_full_flip: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return len(self.timestamps)

    @property
    def duration(self) -> float:
        return float(self.info.get("duration") or (self.timestamps[-1] if len(self.timestamps) else 0.0))
