"""Which registered extractors a configuration runs, with which parameters, and the feature key
derived from them.

One specification serves both ends: extraction builds its extractors from it
(:meth:`ExtractorSpec.build`), and the store's feature key, which decides what ``astradup index``
re-extracts, hashes the same specification: each extractor's registry name, its class's
``version`` and every constructor parameter (defaults included) except those that only choose how
it runs (``execution_params``: device, batch size, runtime). A new extractor, a new parameter or a
changed default therefore changes the key without anyone editing it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from astradup.config import AstradupConfig
from astradup.features.base import Extractor, extractor_class, make_extractor
from astradup.features.preprocess import INSET_VERSION

#: Version of the whole-frame hashes kept beside the content box's (1: since the eighth session).
WHOLE_FRAME_HASHES = 1


@dataclass(frozen=True)
class ExtractorSpec:
    """A registered extractor and the parameters it is built with.

    Example:
        >>> spec = ExtractorSpec("phash", {"hash_size": 8})
        >>> spec.build()
        PHash(hash_size=8, highfreq_factor=4)
        >>> spec.identity()
        {'name': 'phash', 'version': 1, 'params': {'hash_size': 8, 'highfreq_factor': 4}}
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> Extractor:
        """``make_extractor(name, **params)``."""
        return make_extractor(self.name, **self.params)

    def identity(self) -> dict[str, Any]:
        """What the features depend on: name, class version, and every constructor parameter
        (defaults filled in, sorted) that is not one of the class's ``execution_params``."""
        cls = extractor_class(self.name)
        sig = inspect.signature(cls.__init__)
        params = {k: p.default for k, p in sig.parameters.items()
                  if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        params.update(self.params)
        skip = set(cls.execution_params)
        return {"name": self.name, "version": cls.version,
                "params": {k: params[k] for k in sorted(params) if k not in skip}}


def extractor_specs(cfg: AstradupConfig) -> dict[str, ExtractorSpec]:
    """The extractors ``cfg`` runs on every video, by role: ``hash``, ``quality``, ``embedding``
    (when ``features.embedding`` is set), ``audio`` and ``audio_stats`` (when ``features.audio``).

    >>> sorted(extractor_specs(AstradupConfig()))
    ['audio', 'audio_stats', 'embedding', 'hash', 'quality']
    >>> extractor_specs(AstradupConfig())["embedding"].name
    'mobilenetv2'
    """
    f = cfg.features
    specs = {
        # one pass hashes each frame and its mirror image; only pHash takes the configured size
        "hash": ExtractorSpec(f.hash, {"hash_size": f.hash_size} if f.hash == "phash" else {}),
        "quality": ExtractorSpec("quality"),
    }
    if f.embedding:
        params: dict[str, Any] = {"device": f.device, "batch_size": f.batch_size}
        if f.embedding == "mobilenetv2":
            params.update(mirror=f.mirror, runtime=f.runtime, compact_dim=f.compact_dim)
        else:  # the transformers embedders: a model id, two passes unless mirror is "none"
            params.update(model=f.model, flip_invariant=f.mirror != "none")
        specs["embedding"] = ExtractorSpec(f.embedding, params)
    if f.audio:
        specs["audio"] = ExtractorSpec("chromaprint")
        specs["audio_stats"] = ExtractorSpec("mfcc")
    return specs


def feature_key(cfg: AstradupConfig) -> str:
    """Hash of what extracted features depend on: the sampling settings and
    :func:`extractor_specs`' identities. Changing any of them re-indexes.

    Stores written before this key existed hold :func:`legacy_feature_key`'s;
    ``astradup index`` and ``astradup match`` relabel those rows once (see
    :func:`astradup.execution.runner.migrate_feature_keys`), so they are not re-extracted.
    """
    s = cfg.sampling
    spec: dict[str, Any] = {
        "sampling": {"fps": s.fps, "frame_size": s.frame_size, "max_frames": s.max_frames,
                     "audio_rate": s.audio_rate, "keyframes_only": s.keyframes_only, "inset": INSET_VERSION if s.inset else 0,
                     "min_frames": s.min_frames, "short_rates": "fps*2^k" if s.min_frames else "",
                     # the whole frame's hashes are kept where the content box cuts (VideoFeatures.phash_full)
                     "whole_frame_hashes": WHOLE_FRAME_HASHES},
        "extractors": {role: sp.identity() for role, sp in extractor_specs(cfg).items()},
    }
    if cfg.features.embedding and cfg.features.embed_fps:
        spec["embed_fps"] = float(cfg.features.embed_fps)
    blob = json.dumps(spec, sort_keys=True, default=repr)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def legacy_feature_key(cfg: AstradupConfig) -> str:
    """The feature key AstraDup wrote before it was derived from the registry (a hand-kept list
    of settings). Frozen: it exists only to recognise rows of older stores, and never changes."""
    s, f = cfg.sampling, cfg.features
    parts: list[Any] = [s.fps, s.frame_size, s.max_frames, s.audio_rate, f.hash, f.hash_size, f.embedding, f.model, f.audio]
    if s.keyframes_only:
        parts.append("keyframes_only")
    if s.inset:  # stores made before insets were cut out carry no "inset" here, so they re-index
        parts.append(f"inset={INSET_VERSION}")
    if s.min_frames:
        parts.append(f"min_frames={s.min_frames}:fps*2^k")
    if f.embedding and f.mirror != "two_pass":
        parts.append(f"mirror={f.mirror}")
    if f.embedding == "mobilenetv2" and f.compact_dim:
        parts.append(f"compact={f.compact_dim}")
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]
