"""Connection bounds for both listening ports: a uvicorn httptools protocol that limits what one
connection can hold and for how long (issue 15, deliver 2).

What uvicorn does not bound on its own, and why this is a protocol subclass rather than ASGI middleware:
- **Head size while reading.** httptools concatenates a header value until its line ends, so a head that
  never ends grows without limit before any ASGI code runs; uvicorn has no httptools limit (only h11's
  `h11_max_incomplete_event_size`). Here the bytes fed to the parser while a head is incomplete are
  counted, and at `max_head_bytes` the connection gets 431 and is closed: memory stays at the limit.
- **Head and body read time.** uvicorn arms its keep-alive timer only after a response and cancels it on
  any byte, so a connection that never sends, or sends one byte every few seconds, stays open for ever.
  A head must be complete within `head_timeout_s` of the connection opening (or of its first byte after a
  keep-alive wait); a body within `body_timeout_s` of its head. Late: 408 (if no answer began), closed.
- **Connections per port.** uvicorn's `limit_concurrency` still accepts and parses every connection; here
  a connection beyond `max_connections` gets a 503 with `Retry-After` at once and is closed.
Keep-alive idle time is uvicorn's own `timeout_keep_alive` (`keepalive_timeout_s`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-port bounds (from `GuardSettings`); the same values apply to the proxy and admin ports."""

    max_head_bytes: int
    head_timeout_s: float
    body_timeout_s: float
    keepalive_timeout_s: float
    max_connections: int


def _reply(status: str, code: str, message: str, extra: bytes = b"") -> bytes:
    body = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}},
        separators=(",", ":"),
    ).encode()
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: application/json\r\nconnection: close\r\n" + extra
        + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


HEAD_TOO_LARGE = _reply("431 Request Header Fields Too Large", "headers_too_large", "The request head is too large.")
REQUEST_TIMEOUT = _reply("408 Request Timeout", "request_timeout", "The request was not received in time.")
TOO_MANY_CONNECTIONS = _reply(
    "503 Service Unavailable", "too_many_connections", "Too many open connections; retry shortly.",
    b"retry-after: 1\r\n",
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds above. `limits` is set on the subclass
    `bounded_protocol` makes, one per port (uvicorn constructs protocols itself, with its own arguments)."""

    limits: ConnectionLimits
    on_head_too_large: Callable[[], None] | None = None  # counts the 431 (guard_rejected_requests_total)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading a request head (from the connection's start, or after a response)
        self._head_bytes = 0
        self._in_body = False
        self._rejected = False
        self._timer: asyncio.TimerHandle | None = None

    # --- connection ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Refused before uvicorn tracks it: no parser state, no task, one small write.
            self._rejected = True
            self.transport = transport
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.head_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._rejected:
            return
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        # A 408 only where no answer has begun: once a response started, the connection is just cut.
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    # --- reading -----------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._rejected or self.transport.is_closing():
            return
        if not self._in_head:
            super().data_received(data)
            return
        if self._timer is None:  # first byte after a keep-alive wait: the head's clock starts now
            self._arm(self.limits.head_timeout_s)
        room = self.limits.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Feed up to the limit; if the head ended within it, the rest is body (or the next request).
        self._head_bytes += room
        super().data_received(data[:room])
        if self._in_head:
            if not self.transport.is_closing():
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()
                if self.on_head_too_large is not None:
                    self.on_head_too_large()
            self._disarm()
            return
        self.data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._in_body = True
        super().on_headers_complete()
        if not self.transport.is_closing():
            self._arm(self.limits.body_timeout_s)

    def on_message_complete(self) -> None:
        if self._in_body:
            self._in_body = False
            self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # The next head may follow; until its first byte, uvicorn's keep-alive timer bounds the wait.
        self._in_head = True
        self._head_bytes = 0
        if self._in_body:  # answered before the body was read: the body clock no longer applies
            self._in_body = False
            self._disarm()
        super().on_response_complete()


def bounded_protocol(
    limits: ConnectionLimits, on_head_too_large: Callable[[], None] | None = None
) -> type[BoundedHttpToolsProtocol]:
    """A protocol class for one port's `uvicorn.Config(http=...)`."""
    # staticmethod: a plain function set on the class would be bound as a method.
    attrs = {"limits": limits, "on_head_too_large": None if on_head_too_large is None else staticmethod(on_head_too_large)}
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), attrs)
