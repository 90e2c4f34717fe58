"""guard/codecs/openai_embeddings.py: `input` forms, token ids refused unless allowed, in-place redaction."""

from __future__ import annotations

import json

import pytest

from guard.codecs.base import BodyLimits, TextEdit
from guard.codecs.openai_embeddings import OpenAIEmbeddingsCodec
from guard.codecs.registry import build_codec
from guard.errors import RequestError
from guard.policy.model import CodecConfig
from guard.types import Direction

LIMITS = BodyLimits(max_body_bytes=1 << 20, max_json_depth=8)
CODEC = OpenAIEmbeddingsCodec(LIMITS)


def test_string_and_list_inputs_are_slots() -> None:
    one = CODEC.extract(b'{"model": "e", "input": "mail a@b.example"}', Direction.INPUT)
    assert [(s.text, s.role) for s in one.slots] == [("mail a@b.example", "input")]
    many = CODEC.extract(b'{"model": "e", "input": ["x", "y \\u00e9"], "dimensions": 8}', Direction.INPUT)
    assert [s.text for s in many.slots] == ["x", "y \u00e9"]


def test_redaction_changes_only_the_edited_bytes() -> None:
    body = b'{"input": ["keep", "mail a@b.example now"],  "model":"e"}'
    extraction = CODEC.extract(body, Direction.INPUT)
    out = CODEC.rewrite(body, extraction, {1: [TextEdit(5, 16, "<EMAIL_ADDRESS>")]})
    assert out == b'{"input": ["keep", "mail <EMAIL_ADDRESS> now"],  "model":"e"}'


@pytest.mark.parametrize("tokens", [b"[1, 2, 3]", b"[[1, 2], [3]]", b'["text", [5, 6]]'])
def test_token_ids_are_refused_with_a_clear_400(tokens: bytes) -> None:
    with pytest.raises(RequestError) as caught:
        CODEC.extract(b'{"model": "e", "input": ' + tokens + b"}", Direction.INPUT)
    assert (caught.value.status, caught.value.code) == (400, "token_input")
    assert "token ids" in caught.value.message


def test_token_ids_pass_when_the_route_allows_them_and_strings_are_still_screened() -> None:
    codec = build_codec(CodecConfig(kind="openai_embeddings", allow_token_input=True), LIMITS)
    assert codec.extract(b'{"input": [1, 2, 3]}', Direction.INPUT).slots == ()
    assert [s.text for s in codec.extract(b'{"input": ["a b", [4]]}', Direction.INPUT).slots] == ["a b"]


def test_allow_token_input_is_only_for_embeddings() -> None:
    with pytest.raises(ValueError, match="allow_token_input applies only to codec kind 'openai_embeddings'"):
        CodecConfig(kind="openai_chat", allow_token_input=True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"model": "e"}', "input is required"),
        (b'{"input": 3}', "input must be a string, a list of strings, or token ids, not a number"),
        (b'{"input": ["a", {"x": 1}]}', "input[1] must be a string"),
        (b"[1]", "must be a JSON object, not a list"),
    ],
)
def test_wrong_shapes_name_the_field(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        CODEC.extract(body, Direction.INPUT)
    assert caught.value.status == 400


def test_answers_carry_no_text_and_no_stream() -> None:
    answer = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2]}]}
    assert CODEC.extract(json.dumps(answer).encode(), Direction.OUTPUT).slots == ()
    assert CODEC.stream_reader() is None
