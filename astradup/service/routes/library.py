"""The library: ``/videos``, ``/pairs``, ``/pairs/{a_id}/{b_id}`` and ``/thumb`` (frame thumbnails)."""

from __future__ import annotations

import io
import json
import os
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from astradup.errors import AstradupError
from astradup.service.deps import StateDep, StoreDep, http_error, num, thumb_url
from astradup.service.models import (
    FramePair,
    Pair,
    PairExplanation,
    PairList,
    Segment,
    Video,
    VideoList,
)
from astradup.store.store import Store

router = APIRouter(tags=["library"])

LABELS = ("exact", "near", "similar", "different")


@router.get("/videos", response_model=VideoList)
def videos(st: StoreDep, limit: int = Query(100, ge=1, le=10000), offset: int = Query(0, ge=0)) -> VideoList:
    total = int(st.con.execute("SELECT count(*) FROM videos").fetchone()[0])
    df = st.sql("SELECT video_id, rel_path, duration, width, height, has_audio, n_frames, size FROM videos "
                "ORDER BY video_id LIMIT ? OFFSET ?", [limit, offset])
    out = [Video(video_id=int(r["video_id"]), path=r["rel_path"], duration=num(r["duration"]),
                 width=None if num(r["width"]) is None else int(r["width"]),
                 height=None if num(r["height"]) is None else int(r["height"]),
                 has_audio=None if r["has_audio"] is None else bool(r["has_audio"]),
                 n_frames=None if num(r["n_frames"]) is None else int(r["n_frames"]),
                 size=None if num(r["size"]) is None else int(r["size"]))
           for r in df.to_dict("records")]
    return VideoList(total=total, videos=out)


def pair_model(r: dict[str, Any]) -> dict[str, Any]:
    return dict(
        a_id=int(r["a_id"]), b_id=int(r["b_id"]), a=r["a"], b=r["b"], score=float(r["score"]), label=r["label"],
        visual=num(r["visual"]), audio=num(r["audio"]), metadata=num(r["metadata"]), confidence=num(r["confidence"]),
        partial=bool(r["partial"]) if r.get("partial") is not None else False,
        segments=[] if num(r["a_start"]) is None else [Segment(a_start=num(r["a_start"]), a_end=num(r["a_end"]),
                                                               b_start=num(r["b_start"]), b_end=num(r["b_end"]))],
    )


@router.get("/pairs", response_model=PairList)
def pairs(st: StoreDep, label: str | None = Query(None, description="exact | near | similar | different"),
          limit: int = Query(100, ge=1, le=10000)) -> PairList:
    """Pairs of the last successful match run, best first."""
    if label is not None and label not in LABELS:
        raise HTTPException(400, f"label must be one of {', '.join(LABELS)}, but got {label!r}")
    df = st.pairs()
    run_id = str(df["run_id"].iloc[0]) if len(df) else None
    if label is not None:
        df = df[df["label"] == label]
    return PairList(run_id=run_id, total=len(df), pairs=[Pair(**pair_model(r)) for r in df.head(limit).to_dict("records")])


def _video(st: Store, vid: int) -> dict[str, Any]:
    row = st.sql("SELECT video_id, path, rel_path FROM videos WHERE video_id = ?", [int(vid)])
    if row.empty:
        raise HTTPException(404, f"video {vid} is not in the store")
    return row.iloc[0].to_dict()


@router.get("/pairs/{a_id}/{b_id}", response_model=PairExplanation)
def pair(a_id: int, b_id: int, state: StateDep, st: StoreDep) -> PairExplanation:
    """One pair explained: per-modality scores, aligned segment, and the best frame pairs with
    thumbnail URLs (video ids as in ``/pairs`` and ``/videos``). The ids may come in either
    order; the pair is scored and returned the way ``/pairs`` has it (``a`` the video whose
    relative path sorts first), so the score is the one ``/pairs`` shows."""
    from astradup.scoring.pair import score_pair

    va, vb = _video(st, a_id), _video(st, b_id)
    if va["rel_path"] > vb["rel_path"]:
        (a_id, va), (b_id, vb) = (b_id, vb), (a_id, va)
    cfg = state.config or state.effective_config(st)
    try:
        feats = st.load_features([a_id, b_id])
        ps = score_pair(feats[a_id], feats[b_id], cfg)
    except AstradupError as exc:
        raise http_error(exc) from exc
    top = []
    for f in ps.explanation.get("top_frames", []):
        ta, tb = float(f[0]), float(f[1])
        top.append(FramePair(t_a=ta, t_b=tb, similarity=num(f[2]) if len(f) > 2 else None,
                             thumb_a=thumb_url(a_id, ta), thumb_b=thumb_url(b_id, tb)))
    seg = Segment(a_start=num(ps.a_start), a_end=num(ps.a_end), b_start=num(ps.b_start), b_end=num(ps.b_end))
    offset = None if seg.a_start is None or seg.b_start is None else round(seg.b_start - seg.a_start, 3)
    return PairExplanation(
        a=va["rel_path"], b=vb["rel_path"], a_id=a_id, b_id=b_id, score=float(ps.score), label=ps.label,
        scores={"visual": num(ps.visual), "audio": num(ps.audio), "metadata": num(ps.metadata),
                "confidence": num(ps.confidence), "partial": bool(ps.partial)},
        segments=seg, offset=offset, top_frames=top, explanation=json.loads(json.dumps(ps.explanation, default=float)),
    )


@router.get("/thumb", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def thumb(st: StoreDep, video_id: int | None = None, path: str | None = Query(None, description="relative path as in /videos"),
          t: float = Query(0.0, ge=0), size: int = Query(240, ge=16, le=960)) -> Response:
    """A JPEG of the frame at ``t`` seconds of a library video (only videos in the store are served)."""
    from PIL import Image

    from astradup.media.decode import thumbnail

    if video_id is not None:
        full = _video(st, video_id)["path"]
    elif path is not None:
        row = st.sql("SELECT path FROM videos WHERE rel_path = ? OR path = ? LIMIT 1", [path, path])
        if row.empty:
            raise HTTPException(404, f"{path}: not a video in the store")
        full = row["path"].iloc[0]
    else:
        raise HTTPException(400, "give video_id or path")
    if not os.path.isfile(full):
        raise HTTPException(404, f"{full}: the file is gone from the media folder")
    try:
        img = thumbnail(full, t, size)
    except AstradupError as exc:
        raise http_error(exc) from exc
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=80)
    return Response(buf.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
