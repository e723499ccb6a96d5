"""Frozen configuration dataclasses: the single source of truth for the CLI, notebooks and pipelines.

A config can be built from defaults, a YAML/JSON file (``AstradupConfig.from_file``), and the
environment variables ``DUPLICATE_THRESHOLD``, ``NEAR_DUPLICATE_THRESHOLD`` and
``SIMILAR_THRESHOLD`` (applied last, by ``from_env``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from astradup.errors import ConfigError

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts",
    ".flv", ".wmv", ".ogv", ".3gp", ".mts", ".vob", ".divx",
)


MAX_SHORT_FPS = 4.0  # the fastest rate sampling.min_frames raises a short video's sampling to


@dataclass(frozen=True)
class SamplingConfig:
    """How frames and audio are taken from a video.

    Attributes:
        fps: frames sampled per second of video (> 0).
        frame_size: side of the square RGB frames the decoder hands over (pixels).
        decoder: ``"pyav"`` (default), ``"decord"`` or ``"torchcodec"``; failures fall back to PyAV.
        max_frames: cap on sampled frames per video (long files are sampled more sparsely).
        audio_rate: sample rate of the mono float32 audio (Hz).
        max_pixels: frames larger than this (width x height) are rejected, protecting memory.
        keyframes_only: decode only keyframes (one frame per group of pictures, ~20x faster than
            1 fps on long-GOP H.264), falling back to ``fps`` when keyframes are too sparse. Meant
            for quick queries (``astradup query --fast``); the library is indexed at ``fps``.
        min_frames: short videos are sampled faster than ``fps`` so they get at least this many
            frames (at most ``MAX_SHORT_FPS`` per second): a copy of a 2 s stretch then has 4+
            frames to align instead of 2 (0: always ``fps``).
        inset: describe a picture-in-picture inset instead of the whole frame when one is found
            (astradup.features.preprocess.inset_box), so a video shown inside another one matches.
    """

    fps: float = 1.0
    frame_size: int = 160
    decoder: str = "pyav"
    max_frames: int = 1800
    audio_rate: int = 11025
    max_pixels: int = 7680 * 4320
    keyframes_only: bool = False
    min_frames: int = 16
    inset: bool = True

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ConfigError(f"sampling.fps must be > 0, but got {self.fps}")
        if not 16 <= self.frame_size <= 1024:
            raise ConfigError(f"sampling.frame_size must be in [16, 1024], but got {self.frame_size}")
        if self.min_frames < 0:
            raise ConfigError(f"sampling.min_frames must be >= 0, but got {self.min_frames}")
        if self.max_frames < 1:
            raise ConfigError(f"sampling.max_frames must be >= 1, but got {self.max_frames}")
        if not 4000 <= self.audio_rate <= 48000:
            raise ConfigError(f"sampling.audio_rate must be in [4000, 48000], but got {self.audio_rate}")

    def rate(self, duration: float) -> float:
        """Frames per second to sample a video of ``duration`` seconds at: ``fps``, doubled for short
        videos until they get ``min_frames`` frames, never above ``MAX_SHORT_FPS`` (or ``fps`` if
        higher). Rates are ``fps`` times a power of two, so two videos' frames always fall on a
        common grid (:func:`astradup.scoring.similarity.common_rate` compares them on it)."""
        r = self.fps
        if self.min_frames <= 0 or not duration or duration <= 0:
            return r
        while r * duration < self.min_frames and r * 2 <= MAX_SHORT_FPS:
            r *= 2
        return r


#: Frame hash and embedding extractors a config may name: the registry's names
#: (``astradup.features.base.EXTRACTORS``; a test checks that the two agree).
HASH_BACKENDS: tuple[str, ...] = ("phash", "pdq")
EMBEDDING_BACKENDS: tuple[str, ...] = ("mobilenetv2", "clip", "dinov2")


@dataclass(frozen=True)
class FeatureConfig:
    """Which extractors run, and their parameters.

    Attributes:
        hash: frame hash extractor name (``"phash"`` or ``"pdq"``).
        hash_size: pHash side; 16 gives 256-bit hashes.
        embedding: deep embedding extractor name (``"mobilenetv2"``, ``"clip"``, ``"dinov2"``),
            or ``""`` to skip embeddings.
        model: model id or local directory for the transformers extractors.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (cuda when present).
        batch_size: frames per forward pass.
        audio: run Chromaprint and MFCC extraction.
        mirror: how MobileNetV2 embeddings are made mirror-invariant: ``"two_pass"`` (the sum
            of the frame's and its mirror image's embeddings), ``"symmetric"`` (one forward pass
            through mirror-symmetrised kernels: exactly invariant and half the work, but measured
            to separate copies from similar content less well; see benchmarks/RESULTS.md) or
            ``"none"``. CLIP and DINOv2 use two passes unless ``"none"``.
        runtime: ``"onnx"`` (ONNX Runtime on CPU, exported once from the shipped weights) or
            ``"torch"`` (eager) for MobileNetV2; the outputs agree to ~1e-5, so the runtime is
            not part of the feature key. A CUDA device always runs torch.
        compact_dim: MobileNetV2 only: frame embeddings are projected on this many directions
            of a basis shipped with the package (fitted on real Debian clips; see
            ``astradup/features/models/``) and stored, indexed and compared at that size;
            0 keeps the full 1280 dimensions (5 KB a frame in the store and again in the index).
        embed_fps: frames a second the embedding model sees at most: where a short video is
            sampled faster (``sampling.min_frames``), every ``rate / embed_fps``-th frame (and the
            last) is embedded and the frames between get the normalised linear interpolation of
            their neighbours' embeddings, while hashes stay at the full rate; 0 embeds every
            sampled frame.
    """

    hash: str = "phash"
    hash_size: int = 16
    embedding: str = "mobilenetv2"
    model: str = ""
    device: str = "auto"
    batch_size: int = 32
    audio: bool = True
    mirror: str = "two_pass"
    runtime: str = "onnx"
    compact_dim: int = 0
    embed_fps: float = 0.0

    def __post_init__(self) -> None:
        if self.hash not in HASH_BACKENDS:
            raise ConfigError(f"features.hash {self.hash!r} is unknown; choose one of {list(HASH_BACKENDS)}")
        if self.embedding and self.embedding not in EMBEDDING_BACKENDS:
            raise ConfigError(f"features.embedding {self.embedding!r} is unknown; choose one of "
                              f"{list(EMBEDDING_BACKENDS)} (or \"\" for none)")
        if self.hash_size not in (8, 16, 32):
            raise ConfigError(f"features.hash_size must be 8, 16 or 32, but got {self.hash_size}")
        if self.batch_size < 1:
            raise ConfigError(f"features.batch_size must be >= 1, but got {self.batch_size}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"features.device must be auto, cpu or cuda, but got {self.device!r}")
        if self.mirror not in ("symmetric", "two_pass", "none"):
            raise ConfigError(f"features.mirror must be symmetric, two_pass or none, but got {self.mirror!r}")
        if not _is_int(self.compact_dim) or not 0 <= self.compact_dim <= 128:
            raise ConfigError(f"features.compact_dim must be an integer in [0, 128] (0 = full 1280-d), but got {self.compact_dim!r}")
        if not isinstance(self.embed_fps, (int, float)) or isinstance(self.embed_fps, bool) or not 0 <= self.embed_fps <= 60:
            raise ConfigError(f"features.embed_fps must be a number in [0, 60] (0 = every sampled frame), but got {self.embed_fps!r}")
        if self.runtime not in ("onnx", "torch"):
            raise ConfigError(f"features.runtime must be onnx or torch, but got {self.runtime!r}")


SCORERS = ("learned", "rules")


@dataclass(frozen=True)
class FusionConfig:
    """How a pair's evidence becomes one score, and the class bands that score is cut into.

    Attributes:
        visual, audio, metadata: modality weights of the rule-based score (>= 0, renormalised over
            present modalities).
        exact, near, similar: lower bounds of the bands; ``exact >= near >= similar``. The one
            source of the bands: scoring, the visual calibration and the learned scorer all read them.
        scorer: ``"learned"`` (default): the calibrated probability of a copy from the pair model
            (:mod:`astradup.scoring.learned`) is the score; ``"rules"``: the weighted fusion of
            the modality scores.
        model: the learned scorer's model folder (written by ``astradup train``); ``""`` is the
            model shipped with AstraDup.
    """

    visual: float = 0.65
    audio: float = 0.25
    metadata: float = 0.10
    exact: float = 0.95
    near: float = 0.85
    similar: float = 0.70
    scorer: str = "learned"
    model: str = ""

    def __post_init__(self) -> None:
        for name in ("visual", "audio", "metadata"):
            if getattr(self, name) < 0:
                raise ConfigError(f"fusion.{name} weight must be >= 0, but got {getattr(self, name)}")
        if self.visual + self.audio + self.metadata <= 0:
            raise ConfigError("fusion weights must not all be zero")
        if self.scorer not in SCORERS:
            raise ConfigError(f"fusion.scorer {self.scorer!r} is unknown; choose one of {list(SCORERS)}")
        if not 0 <= self.similar <= self.near <= self.exact <= 1:
            raise ConfigError(
                "fusion bands must satisfy 0 <= similar <= near <= exact <= 1, but got "
                f"similar={self.similar}, near={self.near}, exact={self.exact}"
            )


@dataclass(frozen=True)
class MatchConfig:
    """Candidate retrieval and pair verification.

    Attributes:
        k: neighbours retrieved per frame and per video descriptor.
        min_candidate_sim: cosine similarity a frame neighbour must reach to vote for a pair.
        hash_radius: Hamming radius (bits of the 256-bit hash) for hash-based candidates.
        min_segment: shortest aligned segment reported as a copy (seconds).
        min_score: pairs scoring below are not written (0 writes every candidate).
        frame_threshold, gap: alignment parameters (cosine a frame pair must beat; skip cost).
        q_low, q_similar, q_near, q_exact: aligned-path similarities that map to visual scores
            0, 0.70, 0.85 and 0.95 (piecewise linear; 1.0 maps to 1.0).
        exact_hash: mean hash agreement (1 - Hamming/bits) along the path needed for "exact".
        exact_coverage: share of both videos the path must cover for "exact".
        distinct_margin: a path must beat the matrix's median similarity by this much to be a
            copy rather than similar content; otherwise the visual score is capped at 0.80.
        partial_margin: the same margin for a path that covers under ``partial_coverage`` of a video.
        partial_coverage: a copy covering less than this share of either video is "partial".
        reduce_above: sampled-frame count of the library above which the frame index holds
            PCA-reduced keyframes instead of every frame's full embedding (0 = always reduce).
            At or below it nothing changes. Above it, candidate search also skips the all-pairs
            hash source (a brute-force Hamming range search grows as frames^2); hashes still
            count when pairs are verified.
        index_dim: dimension of the reduced frame index (below the embedding dimension).
        keyframe_sim: reduced index only: a frame whose embedding cosine to the last kept frame
            of its video is at least this is not indexed (a near repeat within a shot); in (0, 1].
        min_quality: picture detail (RMS Laplacian of the 32x32 grey thumbnail, grey levels; see
            :mod:`astradup.features.quality`) a frame needs to count as evidence of a copy. Flat,
            near-black and near-white frames and smooth gradients score about 0-2. 0 disables it.
        geometric: check pairs the hashes do not confirm by matching keypoints of a few aligned
            frame pairs decoded from the media files (:mod:`astradup.scoring.geometry`): same
            pixels in one steady framing, or only the same subject. Off: that evidence is NaN.
        geometric_hash_hit: pairs whose hashes agree on at least this share of the path's frames
            are not checked (their pixels are already known to agree).
        exact_check: learned scorer only: a pair the model leaves under its operating point but
            at even odds or more is looked at again with its moments lined up (the frames of one
            video around each probe's time, :mod:`astradup.scoring.exact`); where the same moving
            pictures are there, it is a copy. Off: the model's probability stands.
        expand_top: the pair graph (:mod:`astradup.scoring.graph`): after verification, also
            verify each pair of videos that are both copies of a common video (at least one of
            them whole; a partial copy links only where its hashes and motion confirm it) but
            were not retrieved as candidates, report ``near`` such a pair its own evidence calls
            ``similar`` or ``different``, and hold back to ``similar`` a partial match the verified pairs around
            it contradict. Each common video lends at most its ``expand_top`` best-scoring
            links; 0 turns the graph off. Copies of copies with compound edits (a crop against a
            picture-in-picture copy) look too different for the frame search, yet are copies of
            each other.
    """

    k: int = 20
    min_candidate_sim: float = 0.75
    hash_radius: int = 48
    min_segment: float = 1.0
    min_score: float = 0.5
    frame_threshold: float = 0.70
    gap: float = 0.15
    q_low: float = 0.60
    q_similar: float = 0.80
    q_near: float = 0.88
    q_exact: float = 0.97
    exact_hash: float = 0.90
    exact_coverage: float = 0.90
    distinct_margin: float = 0.012
    partial_margin: float = 0.05
    partial_coverage: float = 0.80
    reduce_above: int = 2_000_000
    index_dim: int = 64
    keyframe_sim: float = 0.9
    min_quality: float = 3.0
    geometric: bool = True
    geometric_hash_hit: float = 0.5
    exact_check: bool = True
    expand_top: int = 40

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"match.k must be >= 1, but got {self.k}")
        if not _is_int(self.expand_top) or self.expand_top < 0:
            raise ConfigError(f"match.expand_top must be an integer >= 0 (0 = off), but got {self.expand_top!r}")
        if not _is_int(self.reduce_above) or self.reduce_above < 0:
            raise ConfigError(
                f"match.reduce_above must be an integer >= 0 (0 = always reduce), but got {self.reduce_above!r}"
            )
        if not _is_int(self.index_dim) or self.index_dim < 1:
            raise ConfigError(f"match.index_dim must be an integer >= 1, but got {self.index_dim!r}")
        ks = self.keyframe_sim
        if isinstance(ks, bool) or not isinstance(ks, (int, float)) or not 0 < ks <= 1:
            raise ConfigError(f"match.keyframe_sim must be a cosine in (0, 1], but got {ks!r}")
        if not self.min_quality >= 0:
            raise ConfigError(f"match.min_quality must be >= 0, but got {self.min_quality}")
        if not 0 <= self.min_score <= 1:
            raise ConfigError(f"match.min_score must be in [0, 1], but got {self.min_score}")
        if not self.q_low < self.q_similar <= self.q_near <= self.q_exact < 1:
            raise ConfigError(
                "match knots must satisfy q_low < q_similar <= q_near <= q_exact < 1, but got "
                f"{self.q_low}, {self.q_similar}, {self.q_near}, {self.q_exact}"
            )


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class AstradupConfig:
    """Everything a run needs; nested sections mirror the YAML file."""

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    match: MatchConfig = field(default_factory=MatchConfig)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AstradupConfig:
        """Build from a nested mapping; unknown keys raise :class:`ConfigError`."""
        return _build(cls, data or {}, "")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None) -> AstradupConfig:
        """Load YAML or JSON; ``None`` gives the defaults. Environment overrides apply after."""
        if path is None:
            return cls().with_env()
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file does not exist")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # noqa: BLE001 - any parse error is a config error
            raise ConfigError(f"{p}: cannot parse config ({exc})") from exc
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"{p}: config must be a mapping, but got {type(data).__name__}")
        return cls.from_dict(data).with_env()

    def with_env(self, environ: dict[str, str] | None = None) -> AstradupConfig:
        """Apply DUPLICATE_THRESHOLD, NEAR_DUPLICATE_THRESHOLD and SIMILAR_THRESHOLD."""
        env = os.environ if environ is None else environ
        updates: dict[str, Any] = {}
        for var, name in (
            ("DUPLICATE_THRESHOLD", "exact"),
            ("NEAR_DUPLICATE_THRESHOLD", "near"),
            ("SIMILAR_THRESHOLD", "similar"),
        ):
            if env.get(var, "").strip():
                try:
                    updates[name] = float(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var} must be a number, but got {env[var]!r}") from exc
        if not updates:
            return self
        return dataclasses.replace(self, fusion=dataclasses.replace(self.fusion, **updates))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | os.PathLike[str]) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    def replace(self, **dotted: Any) -> AstradupConfig:
        """Return a copy with ``section.field`` values replaced, e.g. ``replace(**{"fusion.near": 0.8})``."""
        data = self.to_dict()
        for key, value in dotted.items():
            section, _, name = key.partition(".")
            if section not in data or name not in data[section]:
                raise ConfigError(f"unknown config field {key!r}; choose one of {sorted(flat_fields())}")
            data[section][name] = value
        return AstradupConfig.from_dict(data)


def flat_fields() -> dict[str, Any]:
    """Every config field as ``section.field`` -> default value."""
    out: dict[str, Any] = {}
    for sec in fields(AstradupConfig):
        default = sec.default_factory()  # type: ignore[misc,operator]
        for f in fields(default):
            out[f"{sec.name}.{f.name}"] = getattr(default, f.name)
    return out


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {sorted(unknown)} in {where or 'config'}; valid: {sorted(known)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = known[name]
        sub = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if sub is not None and is_dataclass(sub):
            if not isinstance(value, dict):
                raise ConfigError(f"config section {where + name!r} must be a mapping")
            kwargs[name] = _build(type(sub), value, f"{where}{name}.")
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad config in {where or 'config'}: {exc}") from exc
