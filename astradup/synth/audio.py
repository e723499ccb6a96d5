"""Seeded melodies: the soundtracks of procedural sources and of "audio replaced" copies.

A plain sine or noise gives Chromaprint a flat chroma and a degenerate fingerprint, so each
soundtrack is a tune: a random walk over a scale with note lengths of one or two beats, a bass note
per bar and a few harmonics with a plucked envelope. Synthesised in NumPy (faster, and simpler to
keep deterministic, than a long ``aevalsrc`` expression) and written as 16-bit PCM WAV.
"""

from __future__ import annotations

import os
import wave

import numpy as np

RATE = 44100  # Hz

_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
}


def _midi_hz(note: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(note) - 69) / 12.0)


def _tone(freq: float, n: int, rate: int, harmonics: tuple[float, ...], decay: float) -> np.ndarray:
    t = np.arange(n) / rate
    wave_ = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(harmonics))
    attack = np.minimum(1.0, t / 0.008)  # 8 ms attack avoids clicks
    release = np.minimum(1.0, (n - np.arange(n)) / (0.02 * rate))
    return np.asarray(wave_ * attack * release * np.exp(-t / decay), dtype=np.float64)


def melody(seed: int, duration: float, rate: int = RATE) -> np.ndarray:
    """A seeded tune, mono float32 in [-1, 1], ``duration`` seconds long.

    The same seed always gives the same samples; different seeds give different keys, tempi,
    timbres and note sequences.

    Example:
        >>> x = melody(3, 2.0)
        >>> x.shape, x.dtype
        ((88200,), dtype('float32'))
    """
    rng = np.random.default_rng([seed, 0x6D656C])
    n_total = max(1, int(round(duration * rate)))
    out = np.zeros(n_total, dtype=np.float64)
    scale = _SCALES[list(_SCALES)[rng.integers(len(_SCALES))]]
    root = int(rng.integers(52, 64))
    beat = float(rng.uniform(0.16, 0.30))  # seconds
    n_h = int(rng.integers(2, 5))
    harmonics = tuple(float(0.6**k * rng.uniform(0.6, 1.0)) for k in range(n_h))
    decay = float(rng.uniform(0.15, 0.5))
    degree = int(rng.integers(0, len(scale)))
    t = 0.0
    while t < duration:
        beats = 2 if rng.random() < 0.3 else 1
        degree = int(
            np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2, 3, -3]), 0, 2 * len(scale) - 1)
        )
        octave, step = divmod(degree, len(scale))
        note = root + 12 * octave + scale[step]
        start = int(t * rate)
        n = min(int(beats * beat * rate), n_total - start)
        if n > 0 and rng.random() > 0.08:  # an occasional rest
            out[start : start + n] += _tone(float(_midi_hz(note)), n, rate, harmonics, decay)
        t += beats * beat
    bar = 4 * beat
    t = 0.0
    while t < duration:  # bass: the root or the fifth, one note per bar
        start = int(t * rate)
        n = min(int(bar * rate), n_total - start)
        if n > 0:
            note = root - 12 + (0 if rng.random() < 0.6 else 7)
            out[start : start + n] += 0.5 * _tone(
                float(_midi_hz(note)), n, rate, (1.0, 0.3), 2 * decay
            )
        t += bar
    peak = float(np.max(np.abs(out))) or 1.0
    return (0.7 * out / peak).astype(np.float32)


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, rate: int = RATE) -> None:
    """Write mono float samples in [-1, 1] as 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(os.fspath(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(pcm.tobytes())
