"""A real OpenAI-shaped model server on 127.0.0.1:0 (uvicorn in a background thread), scriptable per test.

    with FakeUpstream() as upstream:           # or the `fake_upstream` fixture
        upstream.script(reply="Mail a@b.example", chunks=3)
        ... client → guard → upstream.url ...
        upstream.received[-1].json()            # the body the upstream actually got

Chat (`/v1/chat/completions`) and completions (`/v1/completions`) answer in OpenAI's shapes, as JSON or,
when the request says `"stream": true`, as SSE with the reply split into `chunks` pieces. `status` other
than 200 answers an OpenAI-shaped error with that status; `json_body` (any JSON, sent with `status`) and
`events` (SSE payloads, then `[DONE]`) answer exactly what a test needs; `delay_s` waits before the headers and
`chunk_delay_s` between streamed chunks. Any other path answers a small JSON echo of what it received.
The server is up when the fixture yields: it waits for uvicorn's own startup, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from starlette.types import Receive, Scope, Send

from tests.fakes.loopback import LoopbackServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Script:
    reply: str = "Hello from the fake model."
    chunks: int = 1
    status: int = 200
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    finish_reason: str = "stop"
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    # Exact answers instead of the generated ones: a JSON body (sent with `status`), or SSE event payloads.
    json_body: object = None
    events: list[object] | None = None


def split_text(text: str, pieces: int) -> list[str]:
    """`text` in `pieces` nearly equal, contiguous parts (the last ones may be empty if text is short)."""
    pieces = max(1, pieces)
    size, extra = divmod(len(text), pieces)
    out, start = [], 0
    for index in range(pieces):
        end = start + size + (1 if index < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def _sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


class _App:
    def __init__(self, owner: FakeUpstream) -> None:
        self._owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received = Received(
            scope["method"],
            scope["path"],
            scope["query_string"].decode("latin-1"),
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            body,
        )
        owner = self._owner
        owner.received.append(received)
        owner.arrived.set()
        script = owner.current
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        extra = [(k.encode(), v.encode()) for k, v in script.extra_headers]
        if script.json_body is not None:
            await self._reply(send, script.status, json.dumps(script.json_body).encode(), b"application/json", extra)
            return
        if script.events is not None:
            headers = [(b"content-type", b"text/event-stream"), *extra]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for item in [*script.events, "[DONE]"]:
                data = item.encode() if isinstance(item, str) else json.dumps(item).encode()
                await send({"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if script.status != 200:
            payload = json.dumps(
                {"error": {"message": f"fake upstream error {script.status}", "type": "server_error", "code": None}}
            ).encode()
            await self._reply(send, script.status, payload, b"application/json", extra)
            return
        if scope["path"] not in ("/v1/chat/completions", "/v1/completions"):
            payload = json.dumps({"path": scope["path"], "method": scope["method"], "query": received.query}).encode()
            await self._reply(send, 200, payload, b"application/json", extra)
            return
        chat = scope["path"] == "/v1/chat/completions"
        try:
            wants_stream = json.loads(body or b"{}").get("stream") is True
        except (ValueError, AttributeError):
            wants_stream = False
        if wants_stream:
            # A client (the guard) that goes away mid-stream must close the connection: record it.
            disconnected = asyncio.Event()

            async def watch() -> None:
                if (await receive())["type"] == "http.disconnect":
                    disconnected.set()

            watcher = asyncio.create_task(watch())
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), *extra],
                }
            )
            try:
                async for event in self._events(chat, script):
                    if disconnected.is_set():
                        owner.disconnects.append(received)
                        owner.disconnected.set()
                        return
                    await send({"type": "http.response.body", "body": event, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                watcher.cancel()
            return
        await self._reply(send, 200, json.dumps(self._whole(chat, script)).encode(), b"application/json", extra)

    @staticmethod
    async def _reply(send: Send, status: int, payload: bytes, ctype: bytes, extra: list[tuple[bytes, bytes]]) -> None:
        headers = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    def _whole(chat: bool, script: Script) -> dict[str, object]:
        if chat:
            choice: dict[str, object] = {
                "index": 0,
                "message": {"role": "assistant", "content": script.reply},
                "finish_reason": script.finish_reason,
            }
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": script.reply, "finish_reason": script.finish_reason, "logprobs": None}
            kind = "text_completion"
        return {
            "id": "cmpl-fake",
            "object": kind,
            "created": 1700000000,
            "model": "fake-model",
            "choices": [choice],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    @staticmethod
    async def _events(chat: bool, script: Script) -> AsyncIterator[bytes]:
        base = {
            "id": "cmpl-fake",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": 1700000000,
            "model": "fake-model",
        }
        if chat:
            yield _sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                             "finish_reason": None}]})
        for piece in split_text(script.reply, script.chunks):
            if script.chunk_delay_s:
                await asyncio.sleep(script.chunk_delay_s)
            if chat:
                choice: dict[str, object] = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            else:
                choice = {"index": 0, "text": piece, "finish_reason": None, "logprobs": None}
            yield _sse({**base, "choices": [choice]})
        if chat:
            final: dict[str, object] = {"index": 0, "delta": {}, "finish_reason": script.finish_reason}
        else:
            final = {"index": 0, "text": "", "finish_reason": script.finish_reason, "logprobs": None}
        yield _sse({**base, "choices": [final]})
        yield b"data: [DONE]\n\n"


class FakeUpstream(LoopbackServer):
    """The server and its script; `received` lists every request in arrival order."""

    def __init__(self, http: str = "h11") -> None:
        self.current = Script()
        self.received: list[Received] = []
        self.disconnects: list[Received] = []  # streams whose client went away before the end
        self.disconnected = threading.Event()
        self.arrived = threading.Event()  # set on every request; clear it to wait for the next one
        super().__init__(_App(self), name="fake-upstream", http=http)

    def script(self, **changes: object) -> Script:
        self.current = Script(**changes)  # type: ignore[arg-type]
        return self.current


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream
