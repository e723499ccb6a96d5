"""Candidate verification, eagerly or mapped in chunks over Dask workers.

``score_candidates`` is the pure per-chunk function: the same call runs in this process and on a
worker. The driver stays the store's only reader: it loads each chunk's features and ships them
with the chunk, so workers need no access to the store file (they may be on other machines).
A chunk whose task fails (a worker lost mid-run, ``KilledWorker``) is scored again in the driver,
so the result always equals the eager one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from astradup.config import AstradupConfig
from astradup.features.video import VideoFeatures
from astradup.scoring.pair import score_pair

log = logging.getLogger(__name__)

# A LocalCluster is worth its start-up (a few seconds) only for this many candidate pairs or more.
DASK_MATCH_ABOVE = 20_000

Chunk = tuple[list[tuple[int, int]], dict[int, VideoFeatures]]


def score_candidates(pairs: Iterable[tuple[int, int]], features: dict[int, VideoFeatures], cfg: AstradupConfig,
                     threshold: float = 0.0) -> list[dict]:
    """Verify candidate pairs: a pure function over features (mapped in chunks on Dask). Rows
    scoring below ``threshold`` are dropped."""
    rows = []
    for a, b in pairs:
        ps = score_pair(features[a], features[b], cfg)
        row = ps.row()
        row["a_id"], row["b_id"] = int(a), int(b)
        if row["score"] >= threshold:
            rows.append(row)
    return rows


def verify_chunks(chunks: Iterator[Chunk], cfg: AstradupConfig, client: Any = None, threshold: float = 0.0,
                  in_flight: int | None = None) -> Iterator[list[dict]]:
    """Score each chunk (pairs, the features of their videos); yield the rows chunk by chunk,
    in the chunks' order.

    With ``client`` (a ``distributed.Client``) chunks run on the workers, at most ``in_flight``
    at a time (default: twice the workers), so the driver holds only those chunks' features.
    Without it they run here, one after another.
    """
    if client is None:
        for pairs, feats in chunks:
            yield score_candidates(pairs, feats, cfg, threshold)
        return
    from distributed import wait

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    window = in_flight or 2 * n_workers
    cfg_future = client.scatter(cfg, broadcast=True)
    run = uuid.uuid4().hex[:8]
    pending: list[tuple[Any, Chunk]] = []

    def collect(fut: Any, chunk: Chunk) -> list[dict]:
        try:
            rows = fut.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker and friends: score it here instead
            log.warning("a verification chunk failed on the cluster (%s: %s); scoring it in this process",
                        type(exc).__name__, exc)
            rows = score_candidates(chunk[0], chunk[1], cfg, threshold)
        fut.release()
        return rows

    for i, chunk in enumerate(chunks):
        fut = client.submit(score_candidates, chunk[0], chunk[1], cfg_future, threshold,
                            key=f"verify-{run}-{i}", pure=False)
        pending.append((fut, chunk))
        if len(pending) >= window:
            wait([pending[0][0]])
            yield collect(*pending.pop(0))
    while pending:
        yield collect(*pending.pop(0))
