"""Dependencies the routers share: the app state, a store cursor, errors mapped to HTTP codes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from astradup.errors import AstradupError, ConfigError, MediaError, StoreError
from astradup.service.state import AppState
from astradup.store.store import Store


def get_state(request: Request) -> AppState:
    return request.app.state.astradup


def get_store(request: Request) -> Iterator[Store]:
    """A store cursor for one request; 503 with the reason when the store cannot be opened (e.g.
    an ``astradup index`` run holds its write lock)."""
    state: AppState = request.app.state.astradup
    try:
        st = state.access.acquire()
    except StoreError as exc:
        raise HTTPException(503, f"store unavailable: {exc}") from exc
    try:
        yield st
    finally:
        state.access.release(st)


def http_error(exc: AstradupError) -> HTTPException:
    """The HTTP answer to a package error: 422 bad media, 400 bad request, 503 store, 500 else."""
    if isinstance(exc, MediaError):
        return HTTPException(422, str(exc))
    if isinstance(exc, ConfigError):
        return HTTPException(400, str(exc))
    if isinstance(exc, StoreError):
        return HTTPException(503, f"store unavailable: {exc}")
    return HTTPException(400, str(exc))


def num(x: Any) -> float | None:
    """A JSON-safe float: None for missing or NaN."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def thumb_url(video_id: int, t: float | None) -> str:
    return f"/thumb?video_id={int(video_id)}&t={0.0 if t is None else round(float(t), 2)}"


StateDep = Annotated[AppState, Depends(get_state)]
StoreDep = Annotated[Store, Depends(get_store)]
