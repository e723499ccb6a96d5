"""Candidate video pairs from FAISS neighbours: the only place pairs are proposed for verification.

No step compares all pairs. Three sources vote, each an index search processed in query batches:

- frames: each frame's ``k`` nearest frames of *other* videos with cosine ``>= min_sim`` (one vote
  per hit, both directions counted);
- video descriptors: each video's ``video_k`` nearest other videos (candidate when cosine
  ``>= video_min_sim``);
- frame hashes: codes within ``hash_radius`` bits in another video (one hit per pair of codes,
  both directions counted). A Hamming range search at pHash radii (48 of 256 bits) is exact only
  by brute force (:class:`BinaryHashIndex` stays flat up to 5M codes), so this source grows as
  n^2: fine for keyframe hashes of ~1M frames, not for every frame of a million videos.

The candidates do not depend on the thread count. FAISS and numpy compute similarities in
float32 with BLAS, whose summation order (so the last bits) changes with its threads, and the
accuracy set's copies tie exactly: identical frames in many videos. So every cut (``min_sim``,
the ``k`` best of a frame, the descriptor neighbours and ``video_min_sim``, the IVF lists a
frame probes) is settled on exact float64 cosines wherever a float32 value lies within rounding
of it, ties going to the lower row. Only the reported ``max_sim``/``video_sim`` of hits far from
any cut keep their float32 value.

Per batch the hits become int64 pair keys ``a * n_videos + b`` (dense video numbers, ``a < b``) that
are reduced with a sort; batch results are merged the same way, so memory follows the number of
distinct candidate pairs, never ``n_videos ** 2``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from astradup.errors import IndexError_
from astradup.index._common import (
    as_codes,
    as_vectors,
    dot_slack,
    exact_cosines,
    normalise_rows,
    settle_top,
)
from astradup.index.binary import BinaryHashIndex
from astradup.index.vector import VectorIndex

log = logging.getLogger(__name__)

#: Columns of the candidate table (before verification; pairs.csv columns are astradup.labels.PAIR_COLUMNS).
CANDIDATE_COLUMNS = ("a", "b", "votes", "max_sim", "video_sim", "hash_hits")

# An all-pairs search costs n^2 * d on a flat index but ~ n^1.5 * d on IVF, so the indexes built
# here switch to IVF far earlier than VectorIndex's default (measured at 88k 64-d keyframes on one
# core: flat 41 CPU-s, IVF 9 CPU-s including its build, 3 of 7,392 candidate pairs lost).
ALL_PAIRS_FLAT_MAX = 20_000

# Queries per chunk of the list-wise IVF join: each list meets ~chunk * nprobe / nlist queries in
# one matrix product; larger chunks make larger products but hold more hits at once.
JOIN_CHUNK = 262_144
# Most similarities one product of the join holds (64 MB of float32): a flat index's one list
# meets its queries in row blocks.
JOIN_BLOCK = 1 << 24
# Neighbours a per-query search asks for beyond k, so that near-ties at the k-th are settled exactly.
SEARCH_SLACK = 8


def _as_video_ids(x: Any, n: int, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 1 or not np.issubdtype(x.dtype, np.integer):
        raise IndexError_(f"{what} must be a 1-D numpy integer array (video ids), one per row")
    if x.shape[0] != n:
        raise IndexError_(f"{what} must have one video id per row ({n}), but got {x.shape[0]}")
    return x.astype(np.int64, copy=False)


def _reduce(
    keys: np.ndarray, counts: np.ndarray, best: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group by key: sum of counts, max of best."""
    if keys.size == 0:
        return keys, counts, best
    order = np.argsort(keys, kind="stable")
    keys, counts, best = keys[order], counts[order], best[order]
    start = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[start], np.add.reduceat(counts, start), np.maximum.reduceat(best, start)


class _PairAccumulator:
    """Collects (key, count, best) per batch and merges them before they use much memory."""

    def __init__(self, merge_every: int = 8_000_000):
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.pending = 0
        self.merge_every = merge_every

    def add(self, keys: np.ndarray, counts: np.ndarray, best: np.ndarray) -> None:
        if keys.size == 0:
            return
        self.parts.append(_reduce(keys, counts, best))
        self.pending += self.parts[-1][0].size
        if self.pending > self.merge_every and len(self.parts) > 1:
            self.parts = [self.result()]
            self.pending = self.parts[0][0].size
            self.merge_every = max(self.merge_every, 2 * self.pending)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
        if len(self.parts) == 1:
            return self.parts[0]
        return _reduce(*(np.concatenate(c) for c in zip(*self.parts, strict=True)))


def _pair_keys(va: np.ndarray, vb: np.ndarray, n_videos: int) -> np.ndarray:
    lo = np.minimum(va, vb)
    hi = np.maximum(va, vb)
    return lo * np.int64(n_videos) + hi


def _check_prebuilt(index: VectorIndex, vecs: np.ndarray, name: str, what: str) -> None:
    if index.dim != vecs.shape[1] or index.ntotal != vecs.shape[0]:
        raise IndexError_(
            f"{name} holds {index.ntotal} vectors of dim {index.dim}, but {what} is {vecs.shape}; "
            f"pass the index built on exactly these rows"
        )
    if vecs.shape[0] and not np.array_equal(index.ids, np.arange(vecs.shape[0])):
        raise IndexError_(f"{name} ids must be the row numbers 0..{vecs.shape[0] - 1} of {what}")


def _search_exact(index: VectorIndex, vecs: np.ndarray, rows: np.ndarray, kk: int,
                  cap: int, thresholds: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``index.search(vecs[rows], kk)``, each row's ``kk`` best settled on exact cosines near its
    cut and near ``thresholds``, ties by id (:func:`settle_top`).

    The float32 search is asked for ``SEARCH_SLACK`` neighbours more than ``kk``, so a row's
    ``kk`` best are the same whatever order BLAS summed in (its thread count), unless more than
    ``SEARCH_SLACK`` neighbours tie within float32 rounding at the cut. The index's ids must be
    the row numbers of ``vecs``.
    """
    sims, nbrs = index.search(vecs[rows], int(min(kk + SEARCH_SLACK, cap)))
    return settle_top(sims, nbrs, kk, dot_slack(vecs.shape[1]),
                      lambda r, c: exact_cosines(vecs, rows[r], vecs, nbrs[r, c]), thresholds)


def _frame_votes(
    vecs: np.ndarray,
    vid: np.ndarray,
    n_videos: int,
    k: int,
    min_sim: float,
    index: VectorIndex,
    batch_size: int,
    queries: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes and best similarity per pair from each query frame's top-k other-video neighbours
    (per-query searches: GPU and HNSW indexes; :func:`_join_votes` serves CPU flat and IVF ones)."""
    n = vecs.shape[0]
    acc = _PairAccumulator()
    ntotal = index.ntotal
    if n == 0 or ntotal < 2:
        return acc.result()
    # Same-video frames take neighbour slots, so ask for more than k and widen where needed.
    per_video = np.bincount(vid).max()
    cap = ntotal if index.max_k is None else min(ntotal, index.max_k)
    k0 = int(min(cap, k + min(per_video - 1, k) + 1))
    for start in range(0, queries.size, batch_size):
        rows = queries[start : start + batch_size]
        todo = rows
        kk = k0
        while todo.size:
            sims, nbrs = _search_exact(index, vecs, todo, kk, cap, (min_sim,))
            qv = vid[todo][:, None]
            nv = np.where(nbrs >= 0, vid[np.maximum(nbrs, 0)], -1)
            valid = (nbrs >= 0) & (nv != qv) & (sims >= min_sim)
            keep = valid & (np.cumsum(valid, axis=1) <= k)
            # A row may hide more other-video hits behind its same-video neighbours when it
            # kept fewer than k, its last slot still passes min_sim and the index has more.
            widen = (
                (keep.sum(axis=1) < k) & (sims[:, -1] >= min_sim) & (nbrs[:, -1] >= 0) & (kk < cap)
            )
            done = ~widen
            r, c = np.nonzero(keep & done[:, None])
            if r.size:
                keys = _pair_keys(np.broadcast_to(qv, keep.shape)[r, c], nv[r, c], n_videos)
                acc.add(keys, np.ones(r.size, np.int64), sims[r, c].astype(np.float32))
            todo = todo[widen]
            kk = int(min(cap, kk * 2))
    return acc.result()


def _query_then_best(q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """uint64 keys that sort hits by query row, then by float32 similarity, best first (one
    integer sort instead of a two-key lexsort; query rows must be below 2^32)."""
    bits = np.ascontiguousarray(s, np.float32).view(np.uint32)
    ascending = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    return (q.astype(np.uint64) << np.uint64(32)) | (~ascending).astype(np.uint64)


def _top_k_exact(q: np.ndarray, v: np.ndarray, s: np.ndarray, k: int, min_sim: float,
                 vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each query row's ``k`` best hits with cosine ``>= min_sim``, the same for any thread count.

    ``(q, v, s)`` are hits (query row, neighbour row, float32 cosine) holding at least every hit
    with ``s >= min_sim - dot_slack``. A query's cut is its ``k``-th best ``s`` (or ``min_sim``,
    whichever is higher). Hits more than twice the slack above it are in whatever the rounding;
    hits within twice the slack of it get their exact cosine (:func:`exact_cosines`) and fill the
    remaining places, best first, ties by neighbour row; the rest are out.
    """
    if q.size == 0:
        return q, v, s.astype(np.float64)
    eps = np.float32(dot_slack(vecs.shape[1]))
    order = np.argsort(_query_then_best(q, s))
    q, v, s = q[order], v[order], s[order]
    first = np.concatenate([[True], q[1:] != q[:-1]])
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, q.size))
    kth = np.full(starts.size, -np.inf, np.float32)
    kth[sizes >= k] = s[starts[sizes >= k] + k - 1]
    cut = np.maximum(kth, np.float32(min_sim))[group]
    sure = s > cut + 2 * eps
    near = ~sure & (s >= cut - 2 * eps)
    nq, nv = q[near], v[near]
    exact = exact_cosines(vecs, nq, vecs, nv)
    ok = exact >= min_sim
    nq, nv, exact = nq[ok], nv[ok], exact[ok]
    order = np.lexsort((nv, -exact, nq))
    nq, nv, exact = nq[order], nv[order], exact[order]
    nfirst = np.concatenate([[True], nq[1:] != nq[:-1]])
    rank = np.arange(nq.size) - np.maximum.accumulate(np.where(nfirst, np.arange(nq.size), 0))
    places = k - np.bincount(group[sure], minlength=starts.size)  # per query, after its sure hits
    take = rank < places[np.searchsorted(q[starts], nq)]
    return (np.concatenate([q[sure], nq[take]]), np.concatenate([v[sure], nv[take]]),
            np.concatenate([s[sure].astype(np.float64), exact[take]]))


def _join_votes(
    vecs: np.ndarray,
    vid: np.ndarray,
    n_videos: int,
    k: int,
    min_sim: float,
    index: VectorIndex,
    queries: np.ndarray,
    chunk: int = JOIN_CHUNK,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_frame_votes` for a CPU IVF or flat index, computed list by list with matrix products.

    An IVF search scans, for every query, the ``nprobe`` lists nearest to it. Query by query that
    streams each list from memory again and again (an all-pairs search at 1M videos reads ~40 TB).
    Here a chunk of queries is grouped by the lists they probe, and each list meets all of its
    queries in matrix products, so a list is read once per chunk (a flat index is one list). Each
    query sees exactly the vectors its search would scan and keeps its ``k`` best other-video
    neighbours with cosine ``>= min_sim``, decided on exact cosines with ties by row
    (:func:`_top_k_exact`): the same votes for any BLAS thread count.
    """
    acc = _PairAccumulator()
    loose = np.float32(min_sim - dot_slack(vecs.shape[1]))
    for start in range(0, queries.size, chunk):
        qc = queries[start : start + chunk]
        qx = vecs[qc].astype(np.float32, copy=True)
        normalise_rows(qx, "frame_vecs")
        probes = index.probe_lists(qx)
        lists = probes.ravel()
        qpos = np.repeat(np.arange(qc.size, dtype=np.int64), probes.shape[1])
        ok = lists >= 0
        lists, qpos = lists[ok], qpos[ok]
        if lists.size == 0:
            continue
        order = np.argsort(lists, kind="stable")
        lists, qpos = lists[order], qpos[order]
        bounds = np.flatnonzero(np.concatenate([[True], lists[1:] != lists[:-1], [True]]))
        hits: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        # One list per query (a flat index, or nprobe 1): a block's queries have all their hits,
        # so each block is cut to its k best at once and a library of look-alike frames never
        # holds every hit of the chunk.
        whole = probes.shape[1] == 1
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            members, mv = index.list_members(int(lists[lo]))
            if members.size == 0:
                continue
            step = max(1, JOIN_BLOCK // members.size)  # bounds the similarity matrix of one product
            for b0 in range(lo, hi, step):
                rows = qpos[b0 : min(hi, b0 + step)]
                sims = qx[rows] @ mv.T
                r, c = np.nonzero(sims >= loose)
                q_rows, v_rows = qc[rows[r]], members[c]
                other = vid[q_rows] != vid[v_rows]
                hits.append((q_rows[other], v_rows[other], sims[r[other], c[other]]))
                if whole:
                    _add_votes(acc, hits, k, min_sim, vecs, vid, n_videos)
        _add_votes(acc, hits, k, min_sim, vecs, vid, n_videos)
        del probes, lists, qpos
    return acc.result()


def _add_votes(acc: _PairAccumulator, hits: list, k: int, min_sim: float, vecs: np.ndarray, vid: np.ndarray,
               n_videos: int) -> None:
    """Cut the collected ``hits`` (every hit of their queries) to each query's k best and count
    them as votes; ``hits`` is emptied."""
    if not hits:
        return
    q, v, s = (np.concatenate(x) for x in zip(*hits, strict=True))
    hits.clear()
    q, v, s = _top_k_exact(q, v, s, k, min_sim, vecs)
    acc.add(_pair_keys(vid[q], vid[v], n_videos), np.ones(q.size, np.int64), s.astype(np.float32))


def _video_sims(
    vecs: np.ndarray,
    vid: np.ndarray,
    n_videos: int,
    k: int,
    batch_size: int,
    index: VectorIndex | None,
    index_kw: dict[str, Any],
    queries: np.ndarray,
    min_sim: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Best cosine per pair among each video's ``k`` nearest other videos (all retrieved pairs),
    settled on exact cosines near the ``k``-th and near ``min_sim`` (the caller's cut), ties by
    row (:func:`_search_exact`)."""
    acc = _PairAccumulator()
    n = vecs.shape[0]
    if n < 2:
        keys, _, best = acc.result()
        return keys, best
    index = _index_of(index, vecs, index_kw, ("video_index", "video_vecs"))
    kk = int(min(n, k + 1))
    for start in range(0, queries.size, batch_size):
        rows = queries[start : start + batch_size]
        sims, nbrs = _search_exact(index, vecs, rows, kk, n, (min_sim,))
        ok = (nbrs >= 0) & (nbrs != rows[:, None])
        ok &= vid[np.maximum(nbrs, 0)] != vid[rows][:, None]
        ok &= np.cumsum(ok, axis=1) <= k
        r, c = np.nonzero(ok)
        keys = _pair_keys(vid[rows][r], vid[nbrs[r, c]], n_videos)
        acc.add(keys, np.ones(r.size, np.int64), sims[r, c].astype(np.float32))
    keys, _, best = acc.result()
    return keys, best


def _hash_hits(
    codes: np.ndarray,
    vid: np.ndarray,
    n_videos: int,
    radius: int,
    batch_size: int,
    queries: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Count of code pairs within ``radius`` bits per video pair (each direction counted)."""
    acc = _PairAccumulator()
    n = codes.shape[0]
    if n < 2:
        keys, counts, _ = acc.result()
        return keys, counts
    index = BinaryHashIndex(nbits=codes.shape[1] * 8)
    index.add(codes, np.arange(n, dtype=np.int64))
    for start in range(0, queries.size, batch_size):
        rows = queries[start : start + batch_size]
        lims, _, nbrs = index.range_search(codes[rows], radius)
        qv = np.repeat(vid[rows], np.diff(lims))
        nv = vid[nbrs]
        other = qv != nv
        keys = _pair_keys(qv[other], nv[other], n_videos)
        acc.add(keys, np.ones(keys.size, np.int64), np.zeros(keys.size, np.float32))
    keys, counts, _ = acc.result()
    return keys, counts


def _checked_sources(frame_vecs, frame_video, video_vecs, video_ids, hash_codes, hash_video) -> tuple:
    """The three candidate sources, checked: (frame vectors, their video ids, descriptors, their
    video ids, hash codes, their video ids); the missing optional ones are None."""
    if frame_vecs is None:
        frame_vecs, frame_video = np.empty((0, 1), np.float32), np.empty(0, np.int64)
    if not isinstance(frame_vecs, np.ndarray) or frame_vecs.ndim != 2:
        raise IndexError_("frame_vecs must be a 2-D numpy float array (n_frames, d)")
    # no copy: the index normalises each query batch itself
    fv = as_vectors(frame_vecs, frame_vecs.shape[1], "frame_vecs", copy=False)
    fvid = _as_video_ids(frame_video, fv.shape[0], "frame_video")
    vv = vvid = hc = hvid = None
    if (video_vecs is None) != (video_ids is None):
        raise IndexError_("video_vecs and video_ids must be given together")
    if video_vecs is not None:
        if not isinstance(video_vecs, np.ndarray) or video_vecs.ndim != 2:
            raise IndexError_("video_vecs must be a 2-D numpy float array (n_videos, D)")
        vv = as_vectors(video_vecs, video_vecs.shape[1], "video_vecs", copy=False)
        vvid = _as_video_ids(video_ids, vv.shape[0], "video_ids")
        if np.unique(vvid).shape[0] != vvid.shape[0]:
            raise IndexError_("video_ids must be unique (one descriptor per video)")
    if (hash_codes is None) != (hash_video is None):
        raise IndexError_("hash_codes and hash_video must be given together")
    if hash_codes is not None:
        if not isinstance(hash_codes, np.ndarray) or hash_codes.ndim != 2:
            raise IndexError_("hash_codes must be a 2-D numpy uint8 array (n, nbits // 8)")
        hc = as_codes(hash_codes, hash_codes.shape[1], "hash_codes")
        hvid = _as_video_ids(hash_video, hc.shape[0], "hash_video")
    return fv, fvid, vv, vvid, hc, hvid


def _index_of(index: VectorIndex | None, vecs: np.ndarray, index_kw: dict[str, Any] | None,
              names: tuple[str, str] = ("index", "frame_vecs")) -> VectorIndex:
    """``index`` checked to hold ``vecs`` (``names``: the two arguments, for the error), or a new
    one holding them with row numbers as ids."""
    if index is not None:
        _check_prebuilt(index, vecs, *names)
        return index
    index = VectorIndex(vecs.shape[1], **{"flat_max": ALL_PAIRS_FLAT_MAX, **(index_kw or {})})
    if vecs.shape[0]:
        index.add(vecs, np.arange(vecs.shape[0], dtype=np.int64))
    return index


def _candidate_table(universe: np.ndarray, n_videos: int, keys: np.ndarray, frames: tuple, videos: tuple,
                     hashes: tuple) -> pd.DataFrame:
    """One row per pair key (``a * n_videos + b`` in dense ids) with each source's evidence."""
    (f_keys, f_votes, f_best), (v_keys, v_best), (h_keys, h_hits) = frames, videos, hashes
    votes = np.zeros(keys.size, np.int64)
    max_sim = np.full(keys.size, np.nan, np.float64)
    video_sim = np.full(keys.size, np.nan, np.float64)
    hits = np.zeros(keys.size, np.int64)
    if f_keys.size:
        pos = np.searchsorted(keys, f_keys)
        votes[pos] = f_votes
        max_sim[pos] = f_best
    if v_keys.size and keys.size:
        pos = np.minimum(np.searchsorted(keys, v_keys), keys.size - 1)
        found = keys[pos] == v_keys
        video_sim[pos[found]] = v_best[found]
    if h_keys.size:
        hits[np.searchsorted(keys, h_keys)] = h_hits
    return pd.DataFrame(
        {
            "a": universe[keys // n_videos].astype(np.int64),
            "b": universe[keys % n_videos].astype(np.int64),
            "votes": votes,
            "max_sim": max_sim,
            "video_sim": video_sim,
            "hash_hits": hits,
        },
        columns=list(CANDIDATE_COLUMNS),
    )


def candidate_pairs(
    frame_vecs: np.ndarray | None,
    frame_video: np.ndarray | None,
    k: int = 20,
    min_sim: float = 0.75,
    video_vecs: np.ndarray | None = None,
    video_ids: np.ndarray | None = None,
    video_k: int = 20,
    video_min_sim: float = 0.8,
    hash_codes: np.ndarray | None = None,
    hash_video: np.ndarray | None = None,
    hash_radius: int = 48,
    index: VectorIndex | None = None,
    batch_size: int = 8192,
    video_index: VectorIndex | None = None,
    index_kw: dict[str, Any] | None = None,
    video_index_kw: dict[str, Any] | None = None,
    query_videos: np.ndarray | None = None,
) -> pd.DataFrame:
    """Unordered video pairs worth verifying, with the evidence that proposed them.

    Args:
        frame_vecs: (n_frames, d) float frame embeddings (normalised per query batch; may have
            0 rows), or None with ``frame_video=None`` when only descriptors or hashes are used.
        frame_video: (n_frames,) int64 video id of each frame row.
        k: other-video neighbours kept per frame.
        min_sim: cosine a frame neighbour must reach to vote.
        video_vecs, video_ids: optional (n_videos, D) video descriptors and their video ids.
        video_k: neighbours retrieved per video descriptor.
        video_min_sim: descriptor cosine that makes a pair a candidate on its own.
        hash_codes, hash_video: optional packed uint8 frame hashes (n, nbits // 8) and video ids.
        hash_radius: Hamming radius in bits (inclusive) for a hash hit.
        index: a :class:`VectorIndex` already holding ``frame_vecs`` with ids ``0..n_frames-1``
            (row numbers), e.g. loaded from beside the store; built here from ``index_kw`` if None.
        batch_size: queries per FAISS call (bounds memory).
        video_index: a :class:`VectorIndex` holding ``video_vecs`` with ids ``0..n_videos-1``
            (row numbers); built here from ``video_index_kw`` if None.
        index_kw, video_index_kw: parameters of the frame and descriptor :class:`VectorIndex`
            built here; both default to ``kind="auto"`` with ``flat_max=ALL_PAIRS_FLAT_MAX``.
        query_videos: video ids whose frames, descriptor and hashes are the queries (default:
            all). Incremental matching passes the newly added videos: every pair involving one
            of them is found against the whole library, but only their side votes.

    Returns:
        DataFrame with one row per unordered pair, sorted by (a, b): ``a < b`` (int64 video ids),
        ``votes`` (frame neighbour hits between the two videos, both directions), ``max_sim`` (best
        frame cosine among those hits, NaN without votes), ``video_sim`` (descriptor cosine when
        one video retrieved the other, else NaN) and ``hash_hits``. A pair is a candidate when it
        has a frame vote, a descriptor cosine ``>= video_min_sim`` or a hash hit.

    Raises:
        IndexError_: mismatched lengths, bad dtypes or shapes, NaNs, or an index that does not
        hold ``frame_vecs``.
    """
    if (frame_vecs is None) != (frame_video is None):
        raise IndexError_("frame_vecs and frame_video must be given together (or both None)")
    if frame_vecs is None and index is not None:
        raise IndexError_("an index was passed without the frame_vecs it holds")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise IndexError_(f"k must be an integer >= 1, but got {k!r}")
    if batch_size < 1:
        raise IndexError_(f"batch_size must be >= 1, but got {batch_size}")
    fv, fvid, vv, vvid, hc, hvid = _checked_sources(frame_vecs, frame_video, video_vecs, video_ids,
                                                    hash_codes, hash_video)
    parts = [x for x in (fvid, vvid, hvid) if x is not None]
    universe = np.unique(np.concatenate(parts))
    n_videos = max(int(universe.shape[0]), 1)
    if query_videos is not None:
        query_videos = _as_video_ids(query_videos, np.asarray(query_videos).shape[0], "query_videos")

    def query_rows(owner: np.ndarray) -> np.ndarray:
        if query_videos is None:
            return np.arange(owner.shape[0], dtype=np.int64)
        return np.flatnonzero(np.isin(owner, query_videos)).astype(np.int64)

    def dense(x: np.ndarray) -> np.ndarray:
        return np.searchsorted(universe, x).astype(np.int64)

    # frames
    index = _index_of(index, fv, index_kw)
    if fv.shape[0] and index.has_cpu_lists:
        f_keys, f_votes, f_best = _join_votes(fv, dense(fvid), n_videos, int(k), float(min_sim), index, query_rows(fvid))
    else:
        f_keys, f_votes, f_best = _frame_votes(fv, dense(fvid), n_videos, int(k), float(min_sim), index, batch_size,
                                               query_rows(fvid))

    # video descriptors
    v_keys, v_best = np.empty(0, np.int64), np.empty(0, np.float32)
    if vv is not None and vvid is not None:
        v_keys, v_best = _video_sims(vv, dense(vvid), n_videos, int(video_k), batch_size, video_index,
                                     video_index_kw or {}, query_rows(vvid), float(video_min_sim))

    # hashes
    h_keys, h_hits = np.empty(0, np.int64), np.empty(0, np.int64)
    if hc is not None and hvid is not None:
        h_keys, h_hits = _hash_hits(hc, dense(hvid), n_videos, int(hash_radius), batch_size, query_rows(hvid))

    keys = np.unique(np.concatenate([f_keys, v_keys[v_best >= video_min_sim], h_keys]))
    return _candidate_table(universe, n_videos, keys, (f_keys, f_votes, f_best), (v_keys, v_best), (h_keys, h_hits))


def select_keyframes(
    frame_vecs: np.ndarray, frame_video: np.ndarray, max_sim: float = 0.95
) -> np.ndarray:
    """Row numbers of the frames worth indexing: drop frames nearly identical to the last kept one.

    Frames sampled at 1 fps repeat within a shot; indexing one frame per run of near-identical
    frames cuts the frame index (and the all-pairs search) several-fold while every shot keeps a
    representative. The first frame of each video is always kept; frame ``t`` is kept when its cosine
    to the last kept frame of its video is ``< max_sim``. Rows of one video must be in time order
    (videos may be interleaved).

    Returns:
        Sorted int64 row numbers into ``frame_vecs``.
    """
    if not isinstance(frame_vecs, np.ndarray) or frame_vecs.ndim != 2:
        raise IndexError_("frame_vecs must be a 2-D numpy float array (n_frames, d)")
    x = as_vectors(frame_vecs, frame_vecs.shape[1], "frame_vecs")
    vid = _as_video_ids(frame_video, x.shape[0], "frame_video")
    n = x.shape[0]
    if n == 0:
        return np.empty(0, np.int64)
    normalise_rows(x, "frame_vecs")
    order = np.argsort(vid, kind="stable")
    sv = vid[order]
    first = np.concatenate([[True], sv[1:] != sv[:-1]])
    group = np.cumsum(first) - 1
    pos = np.arange(n) - np.flatnonzero(first)[group]
    last = np.zeros((int(group[-1]) + 1, x.shape[1]), np.float32)
    keep = np.zeros(n, bool)
    # One vectorised step per frame position (at most max frames per video steps).
    for t in range(int(pos.max()) + 1):
        at = np.flatnonzero(pos == t)
        rows = order[at]
        g = group[at]
        if t == 0:
            take = np.ones(at.size, bool)
        else:
            take = np.einsum("ij,ij->i", x[rows], last[g]) < max_sim
        keep[rows[take]] = True
        last[g[take]] = x[rows[take]]
    return np.flatnonzero(keep).astype(np.int64)
