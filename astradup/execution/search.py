"""Rank the library's videos, and the moments in them, by one query vector (a CLIP text prompt or
an example image embedded like the frames).

A full frame index (every frame at full dimension) is searched with FAISS; a reduced index holds
PCA-projected keyframes, not frames with times, so the store's embeddings are scanned a batch at a
time instead (exact, bounded memory, slower on very large libraries).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from astradup.config import AstradupConfig
from astradup.errors import ConfigError
from astradup.execution.query import QueryIndex
from astradup.store.store import Store

log = logging.getLogger(__name__)

SEARCH_COLUMNS = ["rank", "path", "video_id", "score", "moments"]


def _hits_from_index(qi: QueryIndex, vec: np.ndarray, k: int) -> pd.DataFrame:
    sims, rows = qi.search(vec[None], min(k, qi.n_vectors))
    ok = rows[0] >= 0
    rows, sims = rows[0][ok], sims[0][ok]
    starts = np.concatenate([[0], np.cumsum(qi.counts)[:-1]])
    pos = np.searchsorted(qi.ids, qi.owner[rows])
    return pd.DataFrame({"video_id": qi.owner[rows], "idx": rows - starts[pos], "sim": sims})


def _hits_from_scan(st: Store, vec: np.ndarray, per_video: int) -> pd.DataFrame:
    parts = []
    for b in st.iter_embeddings():
        if not len(b.embeddings):
            continue
        sims = b.embeddings @ vec
        first = np.searchsorted(b.frame_video, b.frame_video, side="left")
        df = pd.DataFrame({"video_id": b.frame_video, "idx": np.arange(len(sims)) - first, "sim": sims})
        parts.append(df.sort_values("sim", ascending=False).groupby("video_id").head(per_video))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["video_id", "idx", "sim"])


def search_vector(st: Store, vec: np.ndarray, qi: QueryIndex | None = None, top: int = 10,
                  moments: int = 3, min_gap: float = 2.0) -> pd.DataFrame:
    """The ``top`` videos whose frames are most similar (cosine) to ``vec``, best first.

    Args:
        st: the open store.
        vec: one L2-normalised query vector in the frame embedding space, shape (dim,).
        qi: the loaded frame index (searched when it is a full index; None scans the store).
        top: most videos returned.
        moments: most moments listed per video (frames at least ``min_gap`` seconds apart).
        min_gap: seconds between two listed moments of one video.

    Returns:
        rank, path (relative to the media folder), video_id, score (best frame cosine) and moments
        (a list of ``{"t": seconds, "score": cosine}``, best first).
    """
    if top < 1:
        raise ConfigError(f"top must be >= 1, but got {top}")
    vec = np.asarray(vec, dtype=np.float32).reshape(-1)
    dim = st.embedding_dim()
    if dim is None:
        raise ConfigError(f"{st.path}: no frame embeddings in the store to search")
    if dim != len(vec):
        raise ConfigError(f"{st.path}: the query vector has {len(vec)} dimensions but the stored frames have {dim}; "
                          "search with the model the store was indexed with")
    if qi is not None and qi.mode == "full":
        hits = _hits_from_index(qi, vec, max(256, top * moments * 40))
    else:
        hits = _hits_from_scan(st, vec, per_video=max(moments * 8, 16))
    if hits.empty:
        return pd.DataFrame(columns=SEARCH_COLUMNS)
    ids = sorted({int(v) for v in hits["video_id"]})
    ph = ", ".join("?" * len(ids))
    times = st.sql(f"SELECT video_id, idx, t FROM frames WHERE video_id IN ({ph})", ids)
    rel = st.sql(f"SELECT video_id, rel_path FROM videos WHERE video_id IN ({ph})", ids).set_index("video_id")["rel_path"]
    hits = hits.astype({"video_id": "int64", "idx": "int64"}).merge(times, on=["video_id", "idx"], how="inner")
    best = hits.groupby("video_id")["sim"].max().sort_values(ascending=False).head(top)
    out = []
    for rank, (vid, score) in enumerate(best.items(), start=1):
        if vid not in rel.index:
            continue
        picked: list[dict] = []
        for r in hits[hits["video_id"] == vid].sort_values("sim", ascending=False).itertuples():
            if all(abs(r.t - m["t"]) >= min_gap for m in picked):
                picked.append({"t": round(float(r.t), 3), "score": round(float(r.sim), 4)})
            if len(picked) >= moments:
                break
        out.append({"rank": rank, "path": rel.loc[vid], "video_id": int(vid), "score": round(float(score), 4),
                    "moments": picked})
    return pd.DataFrame(out, columns=SEARCH_COLUMNS)


def search(store_path: str | os.PathLike[str], text: str | None = None, image: str | os.PathLike[str] | None = None,
           config: AstradupConfig | None = None, top: int = 10, moments: int = 3,
           index: QueryIndex | None = None) -> pd.DataFrame:
    """Rank videos by a text prompt (CLIP stores) or an example image (any embedder).

    ``config`` defaults to the one the store was last indexed with, so the query is embedded by the
    same model as the frames. Exactly one of ``text`` and ``image`` is given.
    """
    from astradup.execution.query import store_config
    from astradup.features.text import encode_image, encode_text

    if (text is None) == (image is None):
        raise ConfigError("give either a text query or --image, not both and not neither")
    with Store(store_path, read_only=True) as st:
        cfg = config or store_config(st) or AstradupConfig()
        vec = encode_text([text], cfg)[0] if text is not None else encode_image(image, cfg)[0]  # type: ignore[arg-type]
        if index is None:
            try:
                index = QueryIndex.load(store_path, cfg, st)
            except Exception as exc:  # noqa: BLE001 - the index files are an optimisation; scan instead
                log.warning("%s: frame index unavailable (%s); scanning the store", store_path, exc)
        return search_vector(st, vec, index, top=top, moments=moments)
