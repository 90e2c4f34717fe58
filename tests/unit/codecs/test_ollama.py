"""guard/codecs/ollama.py and ollama_stream.py: Ollama chat/generate texts, refusals and NDJSON streams."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard.codecs.base import BodyLimits, Passthrough, TextDelta
from guard.codecs.ollama import OllamaChatCodec, OllamaGenerateCodec
from guard.codecs.ollama_stream import WITHHELD_LINE, OllamaStreamReader
from guard.errors import RequestError, UpstreamError
from guard.types import Action, Category, Decision, Direction

LIMITS = BodyLimits(max_body_bytes=1 << 20, max_json_depth=16)
CHAT = OllamaChatCodec(LIMITS)
GENERATE = OllamaGenerateCodec(LIMITS)


def _line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


CHAT_STREAM = b"".join(
    [
        _line({"model": "m", "created_at": "t1", "message": {"role": "assistant", "content": "Mail jo"}, "done": False}),
        _line({"model": "m", "created_at": "t2", "message": {"role": "assistant", "content": "e@x.example"}, "done": False}),
        _line({"model": "m", "created_at": "t3", "message": {"role": "assistant", "thinking": "hmm"}, "done": False}),
        _line({"model": "m", "created_at": "t4", "message": {"role": "assistant", "content": ""}, "done": True,
               "done_reason": "stop", "eval_count": 3}),
    ]
)


def test_chat_request_texts_and_default_stream() -> None:
    body = json.dumps(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi", "images": ["aGk="]},
                {"role": "assistant", "content": "", "thinking": "plan",
                 "tool_calls": [{"function": {"name": "f", "arguments": {"to": "a@b.example", "n": 2, "l": ["x"]}}}]},
            ],
            "tools": [{"type": "function", "function": {"name": "f", "description": "send mail"}}],
        }
    ).encode()
    extraction = CHAT.extract(body, Direction.INPUT)
    assert [(s.text, s.role) for s in extraction.slots] == [
        ("be brief", "system"), ("hi", "user"), ("", "assistant"), ("plan", "thinking"),
        ("a@b.example", "tool_call"), ("x", "tool_call"), ("send mail", "tool_description"),
    ]
    assert extraction.stream  # Ollama streams unless `stream: false`
    assert not CHAT.extract(b'{"messages": [], "stream": false}', Direction.INPUT).stream


def test_generate_request_texts() -> None:
    body = b'{"model": "m", "prompt": "p", "system": "s", "suffix": "x", "template": "t", "context": [1, 2]}'
    assert [(s.text, s.role) for s in GENERATE.extract(body, Direction.INPUT).slots] == [
        ("s", "system"), ("t", "template"), ("p", "prompt"), ("x", "suffix"),
    ]
    with pytest.raises(RequestError, match="prompt must be a string, not a number"):
        GENERATE.extract(b'{"prompt": 1}', Direction.INPUT)


def test_refusals_are_ollama_shaped() -> None:
    decision = Decision(Action.BLOCK, Direction.INPUT, "t", "v", categories=(Category.PII,))
    reply = CHAT.refuse_input(decision, "Refused.")
    assert reply.status == 400
    assert json.loads(reply.body) == {"error": "Refused.", "code": "content_filter", "categories": ["pii"]}
    answer = b'{"model":"m","response":"secret","thinking":"t","done":true,"context":[1,2,3]}'
    refused = json.loads(GENERATE.refuse_output(answer, GENERATE.extract(answer, Direction.OUTPUT), "No."))
    assert refused == {"model": "m", "response": "No.", "done": True, "done_reason": "content_filter"}
    chat_answer = b'{"model":"m","message":{"role":"assistant","content":"s","tool_calls":[]},"done":true}'
    refused = json.loads(CHAT.refuse_output(chat_answer, CHAT.extract(chat_answer, Direction.OUTPUT), "No."))
    assert refused["message"] == {"role": "assistant", "content": "No."}
    assert refused["done_reason"] == "content_filter"


def test_a_redacted_generate_answer_loses_its_context() -> None:
    answer = b'{"model":"m","response":"mail a@b.example","done":true,"context":[9,9]}'
    extraction = GENERATE.extract(answer, Direction.OUTPUT)
    out = json.loads(GENERATE.rewrite(answer, extraction, {0: "mail <EMAIL_ADDRESS>"}))
    assert out == {"model": "m", "response": "mail <EMAIL_ADDRESS>", "done": True}
    assert GENERATE.rewrite(answer, extraction, {}) == answer


def _pieces(reader: OllamaStreamReader, data: bytes, cuts: list[int]) -> list[object]:
    out: list[object] = []
    previous = 0
    for cut in sorted(set(cuts)):
        out.extend(reader.feed(data[previous:cut]))
        previous = cut
    out.extend(reader.feed(data[previous:]))
    out.extend(reader.finish())
    return out


@given(st.lists(st.integers(0, len(CHAT_STREAM)), max_size=8))
def test_stream_pieces_do_not_depend_on_chunking(cuts: list[int]) -> None:
    expected = _pieces(OllamaStreamReader(True, 4096), CHAT_STREAM, [])
    assert _pieces(OllamaStreamReader(True, 4096), CHAT_STREAM, cuts) == expected


def test_chat_stream_text_thinking_and_final_line() -> None:
    pieces = _pieces(OllamaStreamReader(True, 4096), CHAT_STREAM, [])
    assert pieces[:3] == [TextDelta(0, "Mail jo"), TextDelta(0, "e@x.example"), TextDelta(1, "hmm")]
    final = pieces[3]
    assert isinstance(final, Passthrough) and final.barrier
    assert json.loads(final.raw)["done_reason"] == "stop"
    assert json.loads(final.raw)["message"] == {"role": "assistant", "content": ""}


def test_generate_stream_drops_context_and_renders_released_text() -> None:
    reader = OllamaStreamReader(False, 4096)
    data = _line({"model": "m", "created_at": "t", "response": "Hi", "done": False}) + _line(
        {"model": "m", "created_at": "t", "response": "", "done": True, "context": [1, 2]}
    )
    pieces = _pieces(reader, data, [])
    assert pieces[0] == TextDelta(0, "Hi")
    assert isinstance(pieces[1], Passthrough) and "context" not in json.loads(pieces[1].raw)
    assert json.loads(reader.render_text(0, "Hi")) == {"model": "m", "created_at": "t", "response": "Hi", "done": False}
    refusal = reader.render_refusal("No.")
    assert refusal.endswith(b"\n") and refusal.count(b"\n") == 1
    assert json.loads(refusal) == {
        "model": "m", "created_at": "t", "response": "No.", "done": True, "done_reason": "content_filter",
    }


@pytest.mark.parametrize("line", [b"not json\n", b"[1]\n", b'{"error": "model said a@b.example"}\n'])
def test_unreadable_and_error_lines_are_withheld(line: bytes) -> None:
    pieces = OllamaStreamReader(True, 4096).feed(line)
    assert pieces == [Passthrough(WITHHELD_LINE, barrier=True)]


def test_an_endless_line_is_cut() -> None:
    with pytest.raises(UpstreamError):
        OllamaStreamReader(True, 64).feed(b'{"message": {"content": "' + b"a" * 100)
