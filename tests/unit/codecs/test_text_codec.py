"""guard/codecs/text.py: a plain-text body is one text."""

from __future__ import annotations

import pytest

from guard.codecs.base import BodyLimits, TextEdit
from guard.codecs.text import TextCodec
from guard.errors import RequestError
from guard.types import Action, Decision, Direction

CODEC = TextCodec(BodyLimits(max_body_bytes=1000, max_json_depth=4))


def test_whole_body_is_slot_zero() -> None:
    body = "Call me at 555-1234, caf\u00e9.\n".encode()
    extraction = CODEC.extract(body, Direction.INPUT)
    assert [(s.index, s.text, s.role) for s in extraction.slots] == [(0, body.decode(), "text")]
    assert CODEC.rewrite(body, extraction, {}) == body
    assert CODEC.rewrite(body, extraction, {0: "Call me at <PHONE>, caf\u00e9.\n"}) == "Call me at <PHONE>, caf\u00e9.\n".encode()
    assert CODEC.rewrite(body, extraction, {0: [TextEdit(11, 19, "<P>")]}) == (
        "Call me at <P>, caf\u00e9.\n".encode()
    )
    with pytest.raises(ValueError):
        CODEC.rewrite(body, extraction, {1: "x"})


def test_empty_body_has_no_text() -> None:
    assert CODEC.extract(b"", Direction.OUTPUT).slots == ()


def test_invalid_utf8() -> None:
    with pytest.raises(RequestError) as caught:
        CODEC.extract(b"ok\xc3", Direction.INPUT)
    assert (caught.value.status, caught.value.message) == (400, "request body is not valid UTF-8 (byte 2)")
    with pytest.raises(RequestError) as caught:
        CODEC.extract(b"ok\xc3", Direction.OUTPUT)
    assert caught.value.status == 502


def test_refusals_are_plain_text() -> None:
    reply = CODEC.refuse_input(Decision(Action.BLOCK, Direction.INPUT, "t", "v"), "Blocked.")
    assert (reply.status, reply.body, reply.content_type) == (400, b"Blocked.", "text/plain; charset=utf-8")
    assert CODEC.refuse_output(b"x", CODEC.extract(b"x", Direction.OUTPUT), "Refused \u00e9") == "Refused \u00e9".encode()
    assert CODEC.stream_reader() is None
