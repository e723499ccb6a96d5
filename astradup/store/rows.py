"""Rows of the feature store's tables, built from extracted features (Arrow tables for one insert
per table; see :meth:`astradup.store.store.Store.write_videos`)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from astradup.errors import StoreError
from astradup.features.audio import AudioFeatures
from astradup.features.video import VideoFeatures
from astradup.paths import to_text

INFO_COLS = (
    "duration", "avg_fps", "real_fps", "variable_fps", "width", "height", "rotation",
    "display_aspect", "video_codec", "audio_codec", "has_audio", "sample_rate", "channels",
    "bit_rate", "file_size", "container", "frame_count",
)


# Frame embeddings and descriptors are kept to 5 decimals (at most 5e-6 off; a unit vector's
# cosine to its stored self stays above 0.9999997). Such values are what DuckDB's ALP codec packs
# as integers: 1280-d MobileNetV2 embeddings take about 43 % less disk than float32's last bits
# allow, 96-d compact ones about 34 % less.
EMBEDDING_DECIMALS = 5


def stored_embedding(x: np.ndarray) -> np.ndarray:
    """``x`` as the store keeps embeddings: float32 values rounded to ``EMBEDDING_DECIMALS``
    decimals (in float64 first, so each is the float32 nearest its decimal)."""
    return np.round(np.asarray(x, dtype=np.float64), EMBEDDING_DECIMALS).astype(np.float32)


def as_stored(vf: VideoFeatures) -> VideoFeatures:
    """``vf`` with its embeddings and descriptor as the store keeps them (:func:`stored_embedding`):
    what a query compares with the library, so an indexed file queried again has its stored features."""
    return dataclasses.replace(
        vf, embeddings=None if vf.embeddings is None else stored_embedding(vf.embeddings),
        descriptor=None if vf.descriptor is None else stored_embedding(vf.descriptor))


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


class VideoRecord(NamedTuple):
    """One video for :meth:`Store.write_videos`: its features and the file facts stored beside
    them (the keyword arguments of :meth:`Store.write_video`)."""

    features: VideoFeatures
    rel_path: str
    size: int
    mtime: float
    content_hash: str
    feature_key: str
    run_id: str
    video_id: int | None = None


VIDEO_COLS = ("video_id", "path", "rel_path", "size", "mtime", "content_hash", "feature_key", *INFO_COLS,
               "n_frames", "decoder", "timings", "run_id", "content_box", "indexed_at")


def list_array(arrays: Sequence[np.ndarray], value_type: pa.DataType) -> pa.ListArray:
    """One list per array (1-d), built from the concatenated values and their offsets."""
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(arrays) if len(arrays) else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))


def binary_rows(x: np.ndarray) -> pa.Array:
    """Each row of a 2-d uint8 array as one BLOB."""
    if not len(x):
        return pa.array([], pa.binary())
    x = np.ascontiguousarray(x, dtype=np.uint8)
    n, width = x.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(x.tobytes())])


class Rows(NamedTuple):
    """One video's values, checked and converted, before its video_id is known."""

    video: tuple  # the videos row from rel_path to content_box (without video_id, path, indexed_at)
    t: np.ndarray
    phash: np.ndarray
    phash_flip: np.ndarray
    embeddings: np.ndarray | None
    quality: np.ndarray
    descriptor: np.ndarray | None
    audio: AudioFeatures | None
    phash_full: np.ndarray | None = None
    phash_full_flip: np.ndarray | None = None

    @classmethod
    def of(cls, item: VideoRecord, key: str, store: Path) -> Rows:
        """Check and convert ``item``.

        Raises:
            StoreError: a per-frame array does not have one row per sampled frame, or a value
                cannot be converted (the message names the file).
        """
        vf = item.features
        try:
            n = vf.n_frames
            t = np.asarray(vf.timestamps, dtype=np.float64)
            ph, phf = (np.asarray(h, dtype=np.uint8) for h in (vf.phash, vf.phash_flip))
            emb = None if vf.embeddings is None or not len(vf.embeddings) else stored_embedding(vf.embeddings)
            quality = np.full(n, np.nan, np.float32) if vf.quality is None else np.asarray(vf.quality, dtype=np.float32)
            full = [None if h is None else np.asarray(h, dtype=np.uint8) for h in (vf.phash_full, vf.phash_full_flip)]
            if (full[0] is None) != (full[1] is None):
                raise ValueError("phash_full and phash_full_flip must both be given or both be None")
            for name, arr in (("phash", ph), ("phash_flip", phf), ("embeddings", emb), ("quality", quality),
                              ("phash_full", full[0]), ("phash_full_flip", full[1])):
                if arr is not None and (len(arr) != n or (n and arr.ndim != (1 if name == "quality" else 2))):
                    raise ValueError(f"{name} has shape {arr.shape}; expected one row per sampled frame ({n})")
            desc = None if vf.descriptor is None else stored_embedding(vf.descriptor).reshape(-1)
            a = vf.audio
            if a is not None:
                a = AudioFeatures(str(a.status), np.asarray(a.fingerprint).astype(np.int64).reshape(-1),
                                  np.asarray(a.mfcc_mean, dtype=np.float64).reshape(-1),
                                  np.asarray(a.mfcc_std, dtype=np.float64).reshape(-1), float(a.rms))
            if vf.content_box is not None and (len(vf.content_box) != 4 or not all(0.0 <= v <= 1.0 for v in vf.content_box)):
                raise ValueError(f"content_box {vf.content_box!r} is not four fractions (top, bottom, left, right)")
            info = vf.info
            video = (to_text(item.rel_path), item.size, item.mtime, item.content_hash, item.feature_key,
                     *[info.get(c) for c in INFO_COLS], n, vf.decoder, json.dumps(vf.timings), item.run_id,
                     None if vf.content_box is None else [float(v) for v in vf.content_box])
        except (TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"{store}: cannot write {vf.path}: {exc}") from exc
        return cls(video, t, ph, phf, emb, quality, desc, a, full[0], full[1])

    def frames(self, vid: int) -> pa.Table:
        n = len(self.t)
        if self.embeddings is not None:
            dim = self.embeddings.shape[1]
            emb = pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32)),
                                           pa.array(self.embeddings.reshape(-1)))
        else:
            emb = pa.nulls(n, type=pa.list_(pa.float32()))
        return pa.table({
            "video_id": pa.array(np.full(n, vid, dtype=np.int64)),
            "idx": pa.array(np.arange(n, dtype=np.int32)),
            "t": pa.array(self.t),
            "phash": binary_rows(self.phash),
            "phash_flip": binary_rows(self.phash_flip),
            "embedding": emb,
            "quality": pa.array(self.quality, type=pa.float32()),
            "phash_full": pa.nulls(n, pa.binary()) if self.phash_full is None else binary_rows(self.phash_full),
            "phash_full_flip": pa.nulls(n, pa.binary()) if self.phash_full_flip is None else binary_rows(self.phash_full_flip),
        })


def video_table(rows: list[Rows], vids: list[int], now: _dt.datetime, keys: list[str], store: Path) -> pa.Table:
    """The videos rows of ``rows``; each column's Arrow type is inferred from its values, and the
    insert casts it to the column's type, as DuckDB casts a bound parameter.

    Raises:
        StoreError: a column's values have types that do not mix (the message names the file).
    """
    cols: dict[str, pa.Array] = {"video_id": pa.array(vids, pa.int64()), "path": pa.array(keys, pa.string())}
    for j, name in enumerate(VIDEO_COLS[2:-1]):
        values = [r.video[j] for r in rows]
        try:
            cols[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            first = next((v for v in values if v is not None), None)
            odd = next((k for k, v in zip(keys, values) if v is not None and type(v) is not type(first)), keys[0])
            raise StoreError(f"{store}: cannot write {odd}: its {name} {values[keys.index(odd)]!r} does not mix with "
                             f"{first!r} of other videos ({exc})") from exc
    cols["indexed_at"] = pa.array([now] * len(rows), pa.timestamp("us"))
    return pa.table(cols)
