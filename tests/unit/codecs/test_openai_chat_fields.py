"""guard/codecs/openai_chat_fields.py via the chat codec: every text field is a slot, rewriting stays
byte-exact, and a redacted choice's logprobs become null while the other choice's stay as sent."""

from __future__ import annotations

import json

from guard.codecs.base import BodyLimits
from guard.codecs.openai_chat import OpenAIChatCodec
from guard.types import Direction

CODEC = OpenAIChatCodec(BodyLimits(1 << 20, 64))

REQUEST = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "name": "nm", "content": [
            {"type": "text", "text": "t1"}, {"type": "input_text", "text": "t2"},
            {"type": "image_url", "image_url": {"url": "https://x"}}]},
        {"role": "assistant", "content": None, "refusal": "rf", "reasoning_content": "rc", "reasoning": "rs",
         "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}],
         "function_call": {"name": "g", "arguments": "fa"}},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "rp"}]},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "description": "td", "parameters": {
        "type": "object", "properties": {"a": {"type": "string", "description": "pd"}}}}}],
    "functions": [{"name": "g", "description": "fd"}],
    "prediction": {"type": "content", "content": "pr"},
    "user": "us",
    "metadata": {"k": "mv"},
}


def test_every_request_text_field_is_a_slot() -> None:
    slots = CODEC.extract(json.dumps(REQUEST).encode(), Direction.INPUT).slots
    assert [s.text for s in slots] == [
        "sys", "t1", "t2", "nm", "rf", "rc", "rs", '{"a": 1}', "fa", "rp", "td", "pd", "fd", "pr", "us", "mv",
    ]
    roles = {s.text: s.role for s in slots}
    assert roles["nm"] == "user" and roles["fa"] == "tool_call" and roles["td"] == "tool_description"
    assert roles["us"] == "metadata" and roles["mv"] == "metadata"


ANSWER = (
    b'{"id": "x", "choices": [\n'
    b' {"index": 0, "message": {"role": "assistant", "content": "mail ann@example.com", "refusal": null,\n'
    b'   "audio": {"id": "a", "data": "AAAA", "transcript": "say ann@example.com"}},\n'
    b'  "logprobs": {"content": [{"token": "ann@example.com", "logprob": -0.5}]}, "finish_reason": "stop"},\n'
    b' {"index": 1, "message": {"role": "assistant", "content": "fine", "reasoning_content": "think"},\n'
    b'  "logprobs": {"content": [{"token": "fine", "logprob": -0.1}]}, "finish_reason": "stop"}\n'
    b']}'
)


def test_redacting_a_choice_drops_only_its_logprobs_and_keeps_every_other_byte() -> None:
    extraction = CODEC.extract(ANSWER, Direction.OUTPUT)
    assert [s.text for s in extraction.slots] == ["mail ann@example.com", "say ann@example.com", "fine", "think"]
    out = CODEC.rewrite(ANSWER, extraction, {0: "mail <EMAIL>", 1: "say <EMAIL>"})
    expected = (
        ANSWER.replace(b"mail ann@example.com", b"mail <EMAIL>")
        .replace(b"say ann@example.com", b"say <EMAIL>")
        .replace(b'{"content": [{"token": "ann@example.com", "logprob": -0.5}]}', b"null")
    )
    assert out == expected
    # Nothing redacted: the body is returned as sent, logprobs included.
    assert CODEC.rewrite(ANSWER, extraction, {}) == ANSWER


def test_completions_redaction_drops_that_choices_logprobs() -> None:
    from guard.codecs.openai_completions import OpenAICompletionsCodec

    codec = OpenAICompletionsCodec(BodyLimits(1 << 20, 64))
    body = (
        b'{"choices": [{"index": 0, "text": "ann@example.com", "logprobs": {"tokens": ["ann@example.com"]}},'
        b' {"index": 1, "text": "ok", "logprobs": {"tokens": ["ok"]}}]}'
    )
    extraction = codec.extract(body, Direction.OUTPUT)
    out = codec.rewrite(body, extraction, {0: "<EMAIL>"})
    assert out == body.replace(b'"ann@example.com", "logprobs": {"tokens": ["ann@example.com"]}', b'"<EMAIL>", "logprobs": null')
