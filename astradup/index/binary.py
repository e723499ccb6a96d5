"""Hamming-distance retrieval over packed binary hashes (e.g. a 256-bit pHash is 32 uint8 bytes).

Index kinds (``kind``):

- ``"flat"``: exact brute force (``IndexBinaryFlat``, popcount). A 256-bit comparison costs a few
  nanoseconds, so flat stays the right choice up to millions of codes; on a GPU it becomes
  ``GpuIndexBinaryFlat`` when faiss has it.
- ``"multihash"``: multi-index hashing (``IndexBinaryMultiHash``): the code is cut into ``nhash``
  substrings of ``hash_bits`` bits, each with its own hash table; a query probes every key within
  ``nflip`` bit flips of each of its substrings and verifies the candidates with the full distance.
  Range search is exact: by the pigeonhole principle a code within ``radius`` bits differs in at
  most ``radius // nhash`` bits on some substring, so range search sets
  ``nflip = radius // nhash`` (unless ``nflip`` was given). k-NN search is approximate (it sees only
  codes within ``nflip`` of some substring).
- ``"hash"``: one table on the first ``hash_bits`` bits (``IndexBinaryHash``). Approximate; cheap
  when copies share their leading bits.
- ``"auto"`` (default): ``flat`` up to ``flat_max`` codes, ``multihash`` above. Multi-index hashing
  pays off only when the radius is small relative to the code (about ``radius < nbits / 8``); at the
  default pHash radius of 48 of 256 bits flat is usually faster, so ``flat_max`` is high.

``add`` only buffers; the structure is built on the first search or save, later ``add`` calls
extend it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from astradup.errors import ConfigError, IndexError_, UnknownBackendError
from astradup.index._common import (
    GPU_MAX_K,
    QueuedIndex,
    as_codes,
    check_k,
    check_use_gpu,
    filter_csr,
    load_faiss,
    range_via_knn,
    resolve_gpu,
)

log = logging.getLogger(__name__)

BINARY_KINDS = ("auto", "flat", "hash", "multihash")


class BinaryHashIndex(QueuedIndex):
    """Hamming search on packed uint8 codes, with int64 ids kept beside FAISS.

    Args:
        nbits: bits per code (a multiple of 8); codes are ``(n, nbits // 8)`` uint8.
        kind: ``"auto"``, ``"flat"``, ``"hash"`` or ``"multihash"`` (see the module docstring).
        flat_max: largest code count ``"auto"`` keeps flat.
        nhash: substrings of ``"multihash"``; ``None`` = ``nbits // hash_bits``.
        hash_bits: bits per hash-table key (``"hash"`` and ``"multihash"``).
        nflip: bit flips probed per key; ``None`` = exact for range search, 2 for k-NN search.
        use_gpu: ``"auto"``, ``"gpu"`` or ``"cpu"``; only flat codes move to a GPU.
    """

    large_kind = "multihash"

    def __init__(
        self,
        nbits: int = 256,
        kind: str = "auto",
        flat_max: int = 5_000_000,
        nhash: int | None = None,
        hash_bits: int = 16,
        nflip: int | None = None,
        use_gpu: str | bool = "auto",
    ):
        if kind not in BINARY_KINDS:
            raise UnknownBackendError(
                f"binary index kind {kind!r} is unknown; choose one of {list(BINARY_KINDS)}"
            )
        if (
            isinstance(nbits, bool)
            or not isinstance(nbits, (int, np.integer))
            or nbits < 8
            or nbits % 8
        ):
            raise ConfigError(f"nbits must be a positive multiple of 8, but got {nbits!r}")
        if not 1 <= hash_bits <= min(nbits, 32):
            raise ConfigError(f"hash_bits must be in [1, {min(nbits, 32)}], but got {hash_bits}")
        if nhash is not None and not 1 <= nhash * hash_bits <= nbits:
            raise ConfigError(
                f"nhash * hash_bits must be in [1, nbits={nbits}], but got {nhash} * {hash_bits}"
            )
        if nflip is not None and nflip < 0:
            raise ConfigError(f"nflip must be >= 0 or None, but got {nflip}")
        if flat_max < 0:
            raise ConfigError(f"flat_max must be >= 0, but got {flat_max}")
        self.nbits = int(nbits)
        self.kind = kind
        self.flat_max = int(flat_max)
        self.nhash = nhash
        self.hash_bits = int(hash_bits)
        self.nflip = nflip
        self.use_gpu = check_use_gpu(use_gpu)
        self._gpu_res: Any = None
        self._init_queue()

    @property
    def nbytes(self) -> int:
        return self.nbits // 8

    def get_params(self) -> dict[str, Any]:
        return {
            "nbits": self.nbits,
            "kind": self.kind,
            "flat_max": self.flat_max,
            "nhash": self.nhash,
            "hash_bits": self.hash_bits,
            "nflip": self.nflip,
            "use_gpu": self.use_gpu,
        }

    def _nhash(self) -> int:
        return self.nhash if self.nhash is not None else self.nbits // self.hash_bits

    # -- adding -------------------------------------------------------------------------------
    def add(self, codes: np.ndarray, ids: np.ndarray) -> None:
        """Queue packed ``codes`` (n, nbits // 8) uint8 with their int64 ``ids``."""
        c = as_codes(codes, self.nbytes, "codes")
        self._queue(c, ids)

    def _ensure_built(self) -> None:
        if not self._pending and self._index is not None:
            return
        faiss = load_faiss()
        want = self._choose_kind(self.ntotal)
        if self._index is not None and want != self._built_kind:
            log.info(
                "rebuilding a %s binary index of %d codes as %s",
                self._built_kind,
                self.ntotal,
                want,
            )
            cpu = faiss.index_binary_gpu_to_cpu(self._index) if self._on_gpu else self._index
            stored = (
                faiss.rev_swig_ptr(cpu.xb.data(), cpu.ntotal * self.nbytes)
                .reshape(-1, self.nbytes)
                .copy()
            )
            self._pending.insert(0, stored)
            self._index, self._built_kind, self._on_gpu = None, None, False
        if self._index is None:
            if not self._pending:
                return
            if want == "flat":
                self._index = faiss.IndexBinaryFlat(self.nbits)
            elif want == "hash":
                self._index = faiss.IndexBinaryHash(self.nbits, self.hash_bits)
            else:
                self._index = faiss.IndexBinaryMultiHash(self.nbits, self._nhash(), self.hash_bits)
            self._built_kind = want
            for c in self._pending:
                self._index.add(c)
            self._pending = []
            self._maybe_to_gpu(faiss)
        else:
            for c in self._pending:
                self._index.add(c)
            self._pending = []

    def _maybe_to_gpu(self, faiss: Any) -> None:
        if self._built_kind != "flat" or not hasattr(faiss, "GpuIndexBinaryFlat"):
            return
        if not resolve_gpu(self.use_gpu, faiss):
            return
        self._gpu_res = faiss.StandardGpuResources()
        self._index = faiss.GpuIndexBinaryFlat(self._gpu_res, self._index)
        self._on_gpu = True

    def _set_nflip(self, radius: int | None) -> None:
        if self._built_kind not in ("hash", "multihash"):
            return
        if self.nflip is not None:
            nflip = self.nflip
        elif radius is not None and self._built_kind == "multihash":
            nflip = radius // self._nhash()  # pigeonhole: exact within radius
        else:
            nflip = 2
        self._index.nflip = int(min(nflip, self.hash_bits))

    # -- searching ----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes by Hamming distance.

        Returns:
            ``(dist, ids)``: int32 distances (bits) and int64 ids, each (n_queries, k), nearest
            first; missing slots hold id -1 and distance ``nbits + 1``.
        """
        q = as_codes(queries, self.nbytes, "queries")
        k = check_k(k)
        self._ensure_built()
        nq = q.shape[0]
        dist = np.full((nq, k), self.nbits + 1, np.int32)
        found = np.full((nq, k), -1, np.int64)
        if self._index is None or nq == 0:
            return dist, found
        self._set_nflip(None)
        kk = min(k, self._index.ntotal)
        if self._on_gpu and kk > GPU_MAX_K:
            raise IndexError_(
                f"a GPU index returns at most k={GPU_MAX_K} neighbours, but k={k} was asked"
            )
        d, pos = self._index.search(q, kk)
        dist[:, :kk] = np.where(pos >= 0, d, self.nbits + 1)
        found[:, :kk] = self._ids.lookup(pos)
        return dist, found

    def range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All codes within Hamming distance ``<= radius`` bits of each query.

        Returns:
            CSR triplet ``(lims, dist, ids)`` (int64, int32, int64), as in :meth:`VectorIndex.range_search`.
        """
        q = as_codes(queries, self.nbytes, "queries")
        if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
            raise IndexError_(f"radius must be an integer >= 0 (bits), but got {radius!r}")
        radius = int(radius)
        self._ensure_built()
        nq = q.shape[0]
        if self._index is None or nq == 0:
            return np.zeros(nq + 1, np.int64), np.empty(0, np.int32), np.empty(0, np.int64)
        if self._on_gpu:
            lims, d, pos = range_via_knn(
                self._index.search, q, self._index.ntotal, lambda d: d <= radius, k_max=GPU_MAX_K
            )
        else:
            self._set_nflip(radius)
            # faiss keeps distances strictly below the radius it is given
            lims, d, pos = self._index.range_search(q, radius + 1)
            lims, d, pos = filter_csr(lims, d, pos, d <= radius)
        return lims.astype(np.int64), d.astype(np.int32), self._ids.lookup(pos.astype(np.int64))

    # -- persistence --------------------------------------------------------------------------
    # -- persistence (save/load in QueuedIndex) ------------------------------------------------
    width_name = "nbits"

    def _empty_faiss(self, faiss: Any) -> Any:
        return faiss.IndexBinaryFlat(self.nbits)

    def _cpu_faiss(self, faiss: Any) -> Any:
        return faiss.index_binary_gpu_to_cpu(self._index) if self._on_gpu else self._index

    @staticmethod
    def _write_faiss(faiss: Any, index: Any, path: str) -> None:
        faiss.write_index_binary(index, path)

    @staticmethod
    def _read_faiss(faiss: Any, path: str) -> Any:
        return faiss.read_index_binary(path)

    def __repr__(self) -> str:
        return f"BinaryHashIndex(nbits={self.nbits}, kind={self.kind!r}, ntotal={self.ntotal}, built={self._built_kind!r})"
