"""guard/codecs/jsonsplice.py: decoded offsets mapped to raw ones, byte-exact splicing, escaping."""

from __future__ import annotations

import json

import pytest

from guard.codecs.base import TextEdit
from guard.codecs.jsonscan import JsonStr, parse_json
from guard.codecs.jsonsplice import escape_json, raw_offsets, rewrite_strings


def test_raw_offsets_walk_escapes_and_surrogate_pairs() -> None:
    text = '"a\\u00e9\\ud83d\\ude00\\"\\ud800b"'
    literal = parse_json(text.encode(), 1).value
    assert isinstance(literal, JsonStr)
    assert literal == "a\u00e9\U0001f600\"\ud800b"
    assert raw_offsets(text, literal) == [1, 2, 8, 20, 22, 28, 29]
    plain = parse_json(b'"plain"', 1).value
    assert isinstance(plain, JsonStr)
    assert raw_offsets('"plain"', plain) is None  # no escapes: decoded offset i is raw offset 1 + i


def test_edit_changes_only_its_range() -> None:
    body = '{"m": "k\\u00e9y \\"call 555-1234\\" \\ud83d\\ude00 end", "n": 1.50}'.encode()
    document = parse_json(body, 5)
    assert isinstance(document.value, dict)
    literal = document.value["m"]
    start = literal.index("555")
    out = rewrite_strings(document, [(literal, [TextEdit(start, start + 8, "<PHONE>")])])
    assert out == body.replace(b"555-1234", b"<PHONE>")
    out = rewrite_strings(document, [(literal, [TextEdit(0, 1, "K"), TextEdit(literal.index("end"), len(literal), "")])])
    assert out == body.replace(b'"k\\u00e9y', b'"K\\u00e9y').replace(b" end", b" ")


def test_whole_text_replacement_keeps_common_prefix_and_suffix() -> None:
    body = b'{"m": "\\u0041BC tail\\/x"}'
    document = parse_json(body, 5)
    assert isinstance(document.value, dict)
    literal = document.value["m"]
    out = rewrite_strings(document, [(literal, "AB\"C\n tail/x")])
    assert out == b'{"m": "\\u0041B\\"C\\n tail\\/x"}'
    assert rewrite_strings(document, [(literal, str(literal))]) is body


def test_replacement_text_is_escaped() -> None:
    document = parse_json(b'["x"]', 5)
    assert isinstance(document.value, list)
    out = rewrite_strings(document, [(document.value[0], 'q"\\\n\x00\u2028\ud800\U0001f600')])
    assert out == '["q\\"\\\\\\n\\u0000\u2028\\ud800\U0001f600"]'.encode()
    assert json.loads(out) == ['q"\\\n\x00\u2028\ud800\U0001f600']


def test_bad_edits_are_caller_bugs() -> None:
    document = parse_json(b'["abc"]', 5)
    assert isinstance(document.value, list)
    literal = document.value[0]
    for edits in ([TextEdit(2, 1, "")], [TextEdit(0, 4, "")], [TextEdit(1, 2, ""), TextEdit(0, 1, "")]):
        with pytest.raises(ValueError):
            rewrite_strings(document, [(literal, edits)])
    with pytest.raises(ValueError, match="overlap"):
        rewrite_strings(document, [(literal, "x"), (literal, "y")])


def test_escape_json_round_trips() -> None:
    for text in ["", "plain", '"\\/\b\f\n\r\t', "\x00\x1f\x7f", "\udfff\ud800", "\u00e9\U0001f600"]:
        assert json.loads('"' + escape_json(text) + '"') == text
    # JSON cannot tell two lone surrogates that form a pair from the pair: they come back joined.
    assert json.loads('"' + escape_json("\ud800\udfff") + '"') == "\U000103ff"


def test_whole_text_with_two_redactions_keeps_the_escapes_between_them() -> None:
    body = b'{"m": "mail a@b.co, caf\\u00e9 \\"x\\" or call 555-1234\\n"}'
    document = parse_json(body, 5)
    assert isinstance(document.value, dict)
    literal = document.value["m"]
    assert literal == 'mail a@b.co, caf\u00e9 "x" or call 555-1234\n'
    new = literal.replace("a@b.co", "<EMAIL>").replace("555-1234", "<PHONE>")
    out = rewrite_strings(document, [(literal, new)])
    assert out == body.replace(b"a@b.co", b"<EMAIL>").replace(b"555-1234", b"<PHONE>")
