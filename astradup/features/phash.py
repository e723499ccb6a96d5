"""Perceptual hashes of sampled frames: pHash (batched, bit-identical to imagehash) and PDQ."""

from __future__ import annotations

import numpy as np

from astradup.features.base import FrameExtractor


def _gray_resized(frames: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(frames), side, side), dtype=np.float64)
    for i, f in enumerate(frames):
        img = Image.fromarray(f).convert("L").resize((side, side), Image.Resampling.LANCZOS)
        out[i] = np.asarray(img, dtype=np.float64)
    return out


class PHash(FrameExtractor):
    """256-bit pHash (``hash_size=16``) per frame, packed to uint8 (N, hash_size**2 / 8).

    Same bits as ``imagehash.phash(Image.fromarray(frame), hash_size)`` (tested against it), but the
    DCTs run as one batch. ``with_flip=True`` also returns the hash of the mirrored frame, which
    costs nothing: mirroring negates the odd horizontal DCT coefficients.
    """

    name = "phash"

    def __init__(self, hash_size: int = 16, highfreq_factor: int = 4):
        self.hash_size = hash_size
        self.highfreq_factor = highfreq_factor

    def _low_dct(self, frames: np.ndarray) -> np.ndarray:
        from scipy.fft import dct

        side = self.hash_size * self.highfreq_factor
        pixels = _gray_resized(frames, side)
        coeffs = dct(dct(pixels, type=2, axis=1), type=2, axis=2)
        return coeffs[:, : self.hash_size, : self.hash_size]

    def _bits(self, low: np.ndarray) -> np.ndarray:
        flat = low.reshape(len(low), -1)
        med = np.median(flat, axis=1, keepdims=True)
        return np.packbits(flat > med, axis=1)

    def extract(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros((0, self.hash_size**2 // 8), dtype=np.uint8)
        return self._bits(self._low_dct(frames))

    def extract_with_flip(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of the frames and of their horizontal mirror images, from one DCT."""
        if len(frames) == 0:
            empty = np.zeros((0, self.hash_size**2 // 8), dtype=np.uint8)
            return empty, empty
        low = self._low_dct(frames)
        sign = np.where(np.arange(self.hash_size) % 2 == 1, -1.0, 1.0)
        return self._bits(low), self._bits(low * sign[None, None, :])


class PDQ(FrameExtractor):
    """Meta's PDQ hash (256 bits) per frame via ``pdqhash``, packed to uint8 (N, 32)."""

    name = "pdq"

    def __init__(self, hash_size: int = 16):
        self.hash_size = hash_size  # PDQ is always 256 bits; kept for a uniform config

    def extract(self, frames: np.ndarray) -> np.ndarray:
        import pdqhash

        out = np.zeros((len(frames), 32), dtype=np.uint8)
        for i, f in enumerate(frames):
            bits, _quality = pdqhash.compute(np.ascontiguousarray(f))
            out[i] = np.packbits(bits.astype(bool))
        return out


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances (bits) between packed hash rows of ``a`` (N, B) and ``b`` (M, B)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.int32)
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.bitwise_count(x).sum(axis=2, dtype=np.int32)
