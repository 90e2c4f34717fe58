"""The `StreamReader` for Responses API streams (`event: response.*` SSE).

Screened text arrives in delta events; each (kind, `output_index`, content or summary index) is one
"choice" of the hold-back screen:

    response.output_text.delta              message text            done: response.output_text.done
    response.refusal.delta                  a model's own refusal   done: response.refusal.done
    response.function_call_arguments.delta  tool call arguments     done: ...function_call_arguments.done
    response.custom_tool_call_input.delta   custom tool input       done: ...custom_tool_call_input.done
    response.reasoning_summary_text.delta   reasoning summaries     done: ...reasoning_summary_text.done
    response.reasoning_text.delta           reasoning text          done: response.reasoning_text.done

A delta event becomes a `TextDelta`; released text is re-rendered as a delta event of the same kind.
Every event that repeats text (the `*.done` events above, `response.content_part.*`,
`response.reasoning_summary_part.*`, `response.output_item.*`, and the `response` object of
`response.created` / `in_progress` / `completed` / `incomplete` / `failed`) is a barrier whose bytes are
rendered after the held text is released (`Passthrough.render`), with each text replaced by exactly
what was released for it: the final event never carries unscreened or unredacted text. Text a final
event holds beyond what its deltas sent (an upstream that skips deltas) is screened as one more delta
first. Events that are not JSON objects with a `type` are withheld (an `error` event stands in).
Other event types (web search progress, annotations, MCP and code interpreter events) are forwarded as
barriers, unscreened (docs/reliability.md lists them).

A blocked stream ends with a refusal message (`response.refusal.delta` / `.done` inside its own output
item) and `response.incomplete` with `incomplete_details.reason: "content_filter"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from guard.codecs.base import Passthrough, StreamPiece, TextDelta
from guard.codecs.openai_common import JsonObject, dumps
from guard.codecs.sse import SseEvent, SseParser

REFUSAL_ITEM_ID = "msg_guard_refusal"

# delta event type -> (kind, name of the sub-index field or "", the text field of its done event)
_DELTAS: dict[str, tuple[str, str, str]] = {
    "response.output_text.delta": ("output_text", "content_index", "text"),
    "response.refusal.delta": ("refusal", "content_index", "refusal"),
    "response.function_call_arguments.delta": ("arguments", "", "arguments"),
    "response.custom_tool_call_input.delta": ("custom_input", "", "input"),
    "response.reasoning_summary_text.delta": ("summary", "summary_index", "text"),
    "response.reasoning_text.delta": ("reasoning", "content_index", "text"),
}
_DONES = {name.removesuffix(".delta") + ".done": spec for name, spec in _DELTAS.items()}
_DELTA_OF_KIND = {spec[0]: name for name, spec in _DELTAS.items()}
_SUB_OF_KIND = {spec[0]: spec[1] for spec in _DELTAS.values()}
# content part type -> (kind, text field)
_PARTS = {"output_text": ("output_text", "text"), "refusal": ("refusal", "refusal"), "reasoning_text": ("reasoning", "text")}
_RESPONSE_EVENTS = frozenset(
    {"response.created", "response.queued", "response.in_progress", "response.completed",
     "response.incomplete", "response.failed"}
)
_WITHHELD = {
    "type": "error",
    "code": "upstream_invalid_response",
    "message": "The model endpoint sent an event the guard could not screen, so it was withheld.",
    "param": None,
}

Key = tuple[str, int, int]  # (kind, output_index, content/summary index)


@dataclass(frozen=True, slots=True)
class _Field:
    """One text inside an event: where it sits (`holder[name]`) and which stream text it repeats."""

    key: Key
    holder: JsonObject
    name: str
    item_id: str


def refusal_item(refusal_text: str, status: str) -> JsonObject:
    """An assistant message whose only content is a `refusal` part."""
    return {
        "id": REFUSAL_ITEM_ID,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": refusal_text}],
    }


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _item_fields(item: object, output_index: int) -> Iterator[_Field]:
    """The texts of one output item (message parts, tool call arguments, reasoning)."""
    if not isinstance(item, dict):
        return
    kind, item_id = item.get("type"), str(item.get("id", ""))
    if kind == "function_call" and isinstance(item.get("arguments"), str):
        yield _Field(("arguments", output_index, 0), item, "arguments", item_id)
    elif kind == "custom_tool_call" and isinstance(item.get("input"), str):
        yield _Field(("custom_input", output_index, 0), item, "input", item_id)
    lists = (("content", None), ("summary", "summary")) if kind == "reasoning" else (("content", None),)
    for list_name, forced in lists:
        parts = item.get(list_name)
        if not isinstance(parts, list) or kind not in ("message", "reasoning"):
            continue
        for j, part in enumerate(parts):
            yield from _part_fields(part, output_index, j, item_id, forced)


def _part_fields(part: object, output_index: int, index: int, item_id: str, forced: str | None) -> Iterator[_Field]:
    if not isinstance(part, dict):
        return
    spec = ("summary", "text") if forced == "summary" else _PARTS.get(str(part.get("type")))
    if spec is not None and isinstance(part.get(spec[1]), str):
        yield _Field((spec[0], output_index, index), part, spec[1], item_id)


def _event_fields(payload: JsonObject) -> Iterator[_Field]:
    """Every text a non-delta event repeats, with the stream text it must equal."""
    kind = payload.get("type")
    oi = _int(payload.get("output_index"))
    item_id = str(payload.get("item_id", ""))
    if kind in _DONES:
        text_kind, sub, field = _DONES[kind]
        if isinstance(payload.get(field), str):
            yield _Field((text_kind, oi, _int(payload.get(sub)) if sub else 0), payload, field, item_id)
    elif kind in ("response.content_part.added", "response.content_part.done"):
        yield from _part_fields(payload.get("part"), oi, _int(payload.get("content_index")), item_id, None)
    elif kind in ("response.reasoning_summary_part.added", "response.reasoning_summary_part.done"):
        yield from _part_fields(payload.get("part"), oi, _int(payload.get("summary_index")), item_id, "summary")
    elif kind in ("response.output_item.added", "response.output_item.done"):
        yield from _item_fields(payload.get("item"), oi)
    elif kind in _RESPONSE_EVENTS:
        response = payload.get("response")
        output = response.get("output") if isinstance(response, dict) else None
        if isinstance(output, list):
            for i, item in enumerate(output):
                yield from _item_fields(item, i)


def _sse(kind: str, payload: JsonObject) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


class ResponsesStreamReader:
    """Per-response state: the SSE parser, text seen and released per key, the response's identity."""

    def __init__(self, max_event_bytes: int) -> None:
        self._parser = SseParser(max_event_bytes)
        self._choices: dict[Key, int] = {}
        self._templates: dict[int, JsonObject] = {}  # choice -> its delta event without the delta
        self._seen: dict[Key, str] = {}  # upstream text per key
        self._released: dict[Key, str] = {}
        self._keys: list[Key] = []  # choice -> key
        self._sequence = 0
        self._max_output_index = -1
        self._response: JsonObject = {"id": "resp_guard", "object": "response", "created_at": 0, "model": ""}

    # --- StreamReader ----------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> Sequence[StreamPiece]:
        return [piece for event in self._parser.feed(chunk) for piece in self._pieces(event)]

    def finish(self) -> Sequence[StreamPiece]:
        return [piece for event in self._parser.finish() for piece in self._pieces(event)]

    def render_text(self, choice: int, text: str) -> bytes:
        key = self._keys[choice]
        self._released[key] = self._released.get(key, "") + text
        template = self._templates[choice]
        return _sse(str(template["type"]), {**template, "delta": text, "sequence_number": self._sequence})

    def render_refusal(self, refusal_text: str) -> bytes:
        oi = self._max_output_index + 1
        base = {"item_id": REFUSAL_ITEM_ID, "output_index": oi, "content_index": 0}
        part = {"type": "refusal", "refusal": refusal_text}
        events: list[tuple[str, JsonObject]] = [
            ("response.output_item.added", {"output_index": oi, "item": {**refusal_item("", "in_progress"), "content": []}}),
            ("response.content_part.added", {**base, "part": {"type": "refusal", "refusal": ""}}),
            ("response.refusal.delta", {**base, "delta": refusal_text}),
            ("response.refusal.done", {**base, "refusal": refusal_text}),
            ("response.content_part.done", {**base, "part": part}),
            ("response.output_item.done", {"output_index": oi, "item": refusal_item(refusal_text, "incomplete")}),
        ]
        response = {
            **self._response,
            "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
            "output": [refusal_item(refusal_text, "incomplete")],
        }
        events.append(("response.incomplete", {"response": response}))
        out = []
        for kind, payload in events:
            self._sequence += 1
            out.append(_sse(kind, {"type": kind, **payload, "sequence_number": self._sequence}))
        return b"".join(out)

    # --- internals -------------------------------------------------------------------------------------
    def _choice(self, key: Key, item_id: str) -> int:
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = len(self._keys)
            self._keys.append(key)
            kind, oi, sub = key
            template: JsonObject = {"type": _DELTA_OF_KIND[kind], "item_id": item_id, "output_index": oi}
            if _SUB_OF_KIND[kind]:
                template[_SUB_OF_KIND[kind]] = sub
            self._templates[choice] = template
        self._max_output_index = max(self._max_output_index, key[1])
        return choice

    def _pieces(self, event: SseEvent) -> list[StreamPiece]:
        if event.data is None:
            return [Passthrough(event.raw, barrier=False)]
        try:
            payload = json.loads(event.data)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return [Passthrough(self._withheld(), barrier=True)]
        sequence = payload.get("sequence_number")
        if isinstance(sequence, int):
            self._sequence = max(self._sequence, sequence)
        kind = payload["type"]
        if isinstance(payload.get("output_index"), int):
            self._max_output_index = max(self._max_output_index, payload["output_index"])
        if kind in _DELTAS:
            text_kind, sub, _ = _DELTAS[kind]
            delta = payload.get("delta")
            key = (text_kind, _int(payload.get("output_index")), _int(payload.get(sub)) if sub else 0)
            choice = self._choice(key, str(payload.get("item_id", "")))
            if not isinstance(delta, str) or not delta:
                return []
            self._seen[key] = self._seen.get(key, "") + delta
            return [TextDelta(choice, delta)]
        if kind == "response.created" and isinstance(payload.get("response"), dict):
            self._response = {k: v for k, v in payload["response"].items() if k != "output"}
        fields = list(_event_fields(payload))
        if not fields:
            return [Passthrough(event.raw, barrier=True)]
        pieces: list[StreamPiece] = []
        for f in fields:
            # Text the event holds beyond what its deltas sent is screened before the event goes.
            text, seen = f.holder[f.name], self._seen.get(f.key, "")
            if len(text) > len(seen) and text.startswith(seen):
                self._seen[f.key] = text
                pieces.append(TextDelta(self._choice(f.key, f.item_id), text[len(seen) :]))
        fields_raw = event.field_lines() or b"event: " + kind.encode() + b"\n"

        def render() -> bytes:
            for f in _event_fields(payload):
                f.holder[f.name] = self._released.get(f.key, "")
            return fields_raw + b"data: " + dumps(payload) + b"\n\n"

        pieces.append(Passthrough(event.raw, barrier=True, render=render))
        return pieces

    def _withheld(self) -> bytes:
        self._sequence += 1
        return _sse("error", {**_WITHHELD, "sequence_number": self._sequence})
