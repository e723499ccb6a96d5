"""Cosine-similarity retrieval over float vectors with FAISS (inner product on unit vectors).

Index kinds (``kind``):

- ``"flat"``: exact brute force (``IndexFlatIP``). Exact, no training, moves to the GPU.
- ``"ivf"``: inverted lists (``IndexIVFFlat``, k-means coarse quantizer). Approximate (``nprobe``
  lists are scanned of ``nlist``), cheap to build, moves to the GPU.
- ``"hnsw"``: graph (``IndexHNSWFlat``). Approximate, no training, good recall, CPU only; its build
  is the slowest on few cores.
- ``"auto"`` (default): ``flat`` while the index holds at most ``flat_max`` vectors, ``ivf`` above.
  IVF rather than HNSW because it builds several times faster on a 2-core machine (k-means on a
  sample plus one assignment pass, where HNSW inserts vector by vector), it runs on the GPU, and at
  the high similarity thresholds of copy detection a near-duplicate almost always falls in one of
  the first few lists. An ``auto`` index that grows past ``flat_max`` is rebuilt as IVF on the next
  search.

Vectors are L2-normalised on the way in (a copy; the caller's array is untouched), so scores are
cosine similarities. ``add`` only buffers; the FAISS structure is built on the first search or
save, and later ``add`` calls extend it. The execution layer keeps index files beside the DuckDB
store: it loads the file, ``add``-s the videos ingested since, and saves it again (or rebuilds from
the store when the file is missing or the parameters changed).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from astradup.errors import ConfigError, IndexError_, UnknownBackendError
from astradup.index._common import (
    GPU_MAX_K,
    QueuedIndex,
    as_vectors,
    check_k,
    check_use_gpu,
    dot_slack,
    exact_cosines,
    filter_csr,
    load_faiss,
    normalise_rows,
    range_via_knn,
    resolve_gpu,
    settle_top,
)

log = logging.getLogger(__name__)

VECTOR_KINDS = ("auto", "flat", "ivf", "hnsw")
QUANTIZERS = ("auto", "flat", "hnsw")
HNSW_QUANTIZER_MIN_NLIST = 32768


IVF_MAX_AUTO_NLIST = 8192
# Lists the coarse quantizer proposes beyond nprobe, so that probe_lists settles near-ties exactly.
PROBE_SLACK = 4


def default_nlist(n: int) -> int:
    """IVF list count for ``n`` vectors: about 4 * sqrt(n), at least 39 training points per list.

    Capped at 8192: k-means costs ~ nlist^2 and, for an all-pairs search, 8192 lists of 8.8M vectors
    scan about as many vectors per query (nlist + nprobe * n / nlist) as 4 * sqrt(n) = 11.9k lists
    while training in half the time. Set ``nlist`` explicitly for larger indexes.
    """
    return int(max(1, min(4 * math.sqrt(max(n, 1)), n // 39, IVF_MAX_AUTO_NLIST)))


class VectorIndex(QueuedIndex):
    """Inner-product search on L2-normalised float32 vectors, with int64 ids kept beside FAISS.

    Args:
        dim: vector dimension.
        kind: ``"auto"``, ``"flat"``, ``"ivf"`` or ``"hnsw"`` (see the module docstring).
        flat_max: largest vector count ``"auto"`` keeps exact.
        hnsw_m: HNSW graph degree (links per node).
        ef_search: HNSW search beam width (higher = better recall, slower).
        ef_construction: HNSW build beam width.
        ivf_quantizer: how IVF finds the lists to probe: ``"flat"`` (compare with every centroid),
            ``"hnsw"`` (a graph over the centroids), or ``"auto"``: hnsw from 32768 lists on the CPU
            (below that, one BLAS product with all centroids per query batch is cheaper).
        nlist: IVF list count; ``None`` chooses :func:`default_nlist` at build time.
        nprobe: IVF lists scanned per query.
        use_gpu: ``"auto"`` (a GPU when faiss sees one), ``"gpu"`` (required) or ``"cpu"``.
            Flat and IVF indexes move to all GPUs; HNSW stays on the CPU.

    Example:
        >>> idx = VectorIndex(dim=64)
        >>> idx.add(vectors, ids)
        >>> sims, found = idx.search(queries, k=10)   # found == -1 where fewer than k exist
    """

    large_kind = "ivf"

    def __init__(
        self,
        dim: int,
        kind: str = "auto",
        flat_max: int = 200_000,
        hnsw_m: int = 32,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        use_gpu: str | bool = "auto",
        ef_construction: int = 40,
        ivf_quantizer: str = "auto",
    ):
        if kind not in VECTOR_KINDS:
            raise UnknownBackendError(
                f"vector index kind {kind!r} is unknown; choose one of {list(VECTOR_KINDS)}"
            )
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ConfigError(f"dim must be an integer >= 1, but got {dim!r}")
        for name, value in (
            ("flat_max", flat_max),
            ("hnsw_m", hnsw_m),
            ("ef_search", ef_search),
            ("nprobe", nprobe),
            ("ef_construction", ef_construction),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, but got {value}")
        if ivf_quantizer not in QUANTIZERS:
            raise UnknownBackendError(
                f"ivf_quantizer {ivf_quantizer!r} is unknown; choose one of {list(QUANTIZERS)}"
            )
        if nlist is not None and nlist < 1:
            raise ConfigError(f"nlist must be >= 1 or None, but got {nlist}")
        self.dim = int(dim)
        self.kind = kind
        self.flat_max = int(flat_max)
        self.hnsw_m = int(hnsw_m)
        self.ef_search = int(ef_search)
        self.ef_construction = int(ef_construction)
        self.nlist = nlist
        self.nprobe = int(nprobe)
        self.use_gpu = check_use_gpu(use_gpu)
        self.ivf_quantizer = ivf_quantizer
        self._init_queue()

    # -- properties ---------------------------------------------------------------------------
    @property
    def on_gpu(self) -> bool:
        return self._on_gpu

    @property
    def max_k(self) -> int | None:
        """Largest ``k`` one search can return (GPU indexes are capped), None if unlimited."""
        return GPU_MAX_K if self._on_gpu else None

    def get_params(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "kind": self.kind,
            "flat_max": self.flat_max,
            "hnsw_m": self.hnsw_m,
            "ef_search": self.ef_search,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "use_gpu": self.use_gpu,
            "ef_construction": self.ef_construction,
            "ivf_quantizer": self.ivf_quantizer,
        }

    # -- adding -------------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Queue ``vectors`` (n, dim) float with their int64 ``ids``; they are searchable from the next search.

        Raises:
            IndexError_: wrong shape or dtype, NaN/inf, a zero vector, bad or duplicate ids.
        """
        x = normalise_rows(as_vectors(vectors, self.dim, "vectors"), "vectors")
        self._queue(x, ids)

    def _stored_vectors(self) -> np.ndarray:
        """Vectors held by a built flat index (to rebuild it as IVF)."""
        faiss = load_faiss()
        index = faiss.index_gpu_to_cpu(self._index) if self._on_gpu else self._index
        return self._flat_view(faiss, index).copy()

    def _flat_view(self, faiss: Any, index: Any) -> np.ndarray:
        """The (ntotal, dim) float32 vectors of a CPU flat FAISS index, as a view of its memory."""
        m = int(index.ntotal)
        raw = faiss.rev_swig_ptr(index.get_xb(), m * self.dim) if m else np.empty(0, np.float32)
        return raw.reshape(m, self.dim)

    def _ensure_built(self) -> None:
        if not self._pending and self._index is not None:
            return
        faiss = load_faiss()
        total = self.ntotal
        want = self._choose_kind(total)
        if self._index is not None and want != self._built_kind:
            log.info("rebuilding a %s index of %d vectors as %s", self._built_kind, total, want)
            self._pending.insert(0, self._stored_vectors())
            self._index, self._built_kind, self._on_gpu = None, None, False
        if self._index is None:
            if not self._pending:
                return
            x = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending = []
            self._index = self._new_index(faiss, want, x)
            self._built_kind = want
            self._index.add(x)
            self._maybe_to_gpu(faiss)
        else:
            for x in self._pending:
                self._index.add(x)
            self._pending = []
        self._set_search_params(faiss)

    def _new_index(self, faiss: Any, kind: str, x: np.ndarray) -> Any:
        metric = faiss.METRIC_INNER_PRODUCT
        if kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, metric)
            index.hnsw.efConstruction = self.ef_construction
            return index
        nlist = self.nlist if self.nlist is not None else default_nlist(x.shape[0])
        if nlist > x.shape[0]:
            raise IndexError_(
                f"an IVF index with nlist={nlist} needs at least {nlist} vectors to train, but got {x.shape[0]}"
            )
        # Spherical k-means on at most 40 points per list, 10 iterations: training costs
        # ~ 40 * nlist^2 * dim * 10 and dominates the build at millions of vectors, while the lists
        # only need to be balanced enough to prune the scan.
        clus = faiss.Clustering(self.dim, nlist)
        clus.niter = 10
        clus.max_points_per_centroid = 40
        clus.seed = 1234
        clus.spherical = True
        clus.train(x, faiss.IndexFlatIP(self.dim))  # faiss draws the sample itself
        centroids = faiss.vector_to_array(clus.centroids).reshape(nlist, self.dim)
        if self._quantizer_kind(nlist, faiss) == "hnsw":
            quantizer = faiss.IndexHNSWFlat(self.dim, 32, metric)
            quantizer.hnsw.efConstruction = 40
        else:
            quantizer = faiss.IndexFlatIP(self.dim)
        quantizer.add(centroids)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, metric)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index owns and frees its quantizer
        return index

    def _quantizer_kind(self, nlist: int, faiss: Any) -> str:
        if self.ivf_quantizer != "auto":
            return self.ivf_quantizer
        # Many lists: a graph over the centroids picks the lists to probe in O(log nlist) instead
        # of comparing every query with every centroid (which dominates an all-pairs search).
        # GPU indexes need a flat quantizer.
        if nlist >= HNSW_QUANTIZER_MIN_NLIST and not resolve_gpu(self.use_gpu, faiss):
            return "hnsw"
        return "flat"

    def _hnsw_quantizer(self, faiss: Any) -> Any:
        if self._built_kind != "ivf" or self._on_gpu:
            return None
        q = faiss.downcast_index(self._index.quantizer)
        return q if isinstance(q, faiss.IndexHNSW) else None

    def _maybe_to_gpu(self, faiss: Any) -> None:
        if self._built_kind == "hnsw" or not resolve_gpu(self.use_gpu, faiss):
            return
        if self._hnsw_quantizer(faiss) is not None:
            log.info("IVF index with an HNSW quantizer stays on the CPU")
            return
        if self._built_kind == "ivf":
            self._index.nprobe = self.nprobe
        self._index = faiss.index_cpu_to_all_gpus(self._index)
        self._on_gpu = True

    def _set_search_params(self, faiss: Any) -> None:
        if self._built_kind == "ivf":
            if self._on_gpu:
                faiss.GpuParameterSpace().set_index_parameter(self._index, "nprobe", self.nprobe)
            else:
                self._index.nprobe = self.nprobe
                q = self._hnsw_quantizer(faiss)
                if q is not None:
                    q.hnsw.efSearch = max(64, 2 * self.nprobe)
        elif self._built_kind == "hnsw":
            self._index.hnsw.efSearch = self.ef_search

    # -- searching ----------------------------------------------------------------------------
    def _queries(self, queries: np.ndarray) -> np.ndarray:
        return normalise_rows(as_vectors(queries, self.dim, "queries"), "queries")

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar vectors of each query.

        Returns:
            ``(sims, ids)``: float32 cosine similarities and int64 ids, each (n_queries, k), best
            first. Slots without a result (fewer than ``k`` vectors, or an IVF probe that found
            too few) hold id -1 and similarity -inf.
        """
        q = self._queries(queries)
        k = check_k(k)
        self._ensure_built()
        if self._index is None or q.shape[0] == 0:
            return (
                np.full((q.shape[0], k), -np.inf, np.float32),
                np.full((q.shape[0], k), -1, np.int64),
            )
        kk = min(k, self._index.ntotal)
        if self._on_gpu and kk > GPU_MAX_K:
            raise IndexError_(
                f"a GPU index returns at most k={GPU_MAX_K} neighbours, but k={k} was asked"
            )
        d, pos = self._index.search(q, kk)
        sims = np.full((q.shape[0], k), -np.inf, np.float32)
        found = np.full((q.shape[0], k), -1, np.int64)
        sims[:, :kk] = np.where(pos >= 0, d, -np.inf)
        found[:, :kk] = self._ids.lookup(pos)
        return sims, found

    def range_search(
        self, queries: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All vectors with cosine similarity ``>= threshold`` to each query.

        Returns:
            A CSR triplet ``(lims, sims, ids)``: the results of query ``i`` are
            ``sims[lims[i]:lims[i+1]]`` and ``ids[lims[i]:lims[i+1]]`` (in no particular order).
        """
        q = self._queries(queries)
        thr = float(threshold)
        if not np.isfinite(thr):
            raise IndexError_(f"threshold must be a finite number, but got {threshold!r}")
        self._ensure_built()
        if self._index is None or q.shape[0] == 0:
            return (
                np.zeros(q.shape[0] + 1, np.int64),
                np.empty(0, np.float32),
                np.empty(0, np.int64),
            )
        if self._on_gpu:  # GPU indexes have no range search
            lims, d, pos = range_via_knn(
                self._index.search, q, self._index.ntotal, lambda s: s >= thr, k_max=GPU_MAX_K
            )
        else:
            # faiss keeps inner products strictly above the radius; step just below to include ==.
            lims, d, pos = self._index.range_search(
                q, float(np.nextafter(np.float32(thr), np.float32(-np.inf)))
            )
            lims, d, pos = filter_csr(lims, d, pos, d >= thr)
        return lims.astype(np.int64), d.astype(np.float32), self._ids.lookup(pos.astype(np.int64))

    # -- inverted lists (for the list-wise self-join in candidates.py) -------------------------
    @property
    def has_cpu_lists(self) -> bool:
        """True when the built structure can be scanned list by list on the CPU: the inverted
        lists of a CPU IVF index, or a CPU flat index as one list holding every vector."""
        self._ensure_built()
        return self._built_kind in ("ivf", "flat") and not self._on_gpu and self._index is not None

    def probe_lists(self, queries: np.ndarray) -> np.ndarray:
        """The ``nprobe`` lists an IVF search of each query scans: (n, nprobe) int64, -1 = none
        (a flat index: its one list, 0).

        The coarse quantizer's float32 search proposes ``PROBE_SLACK`` lists more; where lists are
        within float32 rounding of the ``nprobe``-th, their inner products with the query are
        recomputed exactly and the best ``nprobe`` kept, ties by list number
        (:func:`~astradup.index._common.settle_top`). So a query equally near two centroids
        probes the same lists whatever the thread count (FAISS's BLAS sums in a thread-dependent
        order).

        ``queries`` must already be L2-normalised float32 (n, dim) rows.
        """
        if not self.has_cpu_lists:
            raise IndexError_(
                f"probe_lists needs a CPU IVF or flat index, but this one is {self._built_kind!r}"
            )
        q = np.ascontiguousarray(queries, np.float32)
        if self._built_kind == "flat":
            return np.zeros((q.shape[0], 1), np.int64)
        nlist = int(self._index.nlist)
        nprobe = min(self.nprobe, nlist)
        wide = min(nprobe + PROBE_SLACK, nlist)
        sims, lists = self._index.quantizer.search(q, wide)
        lists = lists.astype(np.int64, copy=False)

        def exact(r: np.ndarray, c: np.ndarray) -> np.ndarray:  # only where a near-tie needs it
            centroids = np.asarray(self._index.quantizer.reconstruct_n(0, nlist), np.float32)
            return exact_cosines(q, r, centroids, lists[r, c], normalise=False)  # the quantizer ranks by inner product

        return settle_top(sims, lists, nprobe, dot_slack(self.dim), exact)[1]

    @property
    def n_lists(self) -> int:
        """Number of lists :meth:`list_members` serves: IVF lists, 1 for a flat index, 0 otherwise."""
        if not self.has_cpu_lists:
            return 0
        return 1 if self._built_kind == "flat" else int(self._index.nlist)

    def list_members(self, list_no: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and unit vectors stored in list ``list_no`` (a flat index: list 0, every vector):
        ((m,) int64, (m, dim) float32).

        The vectors are a read-only view of FAISS's memory, valid until the index changes.
        """
        if not self.has_cpu_lists:
            raise IndexError_(
                f"list_members needs a CPU IVF or flat index, but this one is {self._built_kind!r}"
            )
        faiss = load_faiss()
        if self._built_kind == "flat":
            if int(list_no) != 0:
                raise IndexError_(f"a flat index has one list, 0, but list {list_no} was asked")
            vecs = self._flat_view(faiss, self._index)
            pos = np.arange(vecs.shape[0], dtype=np.int64)
        else:
            invlists = self._index.invlists
            m = int(invlists.list_size(int(list_no)))
            if m == 0:
                return np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
            pos = faiss.rev_swig_ptr(invlists.get_ids(int(list_no)), m).astype(np.int64)
            raw = faiss.rev_swig_ptr(invlists.get_codes(int(list_no)), m * self.dim * 4)
            vecs = raw.view(np.float32).reshape(m, self.dim)
        vecs.flags.writeable = False
        return self._ids.lookup(pos), vecs

    # -- persistence (save/load in QueuedIndex) ------------------------------------------------
    def _empty_faiss(self, faiss: Any) -> Any:
        return faiss.IndexFlatIP(self.dim)

    def _cpu_faiss(self, faiss: Any) -> Any:
        return faiss.index_gpu_to_cpu(self._index) if self._on_gpu else self._index

    def _without_vectors(self, faiss: Any, index: Any) -> tuple[Any, dict[str, np.ndarray]]:
        """An empty flat index, or the IVF quantizer with empty lists plus each list's rows in
        order (``list_sizes``, ``list_rows``): what :meth:`_put_vectors` rebuilds the lists from."""
        if self._built_kind == "flat":
            return faiss.IndexFlatIP(self.dim), {}
        if self._built_kind != "ivf":
            raise IndexError_(f"only a flat or IVF index can be saved without its vectors, not {self._built_kind!r}")
        invlists = index.invlists
        sizes = np.array([invlists.list_size(i) for i in range(int(index.nlist))], np.int64)
        rows = [faiss.rev_swig_ptr(invlists.get_ids(i), int(m)).astype(np.int64) for i, m in enumerate(sizes) if m]
        empty = faiss.IndexIVFFlat(index.quantizer, self.dim, int(index.nlist), index.metric_type)
        order = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        small = int(index.ntotal) < 2**31  # positions fit 4 bytes: the sidecar grows by 4 a row, not 8
        return empty, {"list_sizes": sizes, "list_rows": order.astype(np.int32) if small else order}

    def _put_vectors(self, faiss: Any, index: Any, built: str, vectors: np.ndarray,
                     arrays: dict[str, np.ndarray]) -> Any:
        """Fill a structure saved by :meth:`_without_vectors` with ``vectors`` (normalised as
        :meth:`add` does), each list's rows in their saved order: the index as it was."""
        x = normalise_rows(as_vectors(vectors, self.dim, "vectors"), "vectors")
        if built == "flat":
            index.add(x)
            return index
        sizes, rows = arrays.get("list_sizes"), arrays.get("list_rows")
        if (sizes is None or rows is None or len(sizes) != int(index.nlist) or int(sizes.sum()) != len(rows)
                or len(rows) != x.shape[0]):
            raise IndexError_(f"the saved IVF lists hold {0 if rows is None else len(rows)} rows, but "
                              f"{x.shape[0]} vectors were given; index and vectors do not belong together")
        invlists, start = index.invlists, 0
        for i, m in enumerate(sizes.tolist()):
            if m:
                r = np.ascontiguousarray(rows[start:start + m], np.int64)
                codes = np.ascontiguousarray(x[r]).view(np.uint8)
                invlists.add_entries(i, m, faiss.swig_ptr(r), faiss.swig_ptr(codes))
                start += m
        index.ntotal = x.shape[0]
        return index

    @staticmethod
    def _write_faiss(faiss: Any, index: Any, path: str) -> None:
        faiss.write_index(index, path)

    @staticmethod
    def _read_faiss(faiss: Any, path: str) -> Any:
        return faiss.read_index(path)

    def _after_load(self, faiss: Any) -> None:
        self._set_search_params(faiss)

    def __repr__(self) -> str:
        return f"VectorIndex(dim={self.dim}, kind={self.kind!r}, ntotal={self.ntotal}, built={self._built_kind!r})"
