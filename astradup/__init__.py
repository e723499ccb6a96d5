"""AstraDup: find duplicate and near-duplicate videos, and say why.

Heavy libraries (torch, transformers, faiss, dask, librosa) are imported lazily inside the
functions that use them, so ``import astradup`` is fast.
"""

from __future__ import annotations

from astradup.api import Library
from astradup.config import (
    AstradupConfig,
    FeatureConfig,
    FusionConfig,
    MatchConfig,
    SamplingConfig,
)
from astradup.errors import AstradupError, ConfigError, MediaError, StoreError, UnknownBackendError
from astradup.media import MediaInfo, probe, sample_frames
from astradup.scoring.fusion import fuse

__version__ = "0.1.0"

__all__ = [
    "AstradupConfig",
    "AstradupError",
    "ConfigError",
    "FeatureConfig",
    "FusionConfig",
    "Library",
    "MatchConfig",
    "MediaError",
    "MediaInfo",
    "SamplingConfig",
    "StoreError",
    "UnknownBackendError",
    "__version__",
    "fuse",
    "probe",
    "sample_frames",
]
