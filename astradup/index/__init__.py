"""astradup.index: FAISS retrieval of candidate pairs (no all-pairs comparison anywhere).

Pure functions and small objects over numpy arrays; faiss is imported lazily inside them, and Dask
is never touched here. One module reads the store: :mod:`astradup.index.frames` keeps the frame
index beside it (full or PCA-reduced, one manifest, extended when the library grows).

- :class:`VectorIndex`: cosine search on float embeddings (flat, IVF or HNSW; GPU when present).
- :class:`BinaryHashIndex`: Hamming search on packed perceptual hashes (flat or multi-index hash).
- :func:`candidate_pairs`: frame, video-descriptor and hash neighbours -> one row per video pair.
- :func:`select_keyframes`: drop near-repeated frames before indexing.
- :class:`PCAReducer`: project embeddings to 64-128 d before indexing.
"""

from __future__ import annotations

from astradup.index.binary import BINARY_KINDS, BinaryHashIndex
from astradup.index.candidates import (
    ALL_PAIRS_FLAT_MAX,
    CANDIDATE_COLUMNS,
    candidate_pairs,
    select_keyframes,
)
from astradup.index.reduce import PCAReducer
from astradup.index.vector import VECTOR_KINDS, VectorIndex, default_nlist

__all__ = [
    "ALL_PAIRS_FLAT_MAX",
    "BINARY_KINDS",
    "CANDIDATE_COLUMNS",
    "VECTOR_KINDS",
    "BinaryHashIndex",
    "PCAReducer",
    "VectorIndex",
    "candidate_pairs",
    "default_nlist",
    "select_keyframes",
]
