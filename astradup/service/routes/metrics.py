"""``/metrics`` in Prometheus text format (the app's own registry)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    state = request.app.state.astradup
    try:  # fresh run gauges when the store is readable; the last snapshot otherwise
        with state.access.open() as st:
            state._snapshot(st)
    except Exception:  # noqa: BLE001 - a scrape never fails because the store is busy
        pass
    return Response(request.app.state.telemetry.render(), media_type=CONTENT_TYPE_LATEST)
