"""Shared helpers of the index stage: lazy faiss import, GPU choice, input checks.

faiss is imported here, inside functions, so ``import astradup.index`` works without it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from astradup.errors import ConfigError, IndexError_

GPU_CHOICES = ("auto", "cpu", "gpu")

log = logging.getLogger(__name__)


def load_faiss() -> Any:
    """Import faiss (faiss-cpu or faiss-gpu: same module) or raise a clear error."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss is a hard dependency
        raise IndexError_(
            "faiss is not importable; install faiss-cpu (or faiss-gpu on CUDA hosts)"
        ) from exc
    return faiss


def gpu_available(faiss: Any) -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    if not hasattr(faiss, "StandardGpuResources") or not hasattr(faiss, "get_num_gpus"):
        return False
    try:
        return int(faiss.get_num_gpus()) > 0
    except Exception:  # noqa: BLE001 - a broken CUDA runtime means "no GPU", not a crash
        return False


def check_use_gpu(use_gpu: str | bool) -> str:
    """Normalise ``use_gpu`` to ``"auto"``, ``"cpu"`` or ``"gpu"`` (True/False are accepted)."""
    if use_gpu is True:
        return "gpu"
    if use_gpu is False:
        return "cpu"
    if use_gpu not in GPU_CHOICES:
        raise ConfigError(
            f"use_gpu must be one of {list(GPU_CHOICES)} or a bool, but got {use_gpu!r}"
        )
    return str(use_gpu)


def resolve_gpu(use_gpu: str, faiss: Any) -> bool:
    """Whether to put an index on the GPU: ``"gpu"`` insists, ``"auto"`` uses one when present."""
    if use_gpu == "cpu":
        return False
    available = gpu_available(faiss)
    if use_gpu == "gpu" and not available:
        raise IndexError_("use_gpu='gpu' but faiss has no GPU support or sees no GPU")
    return available


def as_vectors(x: Any, dim: int, what: str, copy: bool = True) -> np.ndarray:
    """Check a float matrix of shape (n, dim) with finite values; return it as float32.

    With ``copy=False`` a float32 C-contiguous input is returned as is (read it, never write it).

    Raises:
        IndexError_: wrong type, dtype, shape or a NaN/inf value (the message names the row).
    """
    if not isinstance(x, np.ndarray):
        raise IndexError_(
            f"{what} must be a numpy array of shape (n, {dim}), but got {type(x).__name__}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise IndexError_(f"{what} must have a float dtype (float32 expected), but got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != dim:
        raise IndexError_(f"{what} must have shape (n, {dim}), but got {x.shape}")
    if copy or x.dtype != np.float32 or not x.flags.c_contiguous:
        out = np.array(x, dtype=np.float32, order="C", copy=True)
    else:
        out = x
    step = max(1, (1 << 24) // max(dim, 1))  # check in chunks: no n x dim boolean temporary
    for start in range(0, out.shape[0], step):
        finite = np.isfinite(out[start : start + step]).all(axis=1)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            raise IndexError_(f"{what} row {row} contains NaN or inf; features must be finite")
    return out


def normalise_rows(x: np.ndarray, what: str) -> np.ndarray:
    """L2-normalise rows in place (float32); a zero row raises, since it has no direction."""
    norms = np.linalg.norm(x, axis=1)
    zero = norms == 0
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise IndexError_(f"{what} row {row} is all zeros; a zero vector has no cosine similarity")
    x /= norms[:, None].astype(np.float32)
    return x


def dot_slack(dim: int) -> float:
    """How far a float32 inner product of two unit vectors of ``dim`` components can be from the
    exact one, whatever order the products were summed in (|error| <= dim * 2^-24 for unit
    vectors; BLAS sums in an order that depends on its thread count), doubled, plus the float32
    normalisation's own rounding. Searches collect hits within this slack of a cut and settle
    them with :func:`exact_cosines`."""
    return 2.0 * dim * 2.0**-24 + 1e-6


def exact_cosines(x: np.ndarray, xi: np.ndarray, y: np.ndarray, yi: np.ndarray, normalise: bool = True,
                  block: int = 1 << 22) -> np.ndarray:
    """Cosine of rows ``x[xi]`` and ``y[yi]`` pair by pair (their inner product with
    ``normalise=False``), in float64, from the float32 inputs.

    The products of float32 values are exact in float64 and each row is summed in one fixed
    order, so the result depends on the inputs only, never on a thread count: the candidate
    search decides its cuts (``min_sim``, the ``k`` best, ties by id) on these values.
    """
    out = np.empty(xi.shape[0], np.float64)
    step = max(1, block // max(x.shape[1], 1))
    for s in range(0, xi.shape[0], step):
        a, b = x[xi[s : s + step]].astype(np.float64), y[yi[s : s + step]].astype(np.float64)
        dots = np.add.reduce(a * b, axis=1)
        if normalise:
            dots /= np.sqrt(np.add.reduce(a * a, axis=1) * np.add.reduce(b * b, axis=1))
        out[s : s + step] = dots
    return out


def settle_top(sims: np.ndarray, ids: np.ndarray, kk: int, eps: float,
               exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
               thresholds: tuple[float, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``kk`` best of a float32 search's results, the same for any BLAS thread count.

    ``sims``/``ids`` are (n, m) search results, best first, with ``m >= kk`` (extra columns hold
    the runners-up), id -1 = none. A result within ``2 * eps`` of its row's ``kk``-th similarity,
    or within ``eps`` of one of ``thresholds`` (cuts the caller applies later), gets its exact
    similarity (``exact(rows, cols)``, float64); the others cannot change side of either cut.
    Rows are then ordered by similarity, ties by id, and cut to ``kk``. Returns float64
    similarities and ids, (n, kk).
    """
    found = ids >= 0
    vals = np.where(found, sims, -np.inf).astype(np.float64)
    kth = vals[:, min(kk, vals.shape[1]) - 1 : min(kk, vals.shape[1])]
    unsure = found & (np.abs(vals - kth) <= 2 * eps)
    for t in thresholds:
        unsure |= found & (np.abs(vals - t) <= eps)
    r, c = np.nonzero(unsure)
    if r.size:
        vals[r, c] = exact(r, c)
    order = np.lexsort((np.where(found, ids, np.iinfo(np.int64).max), -vals), axis=-1)[:, :kk]
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(ids, order, axis=1)


def as_codes(x: Any, nbytes: int, what: str) -> np.ndarray:
    """Check packed binary codes: uint8 of shape (n, nbytes); return a C-contiguous copy."""
    if not isinstance(x, np.ndarray):
        raise IndexError_(
            f"{what} must be a numpy uint8 array of shape (n, {nbytes}), but got {type(x).__name__}"
        )
    if x.dtype != np.uint8:
        raise IndexError_(f"{what} must be packed bits of dtype uint8, but got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != nbytes:
        raise IndexError_(
            f"{what} must have shape (n, {nbytes}) ({nbytes * 8} bits), but got {x.shape}"
        )
    return np.ascontiguousarray(x)


def as_ids(ids: Any, n: int, what: str) -> np.ndarray:
    """Check ids: integer, 1-D, length n, >= 0 (-1 marks a missing result), unique."""
    if not isinstance(ids, np.ndarray) or ids.ndim != 1:
        raise IndexError_(f"{what} must be a 1-D numpy integer array of length {n}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise IndexError_(
            f"{what} must have an integer dtype (int64 expected), but got {ids.dtype}"
        )
    if ids.shape[0] != n:
        raise IndexError_(f"{what} must have one id per vector ({n}), but got {ids.shape[0]}")
    out = ids.astype(np.int64, copy=True)
    if n and out.min() < 0:
        raise IndexError_(
            f"{what} must be >= 0 (-1 marks missing results), but got {int(out.min())}"
        )
    if np.unique(out).shape[0] != n:
        raise IndexError_(f"{what} contains duplicate ids")
    return out


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise IndexError_(f"k must be an integer >= 1, but got {k!r}")
    return int(k)


class IdChunks:
    """Ids in insertion order, kept as chunks so repeated ``add`` calls stay O(n) overall."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._seen: np.ndarray | None = None

    def __len__(self) -> int:
        return sum(c.shape[0] for c in self._chunks)

    def array(self) -> np.ndarray:
        if len(self._chunks) != 1:
            self._chunks = [np.concatenate(self._chunks) if self._chunks else np.empty(0, np.int64)]
        return self._chunks[0]

    def append(self, ids: np.ndarray, what: str) -> None:
        if self._chunks:
            dup = np.isin(ids, self.array())
            if dup.any():
                raise IndexError_(
                    f"{what}: id {int(ids[np.flatnonzero(dup)[0]])} is already in the index"
                )
        self._chunks.append(ids)

    def lookup(self, positions: np.ndarray) -> np.ndarray:
        """Map faiss positions (-1 = missing) to ids (-1 stays -1)."""
        table = self.array()
        out = np.full(positions.shape, -1, dtype=np.int64)
        ok = positions >= 0
        out[ok] = table[positions[ok]]
        return out


def meta_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar beside an index file: ids and parameters (``<index>.meta.npz``)."""
    p = Path(path)
    return p.with_name(p.name + ".meta.npz")


def write_meta(path: str | os.PathLike[str], ids: np.ndarray, params: dict[str, Any],
               arrays: dict[str, np.ndarray] | None = None) -> None:
    """Write the sidecar: ``ids``, ``params`` (JSON) and any further named ``arrays``."""
    target = meta_path(path)
    tmp = target.with_name(target.name + ".tmp.npz")
    named: dict[str, Any] = {"ids": ids, "params": np.array(json.dumps(params)), **(arrays or {})}
    np.savez(tmp, **named)
    os.replace(tmp, target)


def read_meta(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any], dict[str, np.ndarray]]:
    """The sidecar's ids, parameters and further named arrays."""
    p = Path(path)
    m = meta_path(p)
    if not p.is_file():
        raise IndexError_(f"{p}: index file does not exist")
    if not m.is_file():
        raise IndexError_(f"{m}: index sidecar (ids and parameters) does not exist")
    try:
        with np.load(m, allow_pickle=False) as data:
            ids = data["ids"].astype(np.int64)
            params = json.loads(str(data["params"]))
            arrays = {k: data[k] for k in data.files if k not in ("ids", "params")}
    except Exception as exc:  # noqa: BLE001 - any read error means an unusable sidecar
        raise IndexError_(f"{m}: cannot read index sidecar ({exc})") from exc
    return ids, params, arrays


GPU_MAX_K = 2048  # faiss GPU indexes return at most this many neighbours per query


def range_via_knn(
    search: Any, queries: np.ndarray, ntotal: int, keep: Any, k0: int = 64, k_max: int | None = None
) -> tuple:
    """Range search for indexes without one (GPU): k-NN with k grown until the tail fails ``keep``.

    ``search(q, k) -> (dist, labels)`` sorted best first; ``keep(dist) -> bool mask`` says which
    results are inside the range; ``k_max`` caps k (a query with more results in range keeps its
    ``k_max`` best, with a warning). Returns faiss' CSR triplet ``(lims, dist, labels)``.
    """
    nq = queries.shape[0]
    if ntotal == 0 or nq == 0:
        return np.zeros(nq + 1, np.int64), np.empty(0, np.float32), np.empty(0, np.int64)
    cap = ntotal if k_max is None else min(ntotal, k_max)
    per_row_d: list[np.ndarray] = [np.empty(0, np.float32)] * nq
    per_row_l: list[np.ndarray] = [np.empty(0, np.int64)] * nq
    todo = np.arange(nq)
    k = min(k0, cap)
    while todo.size:
        d, lab = search(queries[todo], k)
        inside = keep(d) & (lab >= 0)
        full = inside[:, -1] & (k < cap)
        if k == cap and cap < ntotal and inside[:, -1].any():
            log.warning(
                "range search truncated to %d results for %d queries", cap, int(inside[:, -1].sum())
            )
        for j, row in enumerate(todo):
            if not full[j]:
                per_row_d[row] = d[j][inside[j]]
                per_row_l[row] = lab[j][inside[j]]
        todo = todo[full]
        k = min(k * 4, cap)
    lims = np.zeros(nq + 1, np.int64)
    lims[1:] = np.cumsum([r.shape[0] for r in per_row_l])
    return lims, np.concatenate(per_row_d), np.concatenate(per_row_l).astype(np.int64)


def filter_csr(lims: np.ndarray, dist: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> tuple:
    """Drop the results where ``keep`` is False from a CSR triplet."""
    if keep.all():
        return lims, dist, labels
    nq = lims.shape[0] - 1
    row = np.repeat(np.arange(nq), np.diff(lims))
    counts = np.bincount(row[keep], minlength=nq)
    new_lims = np.zeros(nq + 1, np.int64)
    np.cumsum(counts, out=new_lims[1:])
    return new_lims, dist[keep], labels[keep]


class QueuedIndex:
    """What both index classes share: ids in insertion order, rows queued by ``add`` until the
    FAISS structure is built (on first search, save or ``build()``), and the size-based choice
    between a flat structure and ``large_kind``. Subclasses set ``large_kind`` and ``flat_max``
    and implement ``_ensure_built``."""

    large_kind = "flat"
    kind: str
    flat_max: int
    _built_kind: str | None

    def _init_queue(self) -> None:
        self._index: Any = None
        self._built_kind = None
        self._on_gpu = False
        self._ids = IdChunks()
        self._pending: list[np.ndarray] = []
        self.vectors_outside = False  # loaded from a file saved without its vectors

    @property
    def ntotal(self) -> int:
        """Rows added so far (built and pending)."""
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        """The ids in insertion order (faiss position ``i`` holds ``ids[i]``)."""
        return self._ids.array()

    @property
    def built_kind(self) -> str | None:
        """The structure actually built; None before the first search."""
        return self._built_kind

    def _queue(self, rows: np.ndarray, ids: np.ndarray) -> None:
        """Queue validated ``rows`` with their ``ids`` (checked for count and duplicates)."""
        i = as_ids(ids, rows.shape[0], "ids")
        if rows.shape[0] == 0:
            return
        self._ids.append(i, "ids")
        self._pending.append(rows)

    def build(self):  # -> Self
        """Build (or extend) the FAISS structure now; searches do this implicitly. Returns self."""
        self._ensure_built()
        return self

    def _choose_kind(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if n <= self.flat_max else self.large_kind

    def _ensure_built(self) -> None:
        raise NotImplementedError

    # -- persistence: one file format for both index classes; subclasses give the FAISS calls --
    width_name = "dim"  # the attribute FAISS's ``index.d`` must equal

    def get_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _empty_faiss(self, faiss: Any) -> Any:
        raise NotImplementedError

    def _cpu_faiss(self, faiss: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def _write_faiss(faiss: Any, index: Any, path: str) -> None:
        raise NotImplementedError

    @staticmethod
    def _read_faiss(faiss: Any, path: str) -> Any:
        raise NotImplementedError

    def _maybe_to_gpu(self, faiss: Any) -> None:
        raise NotImplementedError

    def _after_load(self, faiss: Any) -> None:
        """Hook run once a loaded index is in place (search parameters)."""

    def _without_vectors(self, faiss: Any, index: Any) -> tuple[Any, dict[str, np.ndarray]]:
        """The structure of a built CPU ``index`` without its vectors, and the arrays that say
        where each row goes back (for :meth:`save` with ``vectors=False``)."""
        raise IndexError_(f"a {type(self).__name__} cannot be saved without its vectors")

    def _put_vectors(self, faiss: Any, index: Any, built: str, vectors: np.ndarray,
                     arrays: dict[str, np.ndarray]) -> Any:
        """Put ``vectors`` (one per saved id, in id order) back into a structure saved without them."""
        raise IndexError_(f"a {type(self).__name__} cannot be loaded with outside vectors")

    def save(self, path: str | os.PathLike[str], vectors: bool = True) -> None:
        """Write the FAISS index to ``path`` (atomically) and ids + parameters to ``<path>.meta.npz``.

        ``vectors=False`` writes the structure only (a flat index's nothing, an IVF index's
        trained quantizer and the rows of each list): for an index whose vectors are kept
        elsewhere (the store), handed back to :meth:`load`.
        """
        faiss = load_faiss()
        self._ensure_built()
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if self._index is None:
            index, built = self._empty_faiss(faiss), "flat"
        else:
            index, built = self._cpu_faiss(faiss), self._built_kind or "flat"
        arrays: dict[str, np.ndarray] = {}
        if not vectors and self._index is not None:
            index, arrays = self._without_vectors(faiss, index)
        tmp = p.with_name(p.name + ".tmp")
        self._write_faiss(faiss, index, str(tmp))
        os.replace(tmp, p)
        params = {"class": type(self).__name__, "built_kind": built, **self.get_params()}
        if not vectors:
            params["vectors"] = "outside"
        write_meta(p, self.ids, params, arrays)

    @staticmethod
    def saved_without_vectors(path: str | os.PathLike[str]) -> bool:
        """Whether the index at ``path`` was saved with ``vectors=False`` (load needs them back)."""
        return read_meta(path)[1].get("vectors") == "outside"

    @classmethod
    def load(cls, path: str | os.PathLike[str], use_gpu: str | bool | None = None,
             vectors: np.ndarray | None = None):  # -> Self
        """Read an index written by :meth:`save`; ``use_gpu`` overrides the saved choice.

        An index saved without its vectors needs them back: ``vectors`` holds one row per saved
        id, in id order, as they were added (normalised again here). It is ignored for an index
        saved with its vectors.
        """
        faiss = load_faiss()
        ids, params, arrays = read_meta(path)
        if params.pop("class", None) != cls.__name__:
            raise IndexError_(f"{path}: not a {cls.__name__} file")
        built = params.pop("built_kind")
        outside = params.pop("vectors", "inside") == "outside"
        if use_gpu is not None:
            params["use_gpu"] = use_gpu
        self = cls(**params)
        try:
            index = cls._read_faiss(faiss, str(path))
        except Exception as exc:  # noqa: BLE001 - faiss raises RuntimeError on any bad file
            raise IndexError_(f"{path}: cannot read FAISS index ({exc})") from exc
        width = getattr(self, cls.width_name)
        if outside and ids.shape[0]:
            if vectors is None:
                raise IndexError_(f"{path} keeps its vectors outside the file (in the store); load it with them")
            if index.d == width:
                index = self._put_vectors(faiss, index, built, vectors, arrays)
        if index.ntotal != ids.shape[0] or index.d != width:
            raise IndexError_(
                f"{path}: index holds {index.ntotal} rows of {cls.width_name} {index.d}, but its sidecar "
                f"lists {ids.shape[0]} ids of {cls.width_name} {width}; the two files do not belong together"
            )
        self.vectors_outside = outside
        if ids.shape[0]:
            self._ids.append(ids, "ids")
            self._index = index
            self._built_kind = built
            self._maybe_to_gpu(faiss)
            self._after_load(faiss)
        return self
