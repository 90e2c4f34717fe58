"""guard/codecs/anthropic_messages.py and anthropic_stream.py: every field, byte-exact rewrite, refusals
in Anthropic's shapes, and streams whose refusal closes only the blocks the client was sent."""

from __future__ import annotations

import json

import pytest
from anthropic.types import Message

from guard.codecs.anthropic_messages import AnthropicMessagesCodec
from guard.codecs.base import BodyLimits, Passthrough, TextDelta
from guard.errors import RequestError
from guard.types import Action, Category, Decision, Direction

CODEC = AnthropicMessagesCodec(BodyLimits(max_body_bytes=1 << 20, max_json_depth=16, max_texts=32))

REQUEST = (
    b'{"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "Be brief."}],\n "messages": [\n'
    b'  {"role": "user", "content": "Caf\\u00e9 555-1234"},\n'
    b'  {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},'
    b' {"type": "tool_use", "id": "t", "name": "f", "input": {"q": "x", "n": [1, "y"]}}]},\n'
    b'  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text",'
    b' "text": "tool says hi"}]}, {"type": "image", "source": {"type": "base64", "data": "AAAA"}},'
    b' {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}}]}\n'
    b' ], "tools": [{"name": "f", "description": "Looks things up", "input_schema": {}}]}'
)


def test_request_fields_and_roles() -> None:
    slots = CODEC.extract(REQUEST, Direction.INPUT).slots
    assert [(s.text, s.role) for s in slots] == [
        ("Be brief.", "system"), ("Café 555-1234", "user"), ("hm", "reasoning"), ("x", "tool_call"),
        ("y", "tool_call"), ("tool says hi", "tool"), ("doc", "document"), ("Looks things up", "tool_description"),
    ]


def test_request_rewrite_changes_only_the_replaced_bytes() -> None:
    extraction = CODEC.extract(REQUEST, Direction.INPUT)
    out = CODEC.rewrite(REQUEST, extraction, {1: "Café <P>", 3: "<Q>"})
    assert out == REQUEST.replace(b"555-1234", b"<P>").replace(b'"q": "x"', b'"q": "<Q>"')


def test_bad_shapes_and_input_refusal() -> None:
    with pytest.raises(RequestError) as raised:
        CODEC.extract(b'{"messages": [{"role": "user", "content": [{"type": "text", "text": null}]}]}', Direction.INPUT)
    assert raised.value.status == 400 and "messages[0].content[0].text" in raised.value.message
    with pytest.raises(RequestError):
        CODEC.extract(b'{"system": "x"}', Direction.INPUT)
    decision = Decision(Action.BLOCK, Direction.INPUT, "limited", "v1", categories=(Category.PROMPT_INJECTION,))
    reply = CODEC.refuse_input(decision, "blocked")
    body = json.loads(reply.body)
    assert reply.status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["categories"] == ["prompt_injection"]


ANSWER = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
    "content": [{"type": "thinking", "thinking": "plan", "signature": "s"}, {"type": "text", "text": "Call 555-1234."},
                {"type": "tool_use", "id": "t", "name": "f", "input": {"to": "a@b.example"}}],
}


def test_answer_fields_and_refusal_the_sdk_parses() -> None:
    body = json.dumps(ANSWER).encode()
    extraction = CODEC.extract(body, Direction.OUTPUT)
    assert [s.text for s in extraction.slots] == ["plan", "Call 555-1234.", "a@b.example"]
    refused = Message.model_validate_json(CODEC.refuse_output(body, extraction, "No."))
    assert refused.stop_reason == "refusal" and refused.content[0].type == "text"
    assert refused.content[0].text == "No." and refused.id == "msg_1"


def _event(kind: str, **payload: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


STREAM = b"".join([
    _event("message_start", message={"id": "msg_1", "type": "message", "role": "assistant", "content": []}),
    _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    _event("ping"),
    _event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Call 555-"}),
    _event("content_block_delta", index=0, delta={"type": "text_delta", "text": "1234"}),
    _event("content_block_stop", index=0),
    _event("content_block_start", index=1, content_block={"type": "tool_use", "id": "t", "name": "f", "input": {}}),
    _event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": '{"to": "a@'}),
    _event("content_block_stop", index=1),
    _event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3}),
    _event("message_stop"),
])


def test_stream_pieces_do_not_depend_on_chunking() -> None:
    def kinds(chunks: list[bytes]) -> list[tuple[str, object]]:
        reader = CODEC.stream_reader()
        pieces = [p for c in chunks for p in reader.feed(c)] + list(reader.finish())
        return [(type(p).__name__, p.text if isinstance(p, TextDelta) else p.barrier) for p in pieces]

    whole = kinds([STREAM])
    assert [k for k in whole if k[0] == "TextDelta"] == [("TextDelta", "Call 555-"), ("TextDelta", "1234"),
                                                         ("TextDelta", '{"to": "a@')]
    for cut in range(1, len(STREAM), 5):
        assert kinds([STREAM[:cut], STREAM[cut:]]) == whole


def test_refusal_closes_only_the_blocks_sent_so_far() -> None:
    reader = CODEC.stream_reader()
    pieces = reader.feed(STREAM)  # everything parsed ahead...
    sent = b""
    for piece in pieces:  # ...but only the events up to the first text leave before the block
        if isinstance(piece, TextDelta):
            break
        assert isinstance(piece, Passthrough)
        sent += piece.bytes_to_send()
    refusal = reader.render_refusal("No.").decode()
    events = [json.loads(line[6:]) for line in refusal.splitlines() if line.startswith("data: ")]
    assert [(e["type"], e.get("index")) for e in events] == [
        ("content_block_stop", 0), ("content_block_start", 1), ("content_block_delta", 1),
        ("content_block_stop", 1), ("message_delta", None), ("message_stop", None),
    ]
    assert events[4]["delta"]["stop_reason"] == "refusal"
    assert all(line.startswith(("event: ", "data: ")) or not line for line in refusal.splitlines())


def test_rendered_text_keeps_the_block_kind() -> None:
    reader = CODEC.stream_reader()
    reader.feed(STREAM)
    delta = json.loads(reader.render_text(1, '{"to": "<E>"}').decode().splitlines()[1][6:])
    assert delta["delta"] == {"type": "input_json_delta", "partial_json": '{"to": "<E>"}'}


def test_the_guards_own_overload_errors_come_in_anthropics_shape() -> None:
    from guard.proxy.admission import QUEUE_FULL, QUEUE_TIMEOUT, OverloadedError, overload_reply

    codec = CODEC
    for error in (OverloadedError(QUEUE_FULL, 1), OverloadedError(QUEUE_TIMEOUT, 2)):
        reply = overload_reply(codec, error)
        body = json.loads(reply.body)
        assert reply.status == error.status and body["type"] == "error"
        assert body["error"]["type"] == {429: "rate_limit_error", 503: "overloaded_error"}[error.status]
        assert ("retry-after", str(error.retry_after_s)) in reply.headers
