"""guard/codecs/openai_chat.py: chat completion requests, answers, refusals and streams."""

from __future__ import annotations

import json

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from guard.codecs.base import BodyLimits, Passthrough, StreamPiece, TextDelta, TextEdit
from guard.codecs.openai_chat import OpenAIChatCodec
from guard.codecs.openai_stream import WITHHELD_EVENT
from guard.errors import RequestError
from guard.types import Action, Category, Decision, Direction

LIMITS = BodyLimits(max_body_bytes=1 << 20, max_json_depth=16, max_texts=8)
CODEC = OpenAIChatCodec(LIMITS)

REQUEST = (
    b'{"model": "gpt-x",\n "messages": [\n'
    b'  {"role": "system", "content": "Be brief."},\n'
    b'  {"role": "user", "content": [{"type": "text", "text": "Caf\\u00e9 at 555-1234?"},'
    b' {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},\n'
    b'  {"role": "assistant", "content": null, "tool_calls": []},\n'
    b'  {"role": "tool", "tool_call_id": "t1", "content": "tool says hi"}\n'
    b' ], "stream": true, "temperature": 0.70}'
)

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-x",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Call 555-1234."}, "logprobs": None, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
         "logprobs": {"content": []}, "finish_reason": "tool_calls"},
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
}


def decision(*categories: Category) -> Decision:
    return Decision(Action.BLOCK, Direction.INPUT, "limited", "v1", categories=categories)


def test_request_texts_roles_and_stream_flag() -> None:
    extraction = CODEC.extract(REQUEST, Direction.INPUT)
    assert [(s.index, s.text, s.role) for s in extraction.slots] == [
        (0, "Be brief.", "system"),
        (1, "Caf\u00e9 at 555-1234?", "user"),
        (2, "tool says hi", "tool"),
    ]
    assert extraction.stream is True
    assert CODEC.extract(REQUEST.replace(b'"stream": true', b'"stream": "yes"'), Direction.INPUT).stream is False


def test_rewrite_touches_only_the_replaced_text() -> None:
    extraction = CODEC.extract(REQUEST, Direction.INPUT)
    text = extraction.slots[1].text
    start = text.index("555")
    out = CODEC.rewrite(REQUEST, extraction, {1: [TextEdit(start, start + 8, "<PHONE_NUMBER>")]})
    assert out == REQUEST.replace(b"555-1234", b"<PHONE_NUMBER>")
    out = CODEC.rewrite(REQUEST, extraction, {1: text.replace("555-1234", "<PHONE_NUMBER>")})
    assert out == REQUEST.replace(b"555-1234", b"<PHONE_NUMBER>")
    assert CODEC.rewrite(REQUEST, extraction, {}) == REQUEST
    with pytest.raises(ValueError, match="no slot 3"):
        CODEC.rewrite(REQUEST, extraction, {3: "x"})
    with pytest.raises(ValueError, match="different body"):
        CODEC.rewrite(REQUEST + b" ", extraction, {0: "x"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "request body: must be a JSON object, not a list"),
        (b"{}", "request body: messages is required"),
        (b'{"messages": "hi"}', "request body: messages must be a list, not a string"),
        (b'{"messages": [1]}', "request body: messages[0] must be an object, not a number"),
        (b'{"messages": [{"content": "x"}]}', "request body: messages[0].role is required"),
        (b'{"messages": [{"role": 1, "content": "x"}]}', "request body: messages[0].role must be a string, not a number"),
        (
            b'{"messages": [{"role": "user", "content": "a"}, {"role": "user"}, {"role": "user", "content": 5}]}',
            "request body: messages[2].content must be a string or a list of content parts, not a number",
        ),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": ["secret"]}]}]}',
            "request body: messages[0].content[0].text must be a string, not a list",
        ),
        (
            b'{"messages": [{"role": "user", "content": ["secret"]}]}',
            "request body: messages[0].content[0] must be an object, not a string",
        ),
        (
            b'{"messages": [{"role": "user", "content": [{"text": "secret"}]}]}',
            "request body: messages[0].content[0].type must be a string",
        ),
    ],
)
def test_wrong_request_shapes_name_the_field(body: bytes, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        CODEC.extract(body, Direction.INPUT)
    assert (caught.value.status, caught.value.code, caught.value.message) == (400, "invalid_request", message)


def test_too_many_texts_is_413() -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "x"}] * 9}).encode()
    with pytest.raises(RequestError) as caught:
        CODEC.extract(body, Direction.INPUT)
    assert caught.value.status == 413
    assert caught.value.message == "request body has more than 8 texts to screen"


def test_response_texts_skip_null_content_and_include_tool_call_arguments() -> None:
    extraction = CODEC.extract(json.dumps(ANSWER).encode(), Direction.OUTPUT)
    assert [(s.index, s.text, s.role) for s in extraction.slots] == [
        (0, "Call 555-1234.", "assistant"),
        (1, "{}", "tool_call"),
    ]
    assert extraction.stream is False


def test_tool_call_arguments_are_screened_and_rewritten_in_place() -> None:
    # The arguments are a JSON document inside a JSON string: a redaction inside one of its string values
    # keeps both valid, and no other byte of the body changes.
    body = (
        b'{"model": "m", "messages": [{"role": "user", "content": "mail her"},\n'
        b' {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",'
        b' "function": {"name": "send", "arguments": "{\\"to\\": \\"ann@example.com\\"}"}}]}]}'
    )
    extraction = CODEC.extract(body, Direction.INPUT)
    assert [(s.text, s.role) for s in extraction.slots] == [
        ("mail her", "user"),
        ('{"to": "ann@example.com"}', "tool_call"),
    ]
    text = extraction.slots[1].text
    start = text.index("ann@")
    out = CODEC.rewrite(body, extraction, {1: [TextEdit(start, start + len("ann@example.com"), "<EMAIL_ADDRESS>")]})
    assert out == body.replace(b"ann@example.com", b"<EMAIL_ADDRESS>")
    arguments = json.loads(out)["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"to": "<EMAIL_ADDRESS>"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"choices": {}}, "upstream response: choices must be a list, not an object"),
        ({"choices": [None]}, "upstream response: choices[0] must be an object, not null"),
        ({"choices": [{"message": "x"}]}, "upstream response: choices[0].message must be an object, not a string"),
        (
            {"choices": [{"message": {"content": [1]}}]},
            "upstream response: choices[0].message.content must be a string or null, not a list",
        ),
    ],
)
def test_wrong_answer_shapes_are_502(answer: object, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        CODEC.extract(json.dumps(answer).encode(), Direction.OUTPUT)
    assert (caught.value.status, caught.value.code, caught.value.message) == (502, "bad_upstream_response", message)


def test_refuse_input_is_openai_shaped() -> None:
    reply = CODEC.refuse_input(decision(Category.PII, Category.PROMPT_INJECTION), "Blocked by policy.")
    assert (reply.status, reply.content_type) == (400, "application/json")
    assert json.loads(reply.body) == {
        "error": {
            "message": "Blocked by policy.",
            "type": "invalid_request_error",
            "param": None,
            "code": "content_filter",
            "categories": ["pii", "prompt_injection"],
        }
    }


def test_refuse_output_replaces_every_choice() -> None:
    body = json.dumps(ANSWER).encode()
    extraction = CODEC.extract(body, Direction.OUTPUT)
    refused = json.loads(CODEC.refuse_output(body, extraction, "I can't help with that."))
    ChatCompletion.model_validate(refused)
    assert [c["message"] for c in refused["choices"]] == [
        {"role": "assistant", "content": "I can't help with that."},
    ] * 2  # the tool call of the refused answer is gone too
    assert [c["finish_reason"] for c in refused["choices"]] == ["content_filter"] * 2
    assert [c["logprobs"] for c in refused["choices"]] == [None, None]
    assert refused["usage"] == ANSWER["usage"]
    assert "555" not in json.dumps(refused)


def chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> bytes:
    payload = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1700000001,
        "model": "gpt-x",
        "system_fingerprint": "fp",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def read(stream: bytes) -> list[StreamPiece]:
    reader = CODEC.stream_reader()
    return [*reader.feed(stream), *reader.finish()]


def test_stream_pieces() -> None:
    preamble = chunk({"role": "assistant", "content": ""})
    stream = preamble + b": ping\n\n" + chunk({"content": "Hel"}) + chunk({"content": "lo"}) + chunk({}, "stop")
    stream += b"data: [DONE]\n\n"
    assert read(stream) == [
        Passthrough(preamble, barrier=False),
        Passthrough(b": ping\n\n", barrier=False),
        TextDelta(0, "Hel"),
        TextDelta(0, "lo"),
        Passthrough(chunk({}, "stop"), barrier=True),
        Passthrough(b"data: [DONE]\n\n", barrier=True),
    ]


def test_text_and_finish_in_one_event_are_split() -> None:
    pieces = read(chunk({"content": "bye"}, "stop"))
    assert pieces[0] == TextDelta(0, "bye")
    assert isinstance(pieces[1], Passthrough) and pieces[1].barrier
    rest = json.loads(pieces[1].raw.removeprefix(b"data: "))
    ChatCompletionChunk.model_validate(rest)
    assert rest["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]


def test_role_with_text_goes_ahead_of_the_text() -> None:
    pieces = read(chunk({"role": "assistant", "content": "Hi"}))
    assert isinstance(pieces[0], Passthrough) and not pieces[0].barrier
    assert json.loads(pieces[0].raw.removeprefix(b"data: "))["choices"][0]["delta"] == {"role": "assistant"}
    assert pieces[1:] == [TextDelta(0, "Hi")]


def test_usage_unknown_fields_and_errors_are_barriers() -> None:
    usage = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"total_tokens":3}}\n\n'
    assert read(usage) == [Passthrough(usage, barrier=True)]
    # A delta field the reader cannot re-render: its strings are screened whole before it goes.
    unknown = chunk({"annotations": [{"note": "see jane@example.com"}]})
    assert read(unknown) == [Passthrough(unknown, barrier=True, texts=("see jane@example.com",))]
    # Events that are not chunks may carry unscreened text: a fixed error event stands in for each.
    error = b'data: {"error": {"message": "overloaded near jane@example.com"}}\n\n'
    for event in (error, b"data: not json\n\n", b"data: [1]\n\n", b'data: {"choices": 5}\n\n', b"data: \xff\n\n"):
        assert read(event) == [Passthrough(WITHHELD_EVENT, barrier=True)]


def test_render_text_copies_the_last_chunk() -> None:
    reader = CODEC.stream_reader()
    reader.feed(chunk({"content": "x"}))
    event = reader.render_text(0, "released \u00e9")
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    payload = json.loads(event[6:])
    ChatCompletionChunk.model_validate(payload)
    assert {k: payload[k] for k in ("id", "object", "created", "model")} == {
        "id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1700000001, "model": "gpt-x"
    }
    assert payload["choices"] == [{"index": 0, "delta": {"content": "released \u00e9"}, "logprobs": None, "finish_reason": None}]


def test_render_refusal_ends_every_choice_then_done() -> None:
    reader = CODEC.stream_reader()
    two = chunk({"content": "a"}).replace(b'"index": 0', b'"index": 1')
    reader.feed(chunk({"content": "a"}) + two)
    out = reader.render_refusal("No.")
    events = out.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    payloads = [json.loads(e[6:]) for e in events[:-2]]
    for payload in payloads:
        ChatCompletionChunk.model_validate(payload)
    assert [(p["choices"][0]["index"], p["choices"][0]["delta"], p["choices"][0]["finish_reason"]) for p in payloads] == [
        (0, {"content": "No."}, "content_filter"),
        (1, {"content": "No."}, "content_filter"),
    ]


def test_render_refusal_before_any_chunk_is_still_valid() -> None:
    out = CODEC.stream_reader().render_refusal("No.")
    ChatCompletionChunk.model_validate(json.loads(out.split(b"\n\n")[0][6:]))


def test_lone_surrogates_from_upstream_never_break_rendering() -> None:
    answer = b'{"id": "x\\ud800", "choices": [{"index": 0, "message": {"role": "assistant", "content": "a\\udc00"}}]}'
    extraction = CODEC.extract(answer, Direction.OUTPUT)
    assert extraction.slots[0].text == "a\udc00"
    refused = CODEC.refuse_output(answer, extraction, "No.")
    assert json.loads(refused)["id"] == "x\ud800"
    reader = CODEC.stream_reader()
    pieces = reader.feed(b'data: {"id": "c\\ud800", "choices": [{"index": 0, "delta": {"content": "\\udc00"}, "finish_reason": "stop"}]}\n\n')
    assert pieces[0] == TextDelta(0, "\udc00")
    assert json.loads(reader.render_text(0, "\udc00")[6:])["choices"][0]["delta"]["content"] == "\udc00"
    assert b"content_filter" in reader.render_refusal("No.")
