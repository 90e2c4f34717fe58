"""A real model server speaking the APIs beside chat completions, on 127.0.0.1:0 (uvicorn in a thread).

    with ModelApis() as upstream:
        upstream.reply = "Mail jane@x.example"      # what chat/generate answer
        ... client → guard → upstream.url ...
        upstream.received[-1].json()                 # the body the upstream actually got

Serves, at any path prefix (so `--upstream URL/v1` can be tested):
- `.../embeddings` (OpenAI and Azure): one small vector per input;
- `.../chat/completions` (OpenAI and Azure deployments): a JSON chat completion with `reply`;
- `.../api/chat` and `.../api/generate` (Ollama): JSON, or NDJSON split in `chunks` lines when `stream` is not
  false (Ollama's default), with a final `done: true` line (generate's carries `context`);
- `GET .../models`: a model list;
- anything else: a JSON echo of method, path and query.
`received` records every request (method, path as decoded by uvicorn, raw path, query, body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from tests.fakes.loopback import LoopbackServer
from tests.fakes.upstream import split_text


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    raw_path: bytes
    query: str
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def _embeddings(body: dict[str, object]) -> dict[str, object]:
    data = body.get("input")
    count = len(data) if isinstance(data, list) and not all(isinstance(x, int) for x in data) else 1
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [0.25, -0.5, float(i)]} for i in range(count)],
        "model": str(body.get("model", "fake-embed")),
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }


class _App:
    def __init__(self, owner: ModelApis) -> None:
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
        seen = Seen(scope["method"], scope["path"], scope.get("raw_path") or b"",
                    scope["query_string"].decode("latin-1"), body)
        self._owner.received.append(seen)
        path: str = scope["path"]
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = {}
        request = parsed if isinstance(parsed, dict) else {}
        if path.endswith("/embeddings"):
            await _json(send, _embeddings(request))
        elif path.endswith("/chat/completions"):
            await _json(send, self._chat_completion())
        elif path.endswith(("/api/chat", "/api/generate")):
            await self._ollama(send, path.endswith("/api/chat"), request)
        elif scope["method"] == "GET" and path.endswith("/models"):
            await _json(send, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "me"}]})
        else:
            await _json(send, {"path": path, "method": scope["method"], "query": seen.query})

    def _chat_completion(self) -> dict[str, object]:
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self._owner.reply},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    async def _ollama(self, send: Send, chat: bool, request: dict[str, object]) -> None:
        owner = self._owner

        def line(text: str, done: bool) -> dict[str, object]:
            base: dict[str, object] = {"model": "fake", "created_at": "2026-12-01T00:00:00Z"}
            if chat:
                base["message"] = {"role": "assistant", "content": text}
            else:
                base["response"] = text
            base["done"] = done
            if done:
                base.update({"done_reason": "stop", "total_duration": 1, "eval_count": 3})
                if not chat:
                    base["context"] = [1, 2, 3]
            return base

        if request.get("stream") is False:
            await _json(send, line(owner.reply, True))
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-ndjson")]})
        for piece in split_text(owner.reply, owner.chunks):
            await send({"type": "http.response.body", "body": json.dumps(line(piece, False)).encode() + b"\n",
                        "more_body": True})
        await send({"type": "http.response.body", "body": json.dumps(line("", True)).encode() + b"\n"})


async def _json(send: Send, payload: object) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ModelApis(LoopbackServer):
    """The server and what it answers; `received` lists every request in arrival order."""

    def __init__(self) -> None:
        self.reply = "Hello from the fake model."
        self.chunks = 4
        self.received: list[Seen] = []
        super().__init__(_App(self), name="fake-model-apis")
