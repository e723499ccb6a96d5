"""The frame index kept beside the store, full or reduced, extended when the library grows.

Files beside ``<store>``:

* ``<store>.frames.faiss``: the FAISS frame index (a :class:`VectorIndex`);
* ``<store>.frames.faiss.json``: its manifest, one format for both modes: ``mode`` ("full" |
  "reduced"), ``dim``, the video ids with the row count of each (``ids``, ``counts``: they map
  index rows back to videos) and ``videos_sha1`` (a digest of the indexed videos' content hashes
  and feature keys); a reduced manifest adds ``in_dim``, ``keyframe_sim`` and ``pca_sha1``;
* ``<store>.frames.pca.npz``: the reduced index's PCA (written atomically).

The **full** index holds every sampled frame at full dimension; it serves libraries up to
``match.reduce_above`` frames. Above that it no longer fits (a million videos sample ~60M frames,
300 GB), and the **reduced** index holds only keyframes (a frame nearly identical to the last kept
one of its video is dropped), projected to ``match.index_dim`` with a PCA fitted once on a sample.
The store is read in video-id batches, so no step holds every video's features.

Both modes share one rule (:func:`_extend_or_rebuild`): when the indexed videos are a prefix of the
current ones (new videos get higher ids) with the same row counts and digests, only the new rows
are added; otherwise the index is rebuilt.

The full index's file keeps no second copy of the vectors: the store holds them already, so the
file holds the structure only (an IVF index's quantizer and the rows of each list) and the vectors
are read back from the store when it is loaded (:func:`load_saved_index`). That halves the disk a
library takes at full dimension. A full index file written before this, vectors inside, still
loads, and is rewritten without them the next time a match uses it.

This module reads a :class:`~astradup.store.Store` passed in; it never writes to it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.errors import AstradupError, ConfigError, IndexError_, StoreError
from astradup.index.candidates import ALL_PAIRS_FLAT_MAX, select_keyframes
from astradup.index.reduce import PCAReducer
from astradup.index.vector import VectorIndex

if TYPE_CHECKING:
    from astradup.features.video import VideoFeatures
    from astradup.store.store import Store

log = logging.getLogger(__name__)

PCA_SAMPLE_ROWS = 100_000  # frames the PCA is fitted on (1280-d: 0.5 GB float32, 1 GB float64)
PCA_SAMPLE_READ = 4  # ... drawn from videos holding 4 times as many frames
PCA_SEED = 0
STREAM_VIDEOS = 1024  # most videos per store batch while projecting keyframes
STREAM_FRAMES = 32_768  # most frames per store batch (168 MB of 1280-d embeddings)


def index_files(store_path: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The files kept beside the store: frame index, its JSON manifest, the reduced index's PCA."""
    index = Path(f"{os.fspath(store_path)}.frames.faiss")
    return index, Path(f"{index}.json"), Path(f"{os.fspath(store_path)}.frames.pca.npz")


def read_manifest(manifest: Path) -> dict[str, Any] | None:
    """The manifest's state, or None (with a warning) when it is missing, unreadable or not an object."""
    if not manifest.exists():
        return None
    try:
        state = json.loads(manifest.read_text())
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read the frame index manifest (%s); rebuilding", manifest, exc)
        return None
    return state


def use_reduced_index(st: Store, cfg: AstradupConfig) -> bool:
    """Whether the library's frame count calls for the reduced frame index."""
    return st.embedded_frame_count() > cfg.match.reduce_above


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def videos_digest(fp: pd.DataFrame, n: int) -> str:
    """SHA-1 of the first ``n`` videos' (id, content hash, feature key): a re-indexed video keeps
    its id, so ids alone cannot tell that its index rows are stale."""
    h = hashlib.sha1()
    for vid, digest, key in fp.iloc[:n].itertuples(index=False):
        h.update(f"{vid}:{digest}:{key}\n".encode())
    return h.hexdigest()


def _extend_or_rebuild(path: Path, manifest: Path, old: dict[str, Any] | None, state: dict[str, Any],
                       vecs: np.ndarray, digest: Callable[[int], str] | None) -> tuple[VectorIndex, str]:
    """The one reuse rule of both modes: extend the saved index when ``old`` (its manifest) lists a
    prefix of ``state``'s videos with the same row counts (and, when ``digest`` is given, the same
    ``digest(n_old)``); otherwise build it from ``vecs``. Saves index and manifest unless reused.

    Returns:
        (index, "reused" | "extended" | "built").
    """
    rows = np.arange(len(vecs), dtype=np.int64)
    outside = state["mode"] == "full"  # the store holds these vectors: the file keeps none
    idx: VectorIndex | None = None
    how = "built"
    resave = False  # a reused file written before the vectors moved out of it
    if old is not None and path.exists():
        try:
            n_old = len(old["ids"])
            if old.get("mode", "full") != state["mode"]:
                log.warning("%s holds a %s frame index; building the %s one", path, old.get("mode", "full"), state["mode"])
            elif (old["dim"] == state["dim"] and old["ids"] == state["ids"][:n_old]
                  and old["counts"] == state["counts"][:n_old]
                  and (digest is None or old.get("videos_sha1") == digest(n_old))):
                start = int(sum(old["counts"]))
                idx = VectorIndex.load(path, vectors=vecs[:start] if outside else None)
                resave = outside and not idx.vectors_outside
                if idx.dim != state["dim"] or idx.ntotal != start:
                    raise IndexError_(f"{path} holds {idx.ntotal} vectors of dim {idx.dim}, but its "
                                      f"manifest lists {start} of dim {state['dim']}")
                if start < len(vecs):
                    idx.add(vecs[start:], rows[start:])
                    how = "extended"
                else:
                    how = "reused"
            else:
                log.info("videos changed since the %s frame index was built; rebuilding it", state["mode"])
        except (OSError, ValueError, KeyError, TypeError, AstradupError) as exc:
            log.warning("%s: cannot reuse the %s frame index (%s); rebuilding it", path, state["mode"], exc)
            idx, how = None, "built"
    if idx is None:
        idx = VectorIndex(state["dim"], flat_max=ALL_PAIRS_FLAT_MAX)
        idx.add(vecs, rows)
    if how != "reused" or resave:
        idx.save(path, vectors=not outside)
        _write_atomic(manifest, lambda p: p.write_text(json.dumps(state)))
    return idx, how


# -- the full frame index ---------------------------------------------------------------------

def stack_features(features: dict[int, VideoFeatures]) -> dict[str, np.ndarray]:
    """Every video's frames as flat arrays, by ascending video id: ``ids``, ``hash_codes`` and
    ``hash_video`` always; ``frame_vecs``, ``frame_video`` and ``video_vecs`` (descriptors) when
    every video has embeddings."""
    ids = sorted(features)
    out: dict[str, Any] = {"ids": np.asarray(ids, dtype=np.int64)}
    emb = [e for e in (features[i].embeddings for i in ids) if e is not None]
    if emb and len(emb) == len(ids):
        if len({e.shape[1] for e in emb}) > 1:
            raise StoreError(f"the store holds frame embeddings of {sorted({e.shape[1] for e in emb})} dimensions "
                             "(videos indexed with different features.compact_dim); run `astradup index` again")
        out["frame_vecs"] = np.concatenate(emb).astype(np.float32)
        out["frame_video"] = np.concatenate([np.full(len(e), i, dtype=np.int64) for i, e in zip(ids, emb)])
        out["video_vecs"] = np.stack([features[i].descriptor for i in ids]).astype(np.float32)  # type: ignore[misc]
    out["hash_codes"] = np.concatenate([features[i].phash for i in ids]) if ids else np.zeros((0, 32), np.uint8)
    out["hash_video"] = np.concatenate([np.full(features[i].n_frames, i, dtype=np.int64) for i in ids]) if ids else np.zeros(0, np.int64)
    return out


def frame_index(store_path: str | os.PathLike[str] | None, ids: np.ndarray, frame_video: np.ndarray,
                frame_vecs: np.ndarray, fingerprints: pd.DataFrame | None = None) -> tuple[VectorIndex, str]:
    """The full FAISS frame index (every frame, full dimension), kept beside the store and extended
    incrementally (see the module docstring). ``store_path`` None builds it in memory only.

    ``fingerprints`` (``Store.video_fingerprints()`` of exactly ``ids``) lets the manifest notice a
    video re-indexed under its old id with as many frames as before: its rows are stale.

    Returns:
        (index, "reused" | "extended" | "built").
    """
    counts = np.bincount(np.searchsorted(ids, frame_video), minlength=len(ids)).tolist()
    state: dict[str, Any] = {"mode": "full", "ids": ids.tolist(), "counts": counts, "dim": int(frame_vecs.shape[1])}
    digest = None
    if fingerprints is not None:
        fp = fingerprints[fingerprints["video_id"].isin(ids)].reset_index(drop=True)
        state["videos_sha1"] = videos_digest(fp, len(fp))
        digest = lambda n: videos_digest(fp, n)  # noqa: E731
    if store_path is None:
        fresh = VectorIndex(frame_vecs.shape[1], flat_max=ALL_PAIRS_FLAT_MAX)
        fresh.add(frame_vecs, np.arange(len(frame_vecs), dtype=np.int64))
        return fresh, "built"
    path, manifest, _ = index_files(store_path)
    return _extend_or_rebuild(path, manifest, read_manifest(manifest), state, frame_vecs, digest)


# -- the reduced frame index (large libraries) ---------------------------------------------------

def project_keyframes(frame_vecs: np.ndarray, frame_video: np.ndarray, pca: Any,
                      keyframe_sim: float) -> tuple[np.ndarray, np.ndarray]:
    """Keyframes of full-dimension frame embeddings, projected with a fitted :class:`PCAReducer`.

    Keyframes are chosen on the full vectors (``select_keyframes(..., max_sim=keyframe_sim)``), so
    the choice does not depend on the PCA. A frame equal to the PCA mean projects to zero and has
    no direction; it is dropped. Returns (vectors (n, out_dim) float32, their video ids).
    """
    if len(frame_vecs) == 0:
        return np.zeros((0, pca.out_dim), np.float32), np.zeros(0, np.int64)
    keep = select_keyframes(frame_vecs, frame_video, max_sim=keyframe_sim)
    y = pca.transform(frame_vecs[keep])
    ok = np.linalg.norm(y, axis=1) > 0
    return y[ok], np.asarray(frame_video, dtype=np.int64)[keep][ok]


@dataclass
class ReducedFrames:
    """One pass over the store for the reduced index: its rows and the projected descriptors.

    Attributes:
        ids: every video id, ascending.
        key_vecs: (n_keyframes, index_dim) projected keyframes: the index's rows, in ``ids`` order.
        key_video: (n_keyframes,) video id of each row.
        counts: keyframes per video of ``ids`` (with ``ids``, maps index rows back to videos).
        video_ids, video_vecs: videos with a descriptor and their projected descriptors.
    """

    ids: np.ndarray
    key_vecs: np.ndarray
    key_video: np.ndarray
    counts: np.ndarray
    video_ids: np.ndarray
    video_vecs: np.ndarray


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool, unit: str) -> Iterator:
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True)


def fit_pca(st: Store, dim: int) -> PCAReducer:
    """Fit the PCA on about PCA_SAMPLE_ROWS frames: a seeded random subset of the frames of a
    seeded random sample of videos that hold PCA_SAMPLE_READ times as many (more videos, so long
    ones do not dominate), read batch by batch."""
    fc = st.frame_counts()
    rng = np.random.default_rng(PCA_SEED)
    order = rng.permutation(len(fc))
    cum = np.cumsum(fc["n_frames"].fillna(0).to_numpy()[order])
    chosen = fc["video_id"].to_numpy()[order[: int(np.searchsorted(cum, PCA_SAMPLE_READ * PCA_SAMPLE_ROWS)) + 1]]
    n_read = int(cum[len(chosen) - 1]) if len(chosen) else 0
    keep_p = min(1.0, PCA_SAMPLE_ROWS / max(n_read, 1))
    parts = []
    for b in st.iter_embeddings(chosen, STREAM_VIDEOS, STREAM_FRAMES):
        if len(b.embeddings):
            parts.append(b.embeddings if keep_p >= 1 else b.embeddings[rng.random(len(b.embeddings)) < keep_p])
    if not parts or sum(len(x) for x in parts) < 2:
        raise IndexError_(f"{st.path}: too few frame embeddings to fit the reduced index's PCA on")
    x = np.concatenate(parts)
    del parts  # the fit makes float32 and float64 copies of its sample: keep one input only
    if dim >= x.shape[1]:
        raise ConfigError(f"match.index_dim must be below the embedding dimension {x.shape[1]}, but got {dim}")
    pca = PCAReducer(dim, sample_max=PCA_SAMPLE_ROWS, seed=PCA_SEED).fit(x)
    log.info("reduced frame index: PCA %d -> %d fitted on %d frames (%.1f%% of the variance)",
             x.shape[1], dim, min(len(x), PCA_SAMPLE_ROWS), 100 * (pca.explained_variance_ratio_ or 0))
    return pca


def reduced_rows(st: Store, pca: Any, keyframe_sim: float, progress: bool = False) -> ReducedFrames:
    """Every video's projected keyframes and descriptor, read from the store batch by batch."""
    ids = st.video_ids()
    kv, kvid, dv, did = [], [], [], []
    batches = st.iter_embeddings(ids, STREAM_VIDEOS, STREAM_FRAMES)
    n_batches = max(-(-len(ids) // STREAM_VIDEOS), -(-st.embedded_frame_count() // STREAM_FRAMES))  # at least
    for b in _progress(batches, n_batches, "keyframes", progress, unit="batch"):
        vecs, owner = project_keyframes(b.embeddings, b.frame_video, pca, keyframe_sim)
        kv.append(vecs)
        kvid.append(owner)
        if len(b.descriptors):
            nonzero = np.linalg.norm(b.descriptors, axis=1) > 0  # a video without frames
            d = pca.transform(b.descriptors[nonzero])
            ok = np.linalg.norm(d, axis=1) > 0
            dv.append(d[ok])
            did.append(b.descriptor_ids[nonzero][ok])
    dim = pca.out_dim
    key_vecs = np.concatenate(kv) if kv else np.zeros((0, dim), np.float32)
    key_video = np.concatenate(kvid) if kvid else np.zeros(0, np.int64)
    counts = np.bincount(np.searchsorted(ids, key_video), minlength=len(ids)).astype(np.int64)
    return ReducedFrames(
        ids=ids, key_vecs=key_vecs, key_video=key_video, counts=counts,
        video_ids=np.concatenate(did) if did else np.zeros(0, np.int64),
        video_vecs=np.concatenate(dv) if dv else np.zeros((0, dim), np.float32),
    )


def saved_pca(state: dict[str, Any], pca_path: Path, cfg: AstradupConfig | None) -> tuple[PCAReducer | None, str]:
    """The PCA a reduced manifest vouches for, or (None, why not). ``cfg`` None skips the check
    that the saved parameters equal the configured ones (a query uses the index as saved)."""
    if state.get("mode", "full") != "reduced":
        return None, f"the saved frame index is {state.get('mode', 'full')}, not reduced"
    if cfg is not None:
        m = cfg.match
        if state.get("dim") != m.index_dim or state.get("keyframe_sim") != m.keyframe_sim:
            return None, (f"the saved reduced index has index_dim={state.get('dim')}, keyframe_sim="
                          f"{state.get('keyframe_sim')}; the config asks for {m.index_dim}, {m.keyframe_sim}")
    if not pca_path.is_file():
        return None, f"{pca_path} is missing"
    try:
        if _sha1(pca_path) != state.get("pca_sha1"):
            return None, f"{pca_path} is not the PCA the index was built with (changed or damaged)"
        pca = PCAReducer.load(pca_path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, AstradupError) as exc:
        return None, f"{pca_path} cannot be read ({exc})"
    if pca.out_dim != state.get("dim") or pca.in_dim != state.get("in_dim"):
        return None, f"{pca_path} maps {pca.in_dim} -> {pca.out_dim} dimensions, not what the manifest says"
    return pca, ""


def _usable_pca(st: Store, old: dict[str, Any] | None, pca_path: Path, cfg: AstradupConfig) -> PCAReducer | None:
    """The saved PCA when the manifest vouches for it and it fits the store, else None (warned)."""
    if old is None:
        if pca_path.exists():
            log.warning("%s has no manifest vouching for it; refitting the PCA and rebuilding", pca_path)
        return None
    pca, why = saved_pca(old, pca_path, cfg)
    if pca is not None and pca.in_dim != st.embedding_dim():
        why = f"{pca_path} projects {pca.in_dim}-d embeddings, the store holds {st.embedding_dim()}-d"
        pca = None
    if pca is None:
        log.warning("%s; refitting the PCA and rebuilding the reduced frame index", why)
    return pca


def reduced_frame_index(st: Store, store_path: str | os.PathLike[str], cfg: AstradupConfig,
                        progress: bool = False) -> tuple[VectorIndex, str, ReducedFrames]:
    """The reduced frame index, kept beside the store and extended incrementally.

    A later run projects every video with the *saved* PCA and extends the index as the module
    docstring says. A changed mode, ``index_dim``, ``keyframe_sim`` or embedding dimension, or a
    missing, damaged or unvouched PCA file logs a warning, refits the PCA and rebuilds the index;
    other changes to the library rebuild the index with the saved PCA.

    Returns:
        (index, "reused" | "extended" | "built", the pass's :class:`ReducedFrames`).
    """
    m = cfg.match
    index_path, manifest, pca_path = index_files(store_path)
    old = read_manifest(manifest)
    pca = _usable_pca(st, old, pca_path, cfg)
    if pca is None:
        old = None  # a new PCA: nothing saved can be extended
        pca = fit_pca(st, m.index_dim)
        _write_atomic(pca_path, pca.save)
    frames = reduced_rows(st, pca, m.keyframe_sim, progress)
    fp = st.video_fingerprints()
    state = {"mode": "reduced", "dim": m.index_dim, "in_dim": pca.in_dim, "keyframe_sim": m.keyframe_sim,
             "pca_sha1": _sha1(pca_path), "videos_sha1": videos_digest(fp, len(fp)),
             "ids": frames.ids.tolist(), "counts": frames.counts.tolist()}
    idx, how = _extend_or_rebuild(index_path, manifest, old, state, frames.key_vecs,
                                  lambda n: videos_digest(fp, n))
    return idx, how, frames


# -- the saved index as a query sees it ------------------------------------------------------------

def store_vectors(st: Store, state: dict[str, Any]) -> np.ndarray | None:
    """The store's embeddings of the videos a full index's manifest lists, in index row order, or
    None when the store no longer holds those videos as they were indexed (the index is rebuilt)."""
    ids = np.asarray(state["ids"], dtype=np.int64)
    fp = st.video_fingerprints()
    fp = fp[fp["video_id"].isin(ids)].reset_index(drop=True)
    if len(fp) != len(ids) or state.get("videos_sha1") != videos_digest(fp, len(fp)):
        return None
    owner, vecs = st.frame_embeddings()
    keep = np.isin(owner, ids)
    counts = np.bincount(np.searchsorted(ids, owner[keep]), minlength=len(ids))
    if counts.tolist() != list(state["counts"]):
        return None
    return vecs[keep]


def load_saved_index(st: Store, index_path: Path, state: dict[str, Any]) -> VectorIndex | None:
    """The frame index saved at ``index_path`` (``state``: its manifest), given its vectors back
    from the store when it was saved without them; None when the store no longer holds them."""
    if not VectorIndex.saved_without_vectors(index_path):
        return VectorIndex.load(index_path)
    vecs = store_vectors(st, state)
    if vecs is None:
        log.info("%s: the store's videos changed since the frame index was written; rebuilding it", index_path)
        return None
    return VectorIndex.load(index_path, vectors=vecs)


def build_frame_index(st: Store, store_path: str | os.PathLike[str], cfg: AstradupConfig) -> str:
    """Write (or extend) the frame index files beside the store, in the mode ``cfg`` calls for;
    returns how ("built" | "extended" | "reused")."""
    if st.embedded_frame_count() == 0:
        raise IndexError_(f"{store_path}: no frame embeddings to index (run `astradup index` with an embedding model)")
    if use_reduced_index(st, cfg):
        return reduced_frame_index(st, store_path, cfg)[1]
    s = stack_features(st.load_features())
    return frame_index(store_path, s["ids"], s["frame_video"], s["frame_vecs"], st.video_fingerprints())[1]


def load_or_build(st: Store, store_path: str | os.PathLike[str], cfg: AstradupConfig,
                  state: dict[str, Any] | None) -> tuple[VectorIndex, dict[str, Any], str]:
    """The frame index saved beside the store (``state``: its manifest, or None when it has to be
    built), built first when missing or when the store no longer holds its vectors as indexed.

    Returns:
        (index, its manifest, "loaded" or how :func:`build_frame_index` wrote it).
    """
    index_path, manifest, _ = index_files(store_path)
    index = load_saved_index(st, index_path, state) if state is not None else None
    if index is not None and state is not None:
        return index, state, "loaded"
    how = build_frame_index(st, store_path, cfg)
    state = json.loads(manifest.read_text())
    index = load_saved_index(st, index_path, state)
    if index is None:
        raise IndexError_(f"{index_path}: the frame index just written does not match the store")
    return index, state, how


@dataclass
class SavedFrameIndex:
    """The frame index a query searches: the index, each row's video id, and the PCA (reduced mode).

    Attributes:
        index: the FAISS index as saved beside the store.
        owner: (ntotal,) video id of each index row.
        pca: the saved PCA of a reduced index, else None.
        keyframe_sim: the saved keyframe threshold of a reduced index (cosine), else None.
    """

    index: VectorIndex
    owner: np.ndarray
    pca: PCAReducer | None
    keyframe_sim: float | None

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """A query's frame embeddings as the index holds frames (keyframes through the PCA when reduced).
        Raises :class:`StoreError` when the library's embeddings have another dimension (indexed
        with another ``features.compact_dim``)."""
        lib_dim = self.pca.in_dim if self.pca is not None else self.index.dim
        if embeddings.shape[1] != lib_dim:
            raise StoreError(f"the library's frame embeddings have {lib_dim} dimensions, the query's "
                             f"{embeddings.shape[1]} (features.compact_dim differs); run `astradup index` "
                             "again to re-extract the library with these settings")
        if self.pca is None:
            return embeddings
        return project_keyframes(embeddings, np.zeros(len(embeddings), np.int64), self.pca, float(self.keyframe_sim or 0))[0]


def open_frame_index(st: Store, store_path: str | os.PathLike[str], cfg: AstradupConfig) -> SavedFrameIndex:
    """The frame index kept beside the store, built first (in the mode ``cfg`` calls for) when it
    is missing, or when a reduced index's PCA is missing or damaged (with a warning)."""
    index_path, manifest, pca_path = index_files(store_path)
    state = read_manifest(manifest) if index_path.exists() else None
    pca = None
    if state is not None and state.get("mode", "full") == "reduced":
        pca, why = saved_pca(state, pca_path, None)
        if pca is None:
            log.warning("%s; rebuilding the frame index", why)
            state = None
    index, state, how = load_or_build(st, store_path, cfg, state)
    if how != "loaded":
        pca = saved_pca(state, pca_path, None)[0] if state.get("mode", "full") == "reduced" else None
    owner = np.repeat(np.asarray(state["ids"], dtype=np.int64), state["counts"])
    keyframe_sim = float(state["keyframe_sim"]) if pca is not None else None
    return SavedFrameIndex(index, owner, pca, keyframe_sim)
