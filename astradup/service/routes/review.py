"""The review page at ``/`` (static HTML and JS, no CDN), its queue, and ``POST /decide``.

Decisions go through the same API the CLI uses (:mod:`astradup.review`); ``/decide`` answers
403 unless the server was started with ``--allow-review``.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from astradup.errors import AstradupError
from astradup.service.deps import StateDep, StoreDep, http_error, num, thumb_url
from astradup.service.models import DecisionIn, DecisionOut, QueueItem, ReviewQueue
from astradup.service.routes.library import pair_model

router = APIRouter(tags=["review"])

STATIC = {"review.js": "text/javascript", "review.css": "text/css"}


def _static(name: str) -> str:
    return (resources.files("astradup.service") / "static" / name).read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(_static("index.html"), headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' data:"})


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, f"{name}: no such file")
    return Response(_static(name), media_type=STATIC[name])


@router.get("/review/queue", response_model=ReviewQueue)
def queue(state: StateDep, st: StoreDep, limit: int = Query(50, ge=1, le=1000)) -> ReviewQueue:
    """Pairs without a standing decision, most valuable first, with thumbnails at the aligned times."""
    from astradup.review import review_queue

    try:
        df = review_queue(st, limit=limit)
    except AstradupError as exc:
        raise http_error(exc) from exc
    ids = st.sql("SELECT rel_path, video_id FROM videos").drop_duplicates("rel_path").set_index("rel_path")["video_id"]
    items = []
    for r in df.to_dict("records"):
        if r["a"] not in ids.index or r["b"] not in ids.index:
            continue  # a video forgotten since the match run
        r["a_id"], r["b_id"] = int(ids[r["a"]]), int(ids[r["b"]])
        m = pair_model(r)
        a0, b0 = num(r.get("a_start")), num(r.get("b_start"))
        items.append(QueueItem(**m, offset=None if a0 is None or b0 is None else round(b0 - a0, 3),
                               thumb_a=thumb_url(r["a_id"], a0), thumb_b=thumb_url(r["b_id"], b0)))
    return ReviewQueue(review_enabled=state.settings.allow_review, total=len(items), pairs=items)


@router.post("/decide", response_model=DecisionOut)
def decide(body: DecisionIn, state: StateDep, st: StoreDep) -> DecisionOut:
    """Record duplicate / not-duplicate / skip for one pair (needs ``--allow-review``)."""
    from astradup.review import DECISIONS, record_decision

    if not state.settings.allow_review:
        raise HTTPException(403, "review actions are disabled; start the server with --allow-review")
    if body.decision not in DECISIONS:
        raise HTTPException(400, f"decision must be one of {', '.join(DECISIONS)}, but got {body.decision!r}")
    try:
        rec = record_decision(st, body.a, body.b, body.decision, reviewer=body.reviewer, note=body.note)
    except AstradupError as exc:
        raise http_error(exc) from exc
    return DecisionOut(a=body.a, b=body.b, decision=body.decision,
                       recorded={k: (str(v) if not isinstance(v, (int, float, str, bool, type(None))) else v)
                                 for k, v in dict(rec).items()})
