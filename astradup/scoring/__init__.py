"""Scoring: per-modality similarity, temporal alignment, fusion and class bands."""

from astradup.labels import LABELS, MODALITIES
from astradup.scoring.alignment import Alignment, align
from astradup.scoring.fusion import Fused, band_labels, fuse, fuse_arrays
from astradup.scoring.pair import PairScore, score_pair
from astradup.scoring.similarity import (
    audio_similarity,
    frame_similarity,
    metadata_similarity,
    visual_similarity,
)

__all__ = [
    "LABELS",
    "MODALITIES",
    "Alignment",
    "Fused",
    "PairScore",
    "align",
    "audio_similarity",
    "band_labels",
    "frame_similarity",
    "fuse",
    "fuse_arrays",
    "metadata_similarity",
    "score_pair",
    "visual_similarity",
]
