"""The admin ASGI app, on its own port: `/healthz` (the process answers), `/readyz` (detectors loaded and
warm, not draining), `/metrics` (this app's own registry), plus routes other rooms add (review API,
console) through `extra_routes`. Not on the hot path, so Starlette routing is fine here."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


def create_admin_app(
    registry: CollectorRegistry,
    is_ready: Callable[[], bool],
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """`is_ready` is asked on every `/readyz`; `extra_routes` are mounted after the built-in three."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if is_ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    async def metrics(request: Request) -> Response:
        # Prometheus asks for OpenMetrics when it stores exemplars (trace ids on latency buckets); every
        # other scraper gets the classic text format.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *extra_routes,
    ]
    return Starlette(routes=routes)
