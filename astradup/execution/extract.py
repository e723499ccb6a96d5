"""Per-video extraction: a pure, module-level function that Dask maps over files.

``extract_video`` is called eagerly in tests and mapped on a cluster in production; it returns
either the video's features or a :class:`Failure` record, never raising for a bad file.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass

import numpy as np

from astradup.config import AstradupConfig
from astradup.errors import AstradupError, NoAudioStreamError
from astradup.features.audio import AudioFeatures, audio_features, stream_audio_features
from astradup.features.base import FrameExtractor, make_extractor
from astradup.features.embedding import embed_every, video_descriptor
from astradup.features.preprocess import WHOLE_FRAME, content_frames_and_box
from astradup.features.quality import frame_quality
from astradup.features.video import VideoFeatures
from astradup.media.audio import iter_audio
from astradup.media.decode import sample_frames, sample_keyframes
from astradup.media.probe import probe

log = logging.getLogger(__name__)

# Audio beyond this is not fingerprinted (bounds memory for very long files).
MAX_AUDIO_SECONDS = 3 * 3600


@dataclass
class Failure:
    """One file that could not be processed, as recorded in the store's ``failures`` table."""

    path: str
    stage: str
    error_class: str
    message: str


def _hashes(cfg: AstradupConfig, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The configured hash of each frame and of its mirror image."""
    if cfg.features.hash == "phash":  # one pass hashes each frame and its mirror image
        return make_extractor("phash", hash_size=cfg.features.hash_size).extract_with_flip(frames)  # type: ignore[attr-defined]
    hasher = make_extractor(cfg.features.hash)
    return hasher.extract(frames), hasher.extract(np.ascontiguousarray(frames[:, :, ::-1]))  # type: ignore[attr-defined]


def _embedder(cfg: AstradupConfig) -> FrameExtractor | None:
    f = cfg.features
    if not f.embedding:
        return None
    params: dict[str, object] = {"device": f.device, "batch_size": f.batch_size}
    if f.embedding in ("clip", "dinov2"):
        params["model"] = f.model
        params["flip_invariant"] = f.mirror != "none"
    elif f.embedding == "mobilenetv2":
        params.update(mirror=f.mirror, runtime=f.runtime, compact_dim=f.compact_dim)
    return make_extractor(f.embedding, **params)  # type: ignore[return-value]


def embed_stride(cfg: AstradupConfig, n_frames: int, duration: float) -> int:
    """Every how many sampled frames the embedding model runs (``features.embed_fps``): the rate
    ``n_frames`` were sampled at over ``duration`` seconds, over ``embed_fps``, rounded (so a
    keyframe sample or a long video's thinned one is embedded whole); 1 when ``embed_fps`` is 0."""
    fps = cfg.features.embed_fps
    if not fps or not duration or duration <= 0:
        return 1
    return max(1, int(round(n_frames / duration / fps)))


def _audio(path: str, has_audio: bool, cfg: AstradupConfig) -> tuple[AudioFeatures | None, float]:
    """The audio features of one file (None when ``features.audio`` is off) and the seconds taken."""
    t0 = time.perf_counter()
    aud = None
    if cfg.features.audio:
        rate = cfg.sampling.audio_rate
        if has_audio:
            try:
                aud = stream_audio_features(iter_audio(path, rate, MAX_AUDIO_SECONDS), rate,
                                            make_extractor("chromaprint"))  # type: ignore[arg-type]
            except NoAudioStreamError:
                aud = audio_features(None, rate)
            except AstradupError as exc:
                log.warning("%s: audio unusable (%s); audio features marked failed", path, exc)
                aud = audio_features(None, rate)
                aud.status = "failed"
        else:
            aud = audio_features(None, rate)
    return aud, time.perf_counter() - t0


def extract_video(path: str, cfg: AstradupConfig, threads: int = 1) -> VideoFeatures | Failure:
    """Probe, sample, hash, embed and fingerprint one file. Bad files come back as ``Failure``.

    ``threads`` > 1 is for one file on an otherwise idle machine (a query): the audio is
    extracted in a thread while the video decodes, and the video is decoded in ``threads``
    stretches at once (:class:`astradup.media.decode.PyAVDecoder`'s ``segments``). The features
    are the same as with one thread; only ``timings`` differ (``audio`` then overlaps the others).
    Dask workers keep the default: one file per core already uses every core.
    """
    stage = "probe"
    timings: dict[str, float] = {}
    pool = None
    try:
        t0 = time.perf_counter()
        info = probe(path, max_pixels=cfg.sampling.max_pixels)
        tp = time.perf_counter()
        timings["probe"] = tp - t0
        audio_job = None
        if threads > 1 and cfg.features.audio and info.has_audio:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(1)
            audio_job = pool.submit(_audio, path, info.has_audio, cfg)
        stage = "decode"
        s = cfg.sampling
        sample = None
        if s.keyframes_only:
            sample = sample_keyframes(path, info.duration, s.frame_size, s.max_frames, info.rotation)
        if sample is None:
            sample = sample_frames(path, info.duration, s.rate(info.duration), s.frame_size, s.decoder, s.max_frames,
                                   info.rotation, segments=max(1, threads))
        frames, box = content_frames_and_box(sample.frames, inset=s.inset)
        t1 = time.perf_counter()
        timings["decode"] = t1 - tp
        stage = "hash"
        ph, ph_flip = _hashes(cfg, frames)
        ph_full = ph_full_flip = None
        if tuple(box) != WHOLE_FRAME:  # the box cuts: keep the whole frame's hashes too
            ph_full, ph_full_flip = _hashes(cfg, sample.frames)
        stage = "quality"
        quality = frame_quality(frames)  # timed with the hashes: both are cheap per-frame passes
        t2 = time.perf_counter()
        timings["hash"] = t2 - t1
        stage = "embed"
        emb = desc = None
        embedder = _embedder(cfg)
        if embedder is not None:
            emb = embed_every(embedder.extract, frames, embed_stride(cfg, len(frames), info.duration))
            desc = video_descriptor(emb)
        t3 = time.perf_counter()
        timings["embed"] = t3 - t2
        stage = "audio"
        aud, timings["audio"] = audio_job.result() if audio_job is not None else _audio(path, info.has_audio, cfg)
        return VideoFeatures(
            path=path,
            info=info.to_dict(),
            timestamps=sample.timestamps,
            phash=ph,
            phash_flip=ph_flip,
            embeddings=emb,
            quality=quality,
            descriptor=desc,
            audio=aud,
            decoder=sample.backend,
            timings=timings,
            content_box=(round(box[0], 6), round(box[1], 6), round(box[2], 6), round(box[3], 6)),
            phash_full=ph_full,
            phash_full_flip=ph_full_flip,
        )
    except AstradupError as exc:
        return Failure(path, stage, type(exc).__name__, str(exc))
    except Exception as exc:  # noqa: BLE001 - any crash on one file is recorded, the run goes on
        log.debug("unexpected error on %s:\n%s", path, traceback.format_exc())
        return Failure(path, stage, type(exc).__name__, f"{path}: unexpected {type(exc).__name__} during {stage}: {exc}")
    finally:
        if pool is not None:
            pool.shutdown(wait=True)  # a failed decode still waits for the audio thread
