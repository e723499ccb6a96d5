"""Queries that are not videos: a text prompt (CLIP's text tower) or an example image.

Both give L2-normalised float32 vectors in the space of the stored frame embeddings, so a store's
frame index can rank frames by them. Text needs the CLIP model the store was indexed with
(``features.embedding: clip``, ``features.model: DIR``); an image works with any embedder.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from astradup.config import AstradupConfig
from astradup.errors import ConfigError, MediaError
from astradup.features.embedding import _LOCK, l2_normalise, resolve_device


class TextSearchUnsupported(ConfigError):
    """Text search was asked of a store whose frames were not embedded by CLIP."""


@lru_cache(maxsize=2)
def _clip_text(model: str, device: str):
    import transformers

    try:
        net = transformers.CLIPTextModelWithProjection.from_pretrained(model)
        tok = transformers.AutoTokenizer.from_pretrained(model)
    except OSError as exc:
        raise ConfigError(
            f"cannot load the CLIP text model or tokenizer from {model!r}: give the local directory "
            f"the store was indexed with (no network is used at run time) ({exc})"
        ) from exc
    return net.eval().to(device), tok


def encode_text(texts: list[str], config: AstradupConfig) -> np.ndarray:
    """CLIP text embeddings (N, projection_dim) of ``texts``, L2-normalised.

    Raises:
        TextSearchUnsupported: the config's embedder is not CLIP.
    """
    f = config.features
    if f.embedding != "clip":
        raise TextSearchUnsupported(
            f"text search needs a CLIP model: this store's frames were embedded with "
            f"{f.embedding or 'no model'!r}. Index with `features.embedding: clip` and "
            f"`features.model: <local CLIP directory>`, or search by example with --image"
        )
    if not f.model:
        raise ConfigError("features.model must name the local CLIP directory the store was indexed with")
    if not texts or not all(t.strip() for t in texts):
        raise ConfigError("the text query is empty")
    import torch

    dev = resolve_device(f.device)
    with _LOCK:
        net, tok = _clip_text(f.model, dev)
    limit = int(getattr(net.config, "max_position_embeddings", 77))
    batch = tok(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt")
    with torch.inference_mode():
        out = net(**{k: v.to(dev) for k, v in batch.items() if k in ("input_ids", "attention_mask")})
    return l2_normalise(out.text_embeds.float().cpu().numpy())


def load_image(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """An image file as one (1, size, size, 3) uint8 frame, scaled like sampled video frames."""
    from PIL import Image, UnidentifiedImageError

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise MediaError(p, "image file does not exist")
    try:
        with Image.open(p) as im:
            rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaError(p, f"not a readable image ({exc})") from exc
    return np.array(rgb, dtype=np.uint8)[None]


def encode_image(path: str | os.PathLike[str], config: AstradupConfig) -> np.ndarray:
    """The (1, dim) frame embedding of an example image, by the config's embedder."""
    from astradup.features.base import make_extractor

    f = config.features
    if not f.embedding:
        raise ConfigError("search by image needs frame embeddings (features.embedding is empty)")
    params: dict = {"device": f.device, "batch_size": f.batch_size}
    if f.embedding in ("clip", "dinov2"):
        params["model"] = f.model
    return make_extractor(f.embedding, **params).extract(load_image(path, config.sampling.frame_size))  # type: ignore[attr-defined]
