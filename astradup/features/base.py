"""Extractor families, the name registry, and ``make_extractor``.

Extractors are small objects: constructors store parameters and do no work (so a config can
rebuild any of them and Optuna can set any parameter); models load lazily on first use.
They are pure functions over arrays: they never touch the store, the index or Dask.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from astradup.errors import UnknownBackendError

EXTRACTORS: dict[str, str] = {
    "phash": "astradup.features.phash:PHash",
    "pdq": "astradup.features.phash:PDQ",
    "mobilenetv2": "astradup.features.embedding:MobileNetV2",
    "clip": "astradup.features.embedding:CLIPEmbedder",
    "dinov2": "astradup.features.embedding:DINOv2Embedder",
    "chromaprint": "astradup.features.audio:Chromaprint",
    "mfcc": "astradup.features.audio:MFCC",
    "metadata": "astradup.features.metadata:Metadata",
    "quality": "astradup.features.quality:FrameQuality",
}


class Extractor(ABC):
    """Common base: ``name``, ``modality`` and ``get_params`` for configs and reports.

    ``version`` is part of the store's feature key (:mod:`astradup.features.specs`), with every
    constructor parameter except ``execution_params`` (those that choose how it runs, not what it
    computes): bump it when the same parameters start giving different features, so stores
    re-extract.
    """

    name = "extractor"
    modality = "visual"
    version: int = 1
    execution_params: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class FrameExtractor(Extractor):
    """Maps frames (N, H, W, 3) uint8 RGB to per-frame features (N, ...)."""

    @abstractmethod
    def extract(self, frames: np.ndarray) -> np.ndarray: ...


class AudioExtractor(Extractor):
    """Maps mono float32 audio at ``rate`` Hz to a feature array."""

    modality = "audio"

    @abstractmethod
    def extract(self, audio: np.ndarray, rate: int) -> np.ndarray: ...


def load_object(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def extractor_class(name: str) -> type[Extractor]:
    """The class registered as ``name`` (its module is imported; no model is loaded)."""
    if name not in EXTRACTORS:
        raise UnknownBackendError(f"extractor {name!r} is unknown; choose one of {sorted(EXTRACTORS)}")
    return load_object(EXTRACTORS[name])


def make_extractor(name: str, **params: Any) -> Extractor:
    """Build a registered extractor, e.g. ``make_extractor("phash", hash_size=16)``."""
    return extractor_class(name)(**params)
