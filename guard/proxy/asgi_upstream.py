"""An `Upstream` that is an ASGI app in the same process: what `GuardMiddleware` wraps.

The wrapped app runs as a task with its own `receive`/`send`: it receives the (possibly rewritten) body
once, then waits for a disconnect that comes when the guard closes the response; what it sends is queued
and read by the pipeline exactly as it reads an HTTP upstream's body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Scope

from guard.errors import UpstreamConnectError
from guard.proxy.headers import RawHeaders
from guard.proxy.upstream import ResponseTooLargeError, UpstreamResponse

log = logging.getLogger(__name__)
_END = object()


class _AsgiResponse:
    def __init__(
        self,
        status: int,
        headers: RawHeaders,
        queue: asyncio.Queue[bytes | object],
        task: asyncio.Task[None],
        disconnect: asyncio.Event,
    ) -> None:
        self.status = status
        self.headers = headers
        self._queue = queue
        self._task = task
        self._disconnect = disconnect

    async def read(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLargeError("app response over the size limit")
            parts.append(chunk)
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise UpstreamConnectError("the wrapped app failed mid-response") from None
            assert isinstance(item, bytes)  # noqa: S101 - queue holds bytes, _END or an exception
            yield item

    async def aclose(self) -> None:
        self._disconnect.set()
        if not self._task.done():
            # The app got its disconnect; give it no further say over the guard's response.
            self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


class AsgiUpstream:
    """Calls `app` in-process. `start`/`aclose` are no-ops: the app's lifespan belongs to its server."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def send(
        self, method: str, path: str, query: str, headers: RawHeaders, body: bytes, scope: Scope | None = None
    ) -> UpstreamResponse:
        inner_scope = dict(scope or {"type": "http", "http_version": "1.1", "scheme": "http"})
        inner_scope["method"] = method
        # The app sees the path the guard matched and screened, never the caller's spelling of it.
        inner_scope["path"] = unquote(path)
        inner_scope["raw_path"] = path.encode("latin-1")
        inner_scope["query_string"] = query.encode("latin-1")
        inner_scope["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
        queue: asyncio.Queue[bytes | object] = asyncio.Queue()
        started: asyncio.Future[tuple[int, RawHeaders]] = asyncio.get_running_loop().create_future()
        disconnect = asyncio.Event()
        body_sent = False

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                if not started.done():
                    started.set_result((int(message["status"]), list(message.get("headers", []))))
            elif kind == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    queue.put_nowait(chunk)
                if not message.get("more_body", False):
                    queue.put_nowait(_END)

        async def run() -> None:
            try:
                await self._app(inner_scope, receive, send)
            except Exception as exc:  # noqa: BLE001 - the wrapped app's boundary: becomes an upstream failure
                log.error("wrapped app raised", extra={"error_type": type(exc).__name__})
                if not started.done():
                    started.set_exception(UpstreamConnectError("the wrapped app failed"))
                queue.put_nowait(exc)
                return
            if not started.done():
                started.set_exception(UpstreamConnectError("the wrapped app sent no response"))
            queue.put_nowait(_END)

        task = asyncio.create_task(run())
        try:
            status, response_headers = await started
        except UpstreamConnectError:
            await task
            raise
        return _AsgiResponse(status, response_headers, queue, task, disconnect)
