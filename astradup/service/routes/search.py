"""``/search?q=a rabbit in a forest``: rank videos and moments by CLIP text-frame similarity (stores
indexed with CLIP), or ``/search?image=PATH`` by an example image (any embedder)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from astradup.errors import AstradupError
from astradup.service.deps import StateDep, StoreDep, http_error, thumb_url
from astradup.service.models import Moment, SearchHit, SearchResult

router = APIRouter(tags=["search"])


@router.get("/search", response_model=SearchResult)
def search(state: StateDep, st: StoreDep, q: str | None = Query(None, description="a text prompt (CLIP stores)"),
           image: str | None = Query(None, description="an example image the server can read"),
           top: int = Query(10, ge=1, le=1000), moments: int = Query(3, ge=1, le=50)) -> SearchResult:
    from astradup.execution.search import search_vector
    from astradup.features.text import encode_image, encode_text

    if (q is None) == (image is None) or (q is not None and not q.strip()):
        raise HTTPException(400, "give either q (a text prompt) or image (a path), not both and not neither")
    cfg = state.config or state.effective_config(st)
    try:
        vec = encode_text([q], cfg)[0] if q is not None else encode_image(str(image), cfg)[0]
        df = search_vector(st, vec, state.index, top=top, moments=moments)
    except AstradupError as exc:
        raise http_error(exc) from exc
    hits = [SearchHit(rank=int(r["rank"]), path=r["path"], video_id=int(r["video_id"]), score=float(r["score"]),
                      moments=[Moment(t=m["t"], score=m["score"], thumb=thumb_url(r["video_id"], m["t"])) for m in r["moments"]])
            for r in df.to_dict("records")]
    return SearchResult(query=q if q is not None else str(image), kind="text" if q is not None else "image", hits=hits)
