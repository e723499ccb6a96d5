"""Migrate a store's full MobileNetV2 frame embeddings to compact ones, without decoding again.

``features.compact_dim`` projects each frame's L2-normalised 1280-d MobileNetV2 embedding on the
first directions of a shipped basis (:func:`astradup.features.embedding.compact`), so a video
indexed with full embeddings under otherwise equal settings holds everything its compact
features are made of. :func:`compact_store` projects those videos' stored frame embeddings,
recomputes their video descriptors and relabels them with the compact settings' feature key, a
batch of videos per transaction: a store interrupted part way holds whole videos of either kind,
and the next call carries on. ``astradup index`` runs it before deciding what to re-extract, so an
old store migrates in seconds instead of being re-indexed; the frame index beside the store is
rebuilt by the next match (its manifest records feature keys and dimension).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from astradup.store.rows import list_array, stored_embedding
from astradup.store.store import Store

log = logging.getLogger(__name__)

BATCH_VIDEOS = 256  # videos per transaction


def compactable(st: Store, cfg) -> tuple[list[int], str]:
    """(ids of the videos whose stored embeddings can be projected to ``cfg``'s compact
    embeddings, the feature key they get): videos indexed with full embeddings and otherwise
    ``cfg``'s settings. Empty when ``cfg`` keeps full embeddings or does not use MobileNetV2."""
    from astradup.features.specs import feature_key, legacy_feature_key

    f = cfg.features
    if f.embedding != "mobilenetv2" or not f.compact_dim:
        return [], feature_key(cfg)
    full = cfg.replace(**{"features.compact_dim": 0})
    old = sorted({feature_key(full), legacy_feature_key(full)})
    ids = st.sql(f"SELECT video_id FROM videos WHERE feature_key IN ({', '.join('?' * len(old))}) ORDER BY video_id",
                 old)["video_id"].astype(np.int64).tolist()
    return ids, feature_key(cfg)


def project_video_rows(frames: pd.DataFrame, dim: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frame rows (video_id, idx, embedding) with full embeddings -> (the same rows with compact
    embeddings, one descriptor row per video), as extraction with ``compact_dim`` makes them:
    each video's frames projected together, its descriptor the normalised mean of them."""
    from astradup.features.embedding import compact, video_descriptor

    out_frames, out_desc = [], []
    for vid, g in frames.groupby("video_id", sort=True):
        e = np.stack(g["embedding"].to_numpy()).astype(np.float32)
        c = compact(e, dim)
        out_frames.append(pd.DataFrame({"video_id": g["video_id"].to_numpy(), "idx": g["idx"].to_numpy(),
                                        "embedding": list(stored_embedding(c))}))
        out_desc.append((int(vid), stored_embedding(video_descriptor(c))))
    fr = pd.concat(out_frames, ignore_index=True) if out_frames else pd.DataFrame(columns=["video_id", "idx", "embedding"])
    desc = pd.DataFrame({"video_id": [v for v, _ in out_desc], "embedding": [d for _, d in out_desc]})
    return fr, desc


def _arrow(df: pd.DataFrame, keys: list[str]) -> pa.Table:
    cols = {k: pa.array(df[k].to_numpy(), pa.int64() if k == "video_id" else pa.int32()) for k in keys}
    cols["embedding"] = list_array(list(df["embedding"]), pa.float32())
    return pa.table(cols)


def compact_store(st: Store, cfg, batch: int = BATCH_VIDEOS) -> int:
    """Project the frame embeddings of :func:`compactable` videos to ``cfg.features.compact_dim``
    dimensions in place, with their descriptors and feature key; returns how many videos were
    migrated. A batch that fails is rolled back whole (its videos keep their full embeddings and
    old key, so they are re-extracted or migrated next time)."""
    ids, key = compactable(st, cfg)
    if not ids:
        return 0
    dim = int(cfg.features.compact_dim)
    log.info("%s: projecting the full frame embeddings of %d videos onto %d dimensions (features.compact_dim); "
             "no decoding needed", st.path, len(ids), dim)
    con = st.con
    done = 0
    for i in range(0, len(ids), batch):
        chunk = ids[i:i + batch]
        marks = ", ".join("?" * len(chunk))
        rows = st.sql(f"SELECT video_id, idx, embedding FROM frames WHERE video_id IN ({marks}) "
                      "AND embedding IS NOT NULL ORDER BY video_id, idx", chunk)
        fr, desc = project_video_rows(rows, dim)
        with st.temp_table("new_frames", _arrow(fr, ["video_id", "idx"])), \
                st.temp_table("new_desc", _arrow(desc, ["video_id"])):
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("UPDATE frames SET embedding = n.embedding FROM new_frames n "
                            "WHERE frames.video_id = n.video_id AND frames.idx = n.idx")
                con.execute("UPDATE descriptors SET embedding = n.embedding FROM new_desc n "
                            "WHERE descriptors.video_id = n.video_id")
                con.execute(f"UPDATE videos SET feature_key = ? WHERE video_id IN ({marks})", [key, *chunk])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        done += len(chunk)
    return done
