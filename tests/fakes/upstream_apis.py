"""A real model server for the OpenAI Responses API and Anthropic Messages, on 127.0.0.1:0, scriptable.

    with ApiUpstream() as upstream:
        upstream.script(text="Mail a@b.example", reasoning="thinking...", arguments='{"q": "x"}', chunks=3)
        ... client → guard → upstream.url ...
        upstream.received[-1].json()            # the body the upstream actually got

`POST /v1/responses` answers a Responses object whose `output` holds, for each scripted field, a
reasoning item (`reasoning`: its summary), a message (`text`: an `output_text` part) and a function call
(`arguments`), in that order; with `"stream": true` the same as the SSE events OpenAI sends
(`response.created` ... deltas split into `chunks` pieces ... `*.done`, `response.completed`).
`POST /v1/messages` answers an Anthropic message with a `thinking` block (`reasoning`), a `text` block
and a `tool_use` block (`arguments`, a JSON object's text), or streams them (`message_start`,
`content_block_*` with `thinking_delta` / `text_delta` / `input_json_delta`, `message_delta`,
`message_stop`, and a `ping`). Ready when uvicorn reports it started; no sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from tests.fakes.loopback import LoopbackServer
from tests.fakes.upstream import Received, split_text

Obj = dict[str, Any]


@dataclass(frozen=True)
class ApiScript:
    text: str = "Hello from the fake model."
    reasoning: str = ""
    arguments: str = ""  # a JSON object's text: function call arguments / tool_use input
    chunks: int = 1


def _sse(kind: str, payload: Obj) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + json.dumps(payload).encode() + b"\n\n"


# --- OpenAI Responses --------------------------------------------------------------------------------
def _response_items(s: ApiScript) -> list[Obj]:
    items: list[Obj] = []
    if s.reasoning:
        items.append({"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": s.reasoning}]})
    if s.text:
        items.append({"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": s.text, "annotations": [], "logprobs": []}]})
    if s.arguments:
        items.append({"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
                      "name": "lookup", "arguments": s.arguments})
    return items


def _response(s: ApiScript, status: str, output: list[Obj]) -> Obj:
    return {"id": "resp_fake", "object": "response", "created_at": 1700000000, "model": "fake-model",
            "status": status, "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}}


def _responses_events(s: ApiScript) -> Iterator[tuple[str, Obj]]:
    yield "response.created", {"response": _response(s, "in_progress", [])}
    yield "response.in_progress", {"response": _response(s, "in_progress", [])}
    for oi, item in enumerate(_response_items(s)):
        empty = json.loads(json.dumps(item))
        at = {"item_id": item["id"], "output_index": oi}
        if item["type"] == "reasoning":
            empty["summary"] = []
            yield "response.output_item.added", {"output_index": oi, "item": empty}
            part = {"type": "summary_text", "text": ""}
            yield "response.reasoning_summary_part.added", {**at, "summary_index": 0, "part": part}
            for piece in split_text(s.reasoning, s.chunks):
                yield "response.reasoning_summary_text.delta", {**at, "summary_index": 0, "delta": piece}
            yield "response.reasoning_summary_text.done", {**at, "summary_index": 0, "text": s.reasoning}
            yield "response.reasoning_summary_part.done", {**at, "summary_index": 0, "part": item["summary"][0]}
        elif item["type"] == "message":
            empty["content"], empty["status"] = [], "in_progress"
            yield "response.output_item.added", {"output_index": oi, "item": empty}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield "response.content_part.added", {**at, "content_index": 0, "part": part}
            for piece in split_text(s.text, s.chunks):
                yield "response.output_text.delta", {**at, "content_index": 0, "delta": piece, "logprobs": []}
            yield "response.output_text.done", {**at, "content_index": 0, "text": s.text, "logprobs": []}
            yield "response.content_part.done", {**at, "content_index": 0, "part": item["content"][0]}
        else:
            empty["arguments"], empty["status"] = "", "in_progress"
            yield "response.output_item.added", {"output_index": oi, "item": empty}
            for piece in split_text(s.arguments, s.chunks):
                yield "response.function_call_arguments.delta", {**at, "delta": piece}
            yield "response.function_call_arguments.done", {**at, "arguments": s.arguments}
        yield "response.output_item.done", {"output_index": oi, "item": item}
    yield "response.completed", {"response": _response(s, "completed", _response_items(s))}


# --- Anthropic Messages ------------------------------------------------------------------------------
def _message_blocks(s: ApiScript) -> list[Obj]:
    blocks: list[Obj] = []
    if s.reasoning:
        blocks.append({"type": "thinking", "thinking": s.reasoning, "signature": "sig-fake"})
    if s.text:
        blocks.append({"type": "text", "text": s.text})
    if s.arguments:
        blocks.append({"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": json.loads(s.arguments)})
    return blocks


def _message(s: ApiScript, content: list[Obj], stop_reason: str | None) -> Obj:
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake-model", "content": content,
            "stop_reason": stop_reason, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 7}}


def _messages_events(s: ApiScript) -> Iterator[tuple[str, Obj]]:
    yield "message_start", {"message": _message(s, [], None)}
    for index, block in enumerate(_message_blocks(s)):
        kind = block["type"]
        if kind == "thinking":
            start: Obj = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in split_text(s.reasoning, s.chunks)]
        elif kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in split_text(s.text, s.chunks)]
        else:
            start = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in split_text(s.arguments, s.chunks)]
        yield "content_block_start", {"index": index, "content_block": start}
        yield "ping", {}
        for delta in deltas:
            yield "content_block_delta", {"index": index, "delta": delta}
        if kind == "thinking":
            yield "content_block_delta", {"index": index, "delta": {"type": "signature_delta", "signature": "sig"}}
        yield "content_block_stop", {"index": index}
    stop = "tool_use" if s.arguments else "end_turn"
    yield "message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 7}}
    yield "message_stop", {}


class _App:
    def __init__(self, owner: ApiUpstream) -> None:
        self._owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self._owner.received.append(
            Received(scope["method"], scope["path"], scope["query_string"].decode("latin-1"), headers, body)
        )
        s = self._owner.current
        stream = json.loads(body or b"{}").get("stream") is True
        path = scope["path"]
        if path == "/v1/responses":
            events, whole = _responses_events(s), _response(s, "completed", _response_items(s))
        elif path == "/v1/messages":
            events, whole = _messages_events(s), _message(s, _message_blocks(s), "end_turn")
        else:
            await _reply(send, 404, {"error": {"message": "no such path", "type": "not_found"}})
            return
        if not stream:
            await _reply(send, 200, whole)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        for sequence, (kind, payload) in enumerate(events):
            extra = {"sequence_number": sequence} if path == "/v1/responses" else {}
            event = _sse(kind, {"type": kind, **payload, **extra})
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _reply(send: Send, status: int, payload: Obj) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class ApiUpstream(LoopbackServer):
    """The server and its script; `received` lists every request in arrival order."""

    def __init__(self) -> None:
        self.current = ApiScript()
        self.received: list[Received] = []
        super().__init__(_App(self), name="fake-api-upstream")

    def script(self, **changes: Any) -> ApiScript:
        self.current = ApiScript(**changes)
        return self.current
