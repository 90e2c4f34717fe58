"""An OpenAI-compatible echo model for `guard serve --demo`: try the guard on a fresh machine with one
command, no model and no network. It answers chat and completions requests with the prompt it received,
so the screening is visible: a redacted prompt comes back with its placeholders.

    guard serve --demo
    curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \\
      -d '{"model":"demo","messages":[{"role":"user","content":"Mail jane.doe@example.com"}]}'
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL = "guard-demo-echo"
_PREFIX = "You said: "


def _last_user_text(payload: dict[str, object]) -> str:
    messages = payload.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return " ".join(
                        str(part.get("text", "")) for part in content if isinstance(part, dict)
                    )
    prompt = payload.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def _pieces(text: str) -> list[str]:
    # Word by word, keeping the spaces, like a tokenizer's deltas.
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def _sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


async def _chat(request: Request) -> Response:
    payload = await _json(request)
    if isinstance(payload, Response):
        return payload
    reply = _PREFIX + _last_user_text(payload)
    ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if payload.get("stream") is True:

        async def events() -> AsyncIterator[bytes]:
            base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL}
            yield _sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                             "finish_reason": None}]})
            for piece in _pieces(reply):
                yield _sse({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            yield _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    return JSONResponse(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


async def _completions(request: Request) -> Response:
    payload = await _json(request)
    if isinstance(payload, Response):
        return payload
    reply = _PREFIX + _last_user_text(payload)
    ident = f"cmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if payload.get("stream") is True:

        async def events() -> AsyncIterator[bytes]:
            base = {"id": ident, "object": "text_completion", "created": created, "model": MODEL}
            for piece in _pieces(reply):
                yield _sse({**base, "choices": [{"index": 0, "text": piece, "finish_reason": None}]})
            yield _sse({**base, "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    return JSONResponse(
        {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "text": reply, "finish_reason": "stop"}],
        }
    )


async def _models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "guard"}]})


async def _json(request: Request) -> dict[str, object] | Response:
    try:
        payload = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": {"message": "body is not JSON", "type": "invalid_request_error"}}, 400)
    if not isinstance(payload, dict):
        return JSONResponse({"error": {"message": "body must be an object", "type": "invalid_request_error"}}, 400)
    return payload


def create_demo_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", _chat, methods=["POST"]),
            Route("/v1/completions", _completions, methods=["POST"]),
            Route("/v1/models", _models, methods=["GET"]),
        ]
    )
