"""Small ASGI helpers the pipeline uses: read a bounded request body, send a complete reply, find the path
to forward, and notice a client that went away mid-stream."""

from __future__ import annotations

import asyncio
from urllib.parse import quote, unquote, urlsplit

from starlette.types import Receive, Scope, Send

from guard.errors import GuardError, RequestError
from guard.proxy.headers import RawHeaders


class ClientDisconnectedError(GuardError):
    """The caller closed the connection before the guard answered."""


async def read_body(receive: Receive, limit: int, declared_length: bytes | None) -> bytes:
    """The whole request body, refused with 413 as soon as it is known to exceed `limit` (from the
    declared Content-Length before reading anything, else while reading)."""
    if declared_length is not None:
        try:
            declared = int(declared_length)
        except ValueError:
            raise RequestError(400, "Content-Length is not a number", "invalid_request") from None
        if declared > limit:
            raise RequestError(413, f"request body is larger than the limit of {limit} bytes", "body_too_large")
    first = b""
    parts: list[bytes] | None = None
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestError(
                    413, f"request body is larger than the limit of {limit} bytes", "body_too_large"
                )
            # Most bodies arrive in one message: keep it without copying.
            if parts is None and not first:
                first = chunk
            else:
                if parts is None:
                    parts = [first]
                parts.append(chunk)
        if not message.get("more_body", False):
            return first if parts is None else b"".join(parts)


async def send_reply(send: Send, status: int, body: bytes, headers: RawHeaders) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def forward_path(scope: Scope) -> tuple[str, str]:
    """(percent-encoded path to forward, decoded path to match routes on).

    Only the path of the request target is used: an absolute-form target (`GET http://other/x`) loses its
    scheme and authority, so the request still goes to the configured upstream, and routes are matched on
    the same path that is forwarded (else a screened route could be reached unscreened).
    """
    raw: bytes | None = scope.get("raw_path")
    if raw and raw[:1] == b"/":
        encoded = raw.decode("latin-1")
    else:
        target = raw.decode("latin-1") if raw else quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~%")
        encoded = target if target.startswith("/") else (urlsplit(target).path or "/")
        if not encoded.startswith("/"):
            encoded = "/" + encoded
    return encoded, unquote(encoded) if "%" in encoded else encoded


def watch_disconnect(receive: Receive, task: asyncio.Task[object] | None) -> tuple[asyncio.Task[None], list[bool]]:
    """A task that cancels `task` if the client disconnects; the returned flag list's first item tells the
    cancelled task why. Set `flag[1] = True` (done) before the last send so a normal end isn't taken for
    a disconnect."""
    state = [False, False]

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not state[1] and task is not None:
                    state[0] = True
                    task.cancel()
                return

    return asyncio.get_running_loop().create_task(watch()), state
