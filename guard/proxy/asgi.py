"""`GuardASGI`: the pure ASGI app `guard serve` runs on the proxy port (never BaseHTTPMiddleware).

It is the outermost boundary: the only place with a broad `except`, which answers 500 with a fixed body
and counts `guard_unhandled_errors_total`. It also owns draining: once `start_draining()` is called, new
requests get 503 while those in flight finish (`wait_idle`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from starlette.routing import BaseRoute, Router
from starlette.types import Message, Receive, Scope, Send

from guard.metrics import GuardMetrics, RejectReason
from guard.proxy import errors
from guard.proxy.pipeline import Pipeline

log = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")
SIDE_PREFIX = "/guard/"
# The HTTP parser (httptools) sets no bound on a request's head; past this many bytes of header names and
# values the request is refused (431) rather than forwarded, as common front proxies do (nginx: 32 KiB).
MAX_HEADER_BYTES = 64 * 1024
_HEADERS_TOO_LARGE = errors.error_body(
    f"Request headers exceed {MAX_HEADER_BYTES} bytes.", "headers_too_large"
)


async def send_error_if_possible(send: Send, started: list[bool], status: int, body: bytes) -> None:
    if started[0]:
        return  # headers are gone; the server ends the connection
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class GuardASGI:
    """The proxy app. `lifespan` is left to the process (`guard serve` starts the runtime itself)."""

    def __init__(self, pipeline: Pipeline, metrics: GuardMetrics, side_routes: Sequence[BaseRoute] = ()) -> None:
        # The guard's own endpoints on this port (a deferred review's result URL), all under `/guard/`.
        self._side = Router(routes=list(side_routes)) if side_routes else None
        self._pipeline = pipeline
        self._metrics = metrics
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def start_draining(self) -> None:
        self._draining = True

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight; False if `timeout_s` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _ack_lifespan(receive, send)
            return  # websockets are not proxied: the connection is closed unanswered
        if self._draining:
            self._metrics.observe_rejected(RejectReason.SHUTTING_DOWN)
            await send_error_if_possible(send, [False], errors.SHUTTING_DOWN.status, errors.SHUTTING_DOWN.body)
            return
        if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            self._metrics.observe_rejected(RejectReason.HEADERS_TOO_LARGE)
            await send_error_if_possible(send, [False], 431, _HEADERS_TOO_LARGE)
            return
        started = [False]

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        self._in_flight += 1
        self._idle.clear()
        try:
            if self._side is not None and str(scope.get("path", "")).startswith(SIDE_PREFIX):
                await self._side(scope, receive, tracking_send)
                return
            await self._pipeline.handle(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the outermost boundary: answer, count, log the type only
            self._metrics.observe_unhandled()
            log.error("unhandled error", extra={"error_type": type(exc).__name__}, exc_info=True)
            await send_error_if_possible(send, started, errors.INTERNAL.status, errors.INTERNAL.body)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()


async def _ack_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
