"""Audio as mono float32 at a fixed rate, decoded in a stream of chunks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from astradup.errors import DecodeError, NoAudioStreamError
from astradup.media.probe import _open


def iter_audio(path: str | os.PathLike[str], rate: int = 11025, max_seconds: float | None = None) -> Iterator[np.ndarray]:
    """Yield mono float32 chunks in [-1, 1] at ``rate`` Hz, never holding the whole track."""
    import av

    p = os.fspath(path)
    container = _open(p)
    try:
        if not container.streams.audio:
            raise NoAudioStreamError(p, "no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        limit = None if max_seconds is None else int(max_seconds * rate)
        done = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    if limit is not None and done + len(chunk) > limit:
                        chunk = chunk[: limit - done]
                    done += len(chunk)
                    yield chunk
                    if limit is not None and done >= limit:
                        return
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except av.error.FFmpegError as exc:
            if done == 0:
                raise DecodeError(p, f"audio stream cannot be decoded ({exc})") from exc
    finally:
        container.close()


def load_audio(path: str | os.PathLike[str], rate: int = 11025, max_seconds: float | None = None) -> np.ndarray:
    """The whole (or first ``max_seconds`` of the) audio track as one mono float32 array."""
    chunks = list(iter_audio(path, rate, max_seconds))
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)
