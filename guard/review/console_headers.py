"""Security headers for the reviewer console (issue 15, deliver 8): a pure ASGI wrapper that adds them to
every response of the static console, so the page holding a reviewer's token and held personal data can't
be framed (clickjacking), sniffed into another type, or made to run scripts from anywhere but itself.

The console is static files plus `app.js`, which writes with textContent and calls the API on the same
origin, so the policy allows only 'self' for scripts, styles, images and fetches, and nothing else.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
CONSOLE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONSOLE_CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_NAMES = {name for name, _ in CONSOLE_HEADERS}


class ConsoleHeaders:
    """Wraps the console app; replaces any of these headers the inner app set."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _NAMES]
                message = {**message, "headers": [*kept, *CONSOLE_HEADERS]}
            await send(message)

        await self._app(scope, receive, send_with_headers)
