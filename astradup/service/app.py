"""The app factory: ``create_app(settings) -> FastAPI``, one router per concern, no globals."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from astradup import __version__
from astradup.service.settings import ServiceSettings
from astradup.service.state import AppState
from astradup.service.telemetry import Telemetry


def create_app(settings: ServiceSettings) -> FastAPI:
    """Build the AstraDup query service for one store.

    The frame index is loaded in a background thread when the app starts (``/ready`` answers 503
    with the reason until it is) and reloaded when a newer index run appears.
    """
    from astradup.service.routes import health, library, metrics, query, review, search

    state = AppState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(title="AstraDup", version=__version__, lifespan=lifespan,
                  description="Is this upload already in the library? Matches, pairs, review and search.")
    app.state.astradup = state
    app.state.telemetry = Telemetry(state)
    for r in (health.router, metrics.router, query.router, library.router, search.router, review.router):
        app.include_router(r)
    app.add_middleware(_Middleware, telemetry=app.state.telemetry)
    return app


class _Middleware:
    """Request counts and latency by route (an ASGI middleware over :class:`Telemetry`)."""

    def __init__(self, app, telemetry: Telemetry):
        self._asgi = telemetry.middleware(app)

    async def __call__(self, scope, receive, send):
        await self._asgi(scope, receive, send)
