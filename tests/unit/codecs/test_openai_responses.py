"""guard/codecs/openai_responses.py and responses_stream.py: every field, byte-exact rewrite, refusals the
official SDK parses, and streams whose final events carry exactly the released text."""

from __future__ import annotations

import json

import pytest
from openai.types.responses import Response

from guard.codecs.base import BodyLimits, Passthrough, StreamPiece, TextDelta
from guard.codecs.openai_responses import OpenAIResponsesCodec
from guard.errors import RequestError
from guard.types import Direction

CODEC = OpenAIResponsesCodec(BodyLimits(max_body_bytes=1 << 20, max_json_depth=16, max_texts=32))

REQUEST = (
    b'{"model": "m", "instructions": "Be brief.",\n "input": [\n'
    b'  {"role": "user", "content": [{"type": "input_text", "text": "Caf\\u00e9 555-1234"},'
    b' {"type": "input_image", "image_url": "https://x/y.png"}]},\n'
    b'  {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "earlier"}]},\n'
    b'  {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\\"q\\": \\"x\\"}"},\n'
    b'  {"type": "function_call_output", "call_id": "c", "output": "tool says hi"},\n'
    b'  {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "thought"}]},\n'
    b'  {"type": "item_reference", "id": "x"}\n'
    b' ], "tools": [{"type": "function", "name": "f", "description": "Looks things up"}], "stream": true}'
)


def test_request_fields_and_roles() -> None:
    extraction = CODEC.extract(REQUEST, Direction.INPUT)
    assert [(s.text, s.role) for s in extraction.slots] == [
        ("Be brief.", "system"),
        ("Café 555-1234", "user"),
        ("earlier", "assistant"),
        ('{"q": "x"}', "tool_call"),
        ("tool says hi", "tool"),
        ("thought", "reasoning"),
        ("Looks things up", "tool_description"),
    ]
    assert extraction.stream


def test_request_rewrite_changes_only_the_replaced_bytes() -> None:
    extraction = CODEC.extract(REQUEST, Direction.INPUT)
    out = CODEC.rewrite(REQUEST, extraction, {1: "Café <PHONE_NUMBER>", 4: "tool says <X>"})
    assert out == REQUEST.replace(b"555-1234", b"<PHONE_NUMBER>").replace(b"says hi", b"says <X>")


def test_string_input_and_bad_shapes() -> None:
    slots = CODEC.extract(b'{"input": "hello"}', Direction.INPUT).slots
    assert [(s.text, s.role) for s in slots] == [("hello", "user")]
    with pytest.raises(RequestError) as raised:
        CODEC.extract(b'{"input": [{"role": "user", "content": [{"type": "input_text", "text": 3}]}]}', Direction.INPUT)
    assert raised.value.status == 400 and "input[0].content[0].text" in raised.value.message
    with pytest.raises(RequestError):
        CODEC.extract(b'{"input": 5}', Direction.INPUT)


ANSWER = {
    "id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "completed",
    "output": [
        {"id": "rs", "type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}]},
        {"id": "msg", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Call 555-1234.", "annotations": []}]},
        {"id": "fc", "type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
    ],
    "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
}


def test_answer_fields_and_refusal_the_sdk_parses() -> None:
    body = json.dumps(ANSWER).encode()
    extraction = CODEC.extract(body, Direction.OUTPUT)
    assert [(s.text, s.role) for s in extraction.slots] == [
        ("plan", "reasoning"), ("Call 555-1234.", "assistant"), ("{}", "tool_call")
    ]
    refused = Response.model_validate_json(CODEC.refuse_output(body, extraction, "No."))
    assert refused.status == "incomplete" and refused.incomplete_details is not None
    assert refused.incomplete_details.reason == "content_filter"
    assert refused.output[0].type == "message" and refused.output[0].content[0].type == "refusal"
    assert refused.id == "resp_1"


def _event(kind: str, **payload: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


STREAM = b"".join([
    _event("response.created", response={"id": "resp_1", "object": "response", "output": []}, sequence_number=0),
    _event("response.output_item.added", output_index=0, item={"id": "msg", "type": "message", "content": []}),
    _event("response.output_text.delta", item_id="msg", output_index=0, content_index=0, delta="Call 555-"),
    _event("response.output_text.delta", item_id="msg", output_index=0, content_index=0, delta="1234 now"),
    _event("response.output_text.done", item_id="msg", output_index=0, content_index=0, text="Call 555-1234 now!"),
    _event("response.completed", response={"id": "resp_1", "object": "response", "output": [
        {"id": "msg", "type": "message", "content": [{"type": "output_text", "text": "Call 555-1234 now!"}]}]}),
])


def _run(chunks: list[bytes]) -> tuple[list[StreamPiece], bytes]:
    """Feed the stream, 'release' every delta redacted, and render what a client would get."""
    reader = CODEC.stream_reader()
    pieces = [p for c in chunks for p in reader.feed(c)] + list(reader.finish())
    out = b""
    for piece in pieces:
        if isinstance(piece, TextDelta):
            out += reader.render_text(piece.choice, piece.text.replace("1234", "XXXX"))
        elif isinstance(piece, Passthrough):
            out += piece.bytes_to_send()
    return pieces, out


def test_stream_pieces_do_not_depend_on_chunking() -> None:
    whole, _ = _run([STREAM])
    for cut in range(1, len(STREAM), 7):
        pieces, _ = _run([STREAM[:cut], STREAM[cut:]])
        assert [(type(p), getattr(p, "text", None)) for p in pieces] == [
            (type(p), getattr(p, "text", None)) for p in whole
        ]


def test_stream_final_events_carry_the_released_text() -> None:
    pieces, out = _run([STREAM])
    # The done text had one more character than the deltas: screened as a delta before the event goes.
    assert [p.text for p in pieces if isinstance(p, TextDelta)] == ["Call 555-", "1234 now", "!"]
    assert b"1234" not in out
    events = [json.loads(line[6:]) for line in out.decode().splitlines() if line.startswith("data: ")]
    done = next(e for e in events if e["type"] == "response.output_text.done")
    completed = events[-1]
    released = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert released == done["text"] == completed["response"]["output"][0]["content"][0]["text"] == "Call 555-XXXX now!"


def test_stream_refusal_and_withheld_events() -> None:
    reader = CODEC.stream_reader()
    reader.feed(STREAM[: STREAM.index(b"event: response.output_text.delta")])
    refusal = reader.render_refusal("No.").decode()
    events = [json.loads(line[6:]) for line in refusal.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["id"] == "resp_1"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}
    assert {e["output_index"] for e in events if "output_index" in e} == {1}
    (garbage,) = reader.feed(b"data: not json\n\n")
    assert isinstance(garbage, Passthrough) and b"not json" not in garbage.bytes_to_send()
