"""``/health`` (the process answers) and ``/ready`` (the store and index are loaded)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from astradup import __version__
from astradup.service.deps import StateDep
from astradup.service.models import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:  # async: no thread-pool hop for the liveness probe
    return Health(version=__version__)


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(state: StateDep):
    qi = state.index
    s = state.status
    body = Ready(
        ready=qi is not None, reason=s.reason if qi is None else "", store=str(state.settings.store),
        index_mode=getattr(qi, "mode", None), index_vectors=qi.n_vectors if qi is not None else None,
        index_videos=qi.n_videos if qi is not None else None, index_run=s.index_run, stale=s.stale,
        stale_reason=s.stale_reason, review_enabled=state.settings.allow_review,
    )
    return JSONResponse(body.model_dump(), status_code=200 if qi is not None else 503)
