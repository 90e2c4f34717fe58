"""The `Upstream` extension point (where a screened request goes) and its HTTP implementation on aiohttp.

aiohttp, not httpx: the issue measured a bare starlette proxy at 2,977 req/s with aiohttp against 354 with
httpx at 32 concurrent requests; `benchmarks/bench_proxy.py` re-measures the guard on it.

Contract for implementations:
- `send` returns once response headers arrive; the body is read through the returned `UpstreamResponse`,
  which the caller must `aclose()` (closing early drops the connection instead of returning it).
- Failures become `UpstreamConnectError` (→ 502) or `UpstreamTimeoutError` (→ 504) whose text is fixed;
  the caller answers with `guard.proxy.errors`, never with exception text.
- `scope` is the caller's ASGI scope, for an in-process upstream; the HTTP one ignores it.
- Requests only ever go to the configured base URL: the caller passes a path that starts with "/", and
  the scheme and authority come from settings, whatever Host header or absolute target the caller sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from starlette.types import Scope

from guard.errors import UpstreamConnectError, UpstreamError, UpstreamTimeoutError
from guard.proxy.headers import RawHeaders


_URL_CACHE_SIZE = 1024
# asyncio's default transport write-buffer high-water mark: below it a write never waits for the peer.
_WRITE_BUFFERED = 64 * 1024


def join_prefix(prefix: str, path: str) -> str:
    """The upstream path for a request path under an upstream URL's path `prefix` (no trailing slash).

    `--upstream http://model:8000/v1` and an SDK whose base URL ends in `/v1` both name the prefix: a path
    that already starts with the prefix (`/v1` itself or `/v1/...`) goes as it is, any other path gets it
    prepended (`/chat/completions` → `/v1/chat/completions`). The comparison is on whole segments, so
    `/v10/x` is not under `/v1`."""
    if not prefix or path == prefix or path.startswith(prefix + "/"):
        return path
    return prefix + path


class ResponseTooLargeError(UpstreamError):
    """The upstream's body exceeded what the guard will hold in memory to screen."""


class UpstreamResponse(Protocol):
    status: int
    headers: RawHeaders

    async def read(self, limit: int) -> bytes:
        """The whole body; `ResponseTooLargeError` past `limit` bytes."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    async def start(self) -> None: ...

    async def send(
        self, method: str, path: str, query: str, headers: RawHeaders, body: bytes, scope: Scope | None = None
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    connect_s: float
    read_s: float
    write_s: float
    pool_s: float


@runtime_checkable
class PooledUpstream(Protocol):
    """An upstream with a bounded connection pool, for `/readyz` (issue 15: 260 held streams exhausted
    the pool while the guard said ready)."""

    def saturated(self) -> bool:
        """Every pooled connection is held by a request (or waited for): new requests would queue."""
        ...


class _AiohttpResponse:
    __slots__ = ("status", "headers", "_response", "_done", "_release")

    def __init__(self, response: aiohttp.ClientResponse, release: Callable[[], None]) -> None:
        self.status = response.status
        self.headers: RawHeaders = list(response.raw_headers)
        self._response = response
        self._done = False
        self._release: Callable[[], None] | None = release

    async def read(self, limit: int) -> bytes:
        declared = self._response.content_length
        if declared is not None and declared <= limit:
            # The common case: a sized body within the limit, read in one call.
            try:
                body = await self._response.read()
            except TimeoutError:
                raise UpstreamTimeoutError("upstream read timed out") from None
            except aiohttp.ClientError:
                raise UpstreamConnectError("upstream connection failed mid-body") from None
            self._done = True
            return body
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLargeError("upstream response over the size limit")
            parts.append(chunk)
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                yield chunk
        except TimeoutError:
            raise UpstreamTimeoutError("upstream read timed out") from None
        except aiohttp.ClientError:
            raise UpstreamConnectError("upstream connection failed mid-body") from None
        self._done = True

    async def aclose(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None
        if self._done:
            self._response.release()
        else:
            # Unread body: the connection can't be reused, so drop it instead of draining the model.
            self._response.close()


class AiohttpUpstream:
    """One pooled `ClientSession` per app, created on the running loop in `start()`."""

    def __init__(
        self,
        base_url: str,
        timeouts: UpstreamTimeouts,
        max_connections: int,
        on_pool_change: Callable[[int], None] | None = None,
    ) -> None:
        """`on_pool_change(held)` is told how many requests hold (or wait for) a pooled connection."""
        self._held = 0
        self._on_pool_change = on_pool_change
        base = URL(base_url)
        self._origin = str(base.origin())
        self._prefix = base.raw_path.rstrip("/")
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # Parsed URLs by (path, query): model APIs see a handful of distinct targets; bounded anyway.
        self._urls: dict[tuple[str, str], URL] = {}

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(
            total=None,
            # `connect` covers waiting for a pooled connection plus opening a new one.
            connect=self._timeouts.pool_s + self._timeouts.connect_s,
            sock_connect=self._timeouts.connect_s,
            sock_read=self._timeouts.read_s,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,  # bytes pass through as the upstream encoded them
            cookie_jar=aiohttp.DummyCookieJar(),  # never share one caller's cookies with another
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def send(
        self, method: str, path: str, query: str, headers: RawHeaders, body: bytes, scope: Scope | None = None
    ) -> UpstreamResponse:
        session = self._session
        if session is None:
            raise RuntimeError("AiohttpUpstream.send before start()")
        # `path` starts with "/", so the authority is always the configured one.
        key = (path, query)
        url = self._urls.get(key)
        if url is None:
            url = URL(self._origin + join_prefix(self._prefix, path) + ("?" + query if query else ""), encoded=True)
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            self._urls[key] = url
        out = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)
        self._hold(1)
        try:
            if len(body) > _WRITE_BUFFERED:
                # aiohttp has no write timeout, and a body past the transport's buffer can stall on an
                # upstream that stops reading: sending plus waiting for headers is bounded by write + read.
                async with asyncio.timeout(self._timeouts.write_s + self._timeouts.read_s):
                    response = await session.request(
                        method, url, headers=out, data=body, allow_redirects=False, compress=None
                    )
            else:
                # A body this small is handed to the socket buffer whole (no drain wait); the wait for the
                # answer is bounded by sock_read. No per-request timer on the hot path.
                response = await session.request(
                    method, url, headers=out, data=body or None, allow_redirects=False, compress=None
                )
        except BaseException as exc:
            self._hold(-1)
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeoutError("upstream timed out") from None
            if isinstance(exc, aiohttp.ClientError):
                raise UpstreamConnectError("upstream unreachable") from None
            raise
        return _AiohttpResponse(response, lambda: self._hold(-1))

    def _hold(self, delta: int) -> None:
        self._held += delta
        if self._on_pool_change is not None:
            self._on_pool_change(self._held)

    def saturated(self) -> bool:
        return self._held >= self._max_connections

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
