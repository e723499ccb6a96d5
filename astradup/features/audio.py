"""Audio fingerprints: Chromaprint (libchromaprint via pyacoustid, or FFmpeg's chromaprint muxer
where the library is missing: both give the same bits for the same PCM) and MFCC statistics.

Silence and missing audio streams are reported as such (``status``), never as a match.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass

import numpy as np

from astradup.errors import AstradupError
from astradup.features.base import AudioExtractor

log = logging.getLogger(__name__)

SILENCE_RMS = 1e-3  # below this the track is called silent
ITEM_SECONDS = 4096 / 3 / 11025  # Chromaprint's step between fingerprint items (~0.124 s)


@dataclass
class AudioFeatures:
    """Per-video audio features.

    Attributes:
        status: ``ok``, ``silent``, ``missing`` (no audio stream) or ``failed``.
        fingerprint: raw Chromaprint items (uint32), ~8 per second.
        mfcc_mean, mfcc_std: MFCC statistics over the track (n_mfcc each).
        rms: root mean square level of the track.
    """

    status: str
    fingerprint: np.ndarray
    mfcc_mean: np.ndarray
    mfcc_std: np.ndarray
    rms: float


def _to_s16(audio: np.ndarray) -> bytes:
    out = np.empty(len(audio), dtype="<i2")
    for i in range(0, len(audio), 1 << 22):  # in blocks: no full-length float temporaries
        out[i : i + (1 << 22)] = np.clip(audio[i : i + (1 << 22)], -1.0, 1.0) * 32767.0
    return out.tobytes()


def _library_available() -> bool:
    try:
        import chromaprint  # pyacoustid's ctypes binding to libchromaprint

        return hasattr(chromaprint, "Fingerprinter") and chromaprint._libchromaprint is not None  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - missing shared library raises various errors
        return False


class Chromaprint(AudioExtractor):
    """Raw Chromaprint fingerprint of the whole track (uint32 items).

    ``backend``: ``"auto"`` (library when present, else FFmpeg), ``"library"`` or ``"ffmpeg"``.
    """

    name = "chromaprint"

    def __init__(self, backend: str = "auto"):
        self.backend = backend

    def resolved_backend(self) -> str:
        if self.backend == "auto":
            return "library" if _library_available() else "ffmpeg"
        return self.backend

    def extract(self, audio: np.ndarray, rate: int) -> np.ndarray:
        if len(audio) < rate:  # Chromaprint needs about a second to produce an item
            return np.zeros(0, dtype=np.uint32)
        pcm = _to_s16(audio)
        if self.resolved_backend() == "library":
            import chromaprint

            fp = chromaprint.Fingerprinter()
            fp.start(rate, 1)
            fp.feed(pcm)
            raw, _version = chromaprint.decode_fingerprint(fp.finish())
            return np.asarray(raw, dtype=np.int64).astype(np.uint32)
        return _ffmpeg_chromaprint(pcm, rate)


def _ffmpeg_chromaprint(pcm: bytes, rate: int) -> np.ndarray:
    import imageio_ffmpeg

    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1",
        "-i", "pipe:0", "-f", "chromaprint", "-fp_format", "raw", "pipe:1",
    ]
    proc = subprocess.run(cmd, input=pcm, capture_output=True, check=False)
    if proc.returncode != 0:
        raise AstradupError(f"ffmpeg chromaprint failed: {proc.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(proc.stdout, dtype="<u4").copy()


class MFCC(AudioExtractor):
    """MFCC statistics (librosa): mean and standard deviation of ``n_mfcc`` coefficients."""

    name = "mfcc"

    def __init__(self, n_mfcc: int = 20, chunk_seconds: float = 60.0):
        self.n_mfcc = n_mfcc
        self.chunk_seconds = chunk_seconds

    def extract(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """(2, n_mfcc): mean and standard deviation over all frames, computed chunk by chunk so a
        long track never needs its whole spectrogram in memory."""
        if len(audio) < 2048:
            return np.zeros((2, self.n_mfcc), dtype=np.float32)
        import librosa

        step = max(2048, int(self.chunk_seconds * rate))
        n, total, total_sq = 0, np.zeros(self.n_mfcc), np.zeros(self.n_mfcc)
        for start in range(0, len(audio), step):
            chunk = audio[start : start + step]
            if len(chunk) < 2048 and n:
                break
            m = librosa.feature.mfcc(y=np.ascontiguousarray(chunk, dtype=np.float32), sr=rate, n_mfcc=self.n_mfcc).astype(np.float64)
            n += m.shape[1]
            total += m.sum(axis=1)
            total_sq += np.square(m).sum(axis=1)
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - np.square(mean), 0.0))
        return np.stack([mean, std]).astype(np.float32)


def audio_features(audio: np.ndarray | None, rate: int, chromaprint: Chromaprint | None = None, mfcc: MFCC | None = None) -> AudioFeatures:
    """All audio features of one track; ``audio=None`` means the file has no audio stream."""
    empty = np.zeros(0, dtype=np.uint32)
    mfcc = mfcc or MFCC()
    zeros = np.zeros(mfcc.n_mfcc, dtype=np.float32)
    if audio is None:
        return AudioFeatures("missing", empty, zeros, zeros, 0.0)
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    if rms < SILENCE_RMS:
        return AudioFeatures("silent", empty, zeros, zeros, rms)
    fp = (chromaprint or Chromaprint()).extract(audio, rate)
    stats = mfcc.extract(audio, rate)
    return AudioFeatures("ok" if len(fp) else "silent", fp, stats[0], stats[1], rms)
