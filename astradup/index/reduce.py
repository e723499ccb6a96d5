"""PCA to a small dimension before indexing: the frame index at library scale needs it.

A 1280-d float32 embedding is 5 KB; 60 frames of a million videos would be 300 GB. Deep
embeddings have most of their variance in the first ~100 components, so the feature stage (or the
execution layer, before indexing) projects them to 64-128 d with a PCA fitted on a sample, and the
index searches the projected, re-normalised vectors. Cosines after projection approximate the
original ones; thresholds such as ``min_candidate_sim`` are tuned on the projected vectors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from astradup.errors import ConfigError, IndexError_
from astradup.index._common import as_vectors, normalise_rows


class PCAReducer:
    """Centre, project on the top ``out_dim`` principal axes, and L2-normalise.

    Args:
        out_dim: output dimension.
        sample_max: rows used by :meth:`fit` (a seeded random subset when there are more).
        seed: sampling seed.

    Example:
        >>> pca = PCAReducer(64).fit(frame_embeddings)   # (n, 1280) float32
        >>> small = pca.transform(frame_embeddings)      # (n, 64) unit vectors
    """

    def __init__(self, out_dim: int, sample_max: int = 100_000, seed: int = 0):
        if out_dim < 1:
            raise ConfigError(f"out_dim must be >= 1, but got {out_dim}")
        self.out_dim = int(out_dim)
        self.sample_max = int(sample_max)
        self.seed = int(seed)
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.explained_variance_ratio_: float | None = None

    @property
    def in_dim(self) -> int | None:
        return None if self.components_ is None else int(self.components_.shape[1])

    def fit(self, x: np.ndarray) -> PCAReducer:
        """Fit on rows of ``x`` (n, d) (L2-normalised first, like the vectors the index sees)."""
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            raise IndexError_("PCA input must be a 2-D numpy float array (n, d)")
        if x.shape[1] < self.out_dim:
            raise IndexError_(f"cannot reduce {x.shape[1]}-d vectors to out_dim={self.out_dim}")
        if x.shape[0] > self.sample_max:
            rows = np.sort(
                np.random.default_rng(self.seed).choice(x.shape[0], self.sample_max, replace=False)
            )
            x = x[rows]
        if x.shape[0] < 2:
            raise IndexError_(f"PCA needs at least 2 rows to fit, but got {x.shape[0]}")
        s = normalise_rows(as_vectors(x, x.shape[1], "PCA input"), "PCA input").astype(np.float64)
        mean = s.mean(axis=0)
        s -= mean
        cov = s.T @ s / (s.shape[0] - 1)
        import scipy.linalg

        d = cov.shape[0]
        # only the top out_dim eigenpairs: several times faster than a full eigh at d=1280
        vals, vecs = scipy.linalg.eigh(cov, subset_by_index=[d - self.out_dim, d - 1])
        top = np.argsort(vals)[::-1]
        comps = vecs[:, top].T
        # deterministic sign: largest loading of each axis positive
        signs = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
        comps *= np.where(signs == 0, 1.0, signs)[:, None]
        self.mean_ = mean.astype(np.float32)
        self.components_ = comps.astype(np.float32)
        total = float(np.trace(cov))
        self.explained_variance_ratio_ = float(vals.clip(min=0).sum() / total) if total > 0 else 1.0
        return self

    def transform(self, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Project rows of ``x`` to unit vectors of ``out_dim`` (float32), in batches."""
        if self.components_ is None or self.mean_ is None:
            raise IndexError_("PCAReducer.transform called before fit")
        d = self.components_.shape[1]
        as_vectors(x, d, "PCA input", copy=False)
        out = np.empty((x.shape[0], self.out_dim), np.float32)
        for start in range(0, x.shape[0], batch_size):
            b = normalise_rows(
                np.array(x[start : start + batch_size], dtype=np.float32), "PCA input"
            )
            b -= self.mean_
            y = b @ self.components_.T
            norms = np.linalg.norm(y, axis=1, keepdims=True)
            out[start : start + batch_size] = y / np.where(norms > 0, norms, 1.0)
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        if self.components_ is None or self.mean_ is None:
            raise IndexError_("cannot save an unfitted PCAReducer")
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            np.savez(
                f,
                mean=self.mean_,
                components=self.components_,
                params=np.array([self.out_dim, self.sample_max, self.seed]),
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PCAReducer:
        p = Path(path)
        if not p.is_file():
            raise IndexError_(f"{p}: PCA file does not exist")
        with np.load(p, allow_pickle=False) as data:
            out_dim, sample_max, seed = (int(v) for v in data["params"])
            self = cls(out_dim, sample_max, seed)
            self.mean_ = data["mean"]
            self.components_ = data["components"]
        return self
