"""Audio fingerprints: Chromaprint (libchromaprint via pyacoustid, or FFmpeg's chromaprint muxer
where the library is missing: both give the same bits for the same PCM) and MFCC statistics.

Silence and missing audio streams are reported as such (``status``), never as a match.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable
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
        session = self.session(rate)
        session.feed(audio)
        return session.finish()

    def session(self, rate: int) -> _ChromaprintSession:
        """A streaming fingerprinter: ``feed`` chunks, then ``finish`` (same bits as ``extract``)."""
        return _ChromaprintSession(self.resolved_backend(), rate)


class _ChromaprintSession:
    def __init__(self, backend: str, rate: int):
        self.backend = backend
        self.rate = rate
        self.samples = 0
        if backend == "library":
            import chromaprint

            self._fp = chromaprint.Fingerprinter()
            self._fp.start(rate, 1)
        else:
            import threading

            import imageio_ffmpeg

            cmd = [
                imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1",
                "-i", "pipe:0", "-f", "chromaprint", "-fp_format", "raw", "pipe:1",
            ]
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self._out: list[bytes] = []
            # read stdout while we write, so a long track cannot fill the pipe and deadlock
            self._reader = threading.Thread(target=lambda: self._out.append(self._proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
            self._reader.start()

    def feed(self, audio: np.ndarray) -> None:
        self.samples += len(audio)
        pcm = _to_s16(audio)
        if self.backend == "library":
            self._fp.feed(pcm)
        else:
            self._proc.stdin.write(pcm)  # type: ignore[union-attr]

    def finish(self) -> np.ndarray:
        if self.backend == "library":
            if self.samples < self.rate:
                return np.zeros(0, dtype=np.uint32)
            import chromaprint

            raw, _version = chromaprint.decode_fingerprint(self._fp.finish())
            return np.asarray(raw, dtype=np.int64).astype(np.uint32)
        self._proc.stdin.close()  # type: ignore[union-attr]
        self._reader.join()
        err = self._proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
        if self._proc.wait() != 0:
            raise AstradupError(f"ffmpeg chromaprint failed: {err[-300:]}")
        if self.samples < self.rate:
            return np.zeros(0, dtype=np.uint32)
        return np.frombuffer(b"".join(self._out), dtype="<u4").copy()


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

        acc = _MFCCStats(self, rate)
        acc.feed(audio)
        return acc.finish()


class _MFCCStats:
    """Running MFCC mean/std over blocks of ``chunk_seconds`` (bounded memory)."""

    def __init__(self, mfcc: MFCC, rate: int):
        self.mfcc, self.rate = mfcc, rate
        self.step = max(2048, int(mfcc.chunk_seconds * rate))
        self.buf: list[np.ndarray] = []
        self.buffered = 0
        self.n = 0
        self.total = np.zeros(mfcc.n_mfcc)
        self.total_sq = np.zeros(mfcc.n_mfcc)

    def _block(self, block: np.ndarray) -> None:
        import librosa

        m = librosa.feature.mfcc(y=np.ascontiguousarray(block, dtype=np.float32), sr=self.rate, n_mfcc=self.mfcc.n_mfcc)
        m = m.astype(np.float64)
        self.n += m.shape[1]
        self.total += m.sum(axis=1)
        self.total_sq += np.square(m).sum(axis=1)

    def feed(self, audio: np.ndarray) -> None:
        self.buf.append(audio)
        self.buffered += len(audio)
        if self.buffered >= self.step:
            data = np.concatenate(self.buf)
            cut = (len(data) // self.step) * self.step
            for start in range(0, cut, self.step):
                self._block(data[start : start + self.step])
            self.buf, self.buffered = [data[cut:]], len(data) - cut

    def finish(self) -> np.ndarray:
        rest = np.concatenate(self.buf) if self.buf else np.zeros(0, np.float32)
        if len(rest) >= 2048 or (self.n == 0 and len(rest) > 0):
            if len(rest) >= 2048:
                self._block(rest)
        if self.n == 0:
            return np.zeros((2, self.mfcc.n_mfcc), dtype=np.float32)
        mean = self.total / self.n
        std = np.sqrt(np.maximum(self.total_sq / self.n - np.square(mean), 0.0))
        return np.stack([mean, std]).astype(np.float32)


def audio_features(audio: np.ndarray | None, rate: int, chromaprint: Chromaprint | None = None, mfcc: MFCC | None = None) -> AudioFeatures:
    """All audio features of one track; ``audio=None`` means the file has no audio stream."""
    return stream_audio_features(None if audio is None else [audio], rate, chromaprint, mfcc)


def stream_audio_features(chunks: Iterable[np.ndarray] | None, rate: int, chromaprint: Chromaprint | None = None,
                          mfcc: MFCC | None = None) -> AudioFeatures:
    """Audio features from a stream of mono float32 chunks, never holding the whole track: the
    fingerprinter and the MFCC statistics are fed chunk by chunk. ``None`` = no audio stream."""
    empty = np.zeros(0, dtype=np.uint32)
    mfcc = mfcc or MFCC()
    zeros = np.zeros(mfcc.n_mfcc, dtype=np.float32)
    if chunks is None:
        return AudioFeatures("missing", empty, zeros, zeros, 0.0)
    session = (chromaprint or Chromaprint()).session(rate)
    stats = _MFCCStats(mfcc, rate)
    n, sq = 0, 0.0
    try:
        for chunk in chunks:
            n += len(chunk)
            sq += float(np.square(chunk, dtype=np.float64).sum())
            session.feed(chunk)
            stats.feed(chunk)
    finally:
        fp = session.finish()
    rms = float(np.sqrt(sq / n)) if n else 0.0
    if rms < SILENCE_RMS:
        return AudioFeatures("silent", empty, zeros, zeros, rms)
    ms = stats.finish()
    return AudioFeatures("ok" if len(fp) else "silent", fp, ms[0], ms[1], rms)
