"""Feature extractors, one module per modality, behind one registry (``make_extractor``)."""

from astradup.features.audio import MFCC, AudioFeatures, Chromaprint, audio_features
from astradup.features.base import (
    EXTRACTORS,
    AudioExtractor,
    Extractor,
    FrameExtractor,
    extractor_class,
    make_extractor,
)
from astradup.features.metadata import Metadata
from astradup.features.phash import PDQ, PHash, hamming_matrix
from astradup.features.quality import FrameQuality, frame_quality
from astradup.features.specs import ExtractorSpec, extractor_specs, feature_key
from astradup.features.video import VideoFeatures

__all__ = [
    "EXTRACTORS",
    "MFCC",
    "PDQ",
    "AudioExtractor",
    "AudioFeatures",
    "Chromaprint",
    "Extractor",
    "ExtractorSpec",
    "FrameQuality",
    "FrameExtractor",
    "Metadata",
    "PHash",
    "VideoFeatures",
    "audio_features",
    "extractor_class",
    "extractor_specs",
    "feature_key",
    "frame_quality",
    "hamming_matrix",
    "make_extractor",
]
