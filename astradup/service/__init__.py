"""The query service: ``astradup serve`` (FastAPI + uvicorn).

``create_app(ServiceSettings(store=...))`` builds the app: ``/query``, ``/health``, ``/ready``,
``/metrics``, ``/videos``, ``/pairs``, ``/thumb``, ``/search``, the review page at ``/`` and
``/decide`` (with ``allow_review``). fastapi is imported only when this package is.
"""

from __future__ import annotations

from astradup.service.app import create_app
from astradup.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app", "serve"]


def serve(settings: ServiceSettings, log_level: str = "warning") -> None:
    """Run the app with uvicorn on ``settings.host:settings.port`` until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1")
