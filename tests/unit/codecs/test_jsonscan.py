"""guard/codecs/jsonscan.py: validation like json.loads, located strings, byte-exact splicing."""

from __future__ import annotations

import json

import pytest

from guard.codecs.base import TextEdit
from guard.codecs.jsonscan import JsonStr, escape_json, parse_json, raw_offsets, rewrite_strings
from guard.errors import RequestError
from guard.types import Direction

SECRET = "hunter2-secret"


def strings_in(value: object) -> list[JsonStr]:
    found: list[JsonStr] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, JsonStr):
            found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found, key=lambda s: s.start)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, -0, 2.5e3, 1E-2, true, false, null, {}, []], "b": {"c": "d"}}',
        ' \n\t"top" \r\n',
        "[]",
        "12345678901234567890",
        '{"k\\u00e9y": "v\\/\\b\\f\\n\\r\\t\\"\\\\"}',
        '["\\ud83d\\ude00", "\\uD83D", "\\udc00x", "caf\u00e9 \U0001f600"]',
    ],
)
def test_values_match_json_loads(text: str) -> None:
    assert parse_json(text.encode(), 10).value == json.loads(text)


def test_nan_and_infinity_are_accepted_like_json_loads() -> None:
    value = parse_json(b"[NaN, Infinity, -Infinity]", 5).value
    assert isinstance(value, list)
    assert [repr(v) for v in value] == ["nan", "inf", "-inf"]


def test_string_values_know_their_literal() -> None:
    text = '{"a": "x", "b": ["y\\u00e9", {"c": ""}]}'
    found = strings_in(parse_json(text.encode(), 10).value)
    assert [(s, text[s.start : s.end]) for s in found] == [
        ("x", '"x"'),
        ("y\u00e9", '"y\\u00e9"'),
        ("", '""'),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": 1,}', "request body is not valid JSON: expecting a property name in double quotes at line 1 column 9"),
        (b"[1 2]", "request body is not valid JSON: expecting ',' or ']' at line 1 column 4"),
        (b'{"a" 1}', "request body is not valid JSON: expecting ':' after a property name at line 1 column 6"),
        (b'{\n "a": "unterminated', "request body is not valid JSON: unterminated string starting at line 2 column 7"),
        (b'"a\\qb"', "request body is not valid JSON: invalid \\escape at line 1 column 3"),
        (b'"a\x01"', "request body is not valid JSON: invalid control character at line 1 column 3"),
        (b"", "request body is not valid JSON: expecting a value at line 1 column 1"),
        (b"[1] x", "request body is not valid JSON: extra data after the value at line 1 column 5"),
        (b"01", "request body is not valid JSON: extra data after the value at line 1 column 2"),
        (b'{"a": 1, "a": 2}', "request body has a duplicate key in a JSON object at line 1 column 16"),
        (b"\xef\xbb\xbf{}", "request body is not valid JSON: expecting a value at line 1 column 1"),
        (b"[" + b"9" * 5000 + b"]", "request body has a JSON number with too many digits at line 1 column 2"),
    ],
)
def test_malformed_bodies_are_400_with_position(body: bytes, expected: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_json(body, 10)
    assert (caught.value.status, caught.value.code, caught.value.message) == (400, "invalid_request", expected)


def test_invalid_utf8_names_the_byte() -> None:
    with pytest.raises(RequestError) as caught:
        parse_json(b'{"a": "ok \xff"}', 10)
    assert caught.value.status == 400
    assert caught.value.message == "request body is not valid UTF-8 (byte 10)"


def test_encoded_surrogates_are_not_utf8() -> None:
    with pytest.raises(RequestError, match="not valid UTF-8"):
        parse_json(b'"\xed\xa0\x80"', 10)


def test_errors_never_quote_the_body() -> None:
    for body in (
        f'{{"{SECRET}": "{SECRET}" "x"}}',
        f'{{"a": "{SECRET}\\q"}}',
        f'["{SECRET}", {SECRET}]',
        f'{{"{SECRET}": 1, "{SECRET}": 2}}',
    ):
        with pytest.raises(RequestError) as caught:
            parse_json(body.encode(), 10)
        assert SECRET not in caught.value.message
        assert "hunter" not in caught.value.message


def test_upstream_bodies_fail_as_502() -> None:
    with pytest.raises(RequestError) as caught:
        parse_json(b"{oops", 10, Direction.OUTPUT)
    assert caught.value.status == 502
    assert caught.value.code == "bad_upstream_response"
    assert caught.value.message.startswith("upstream response is not valid JSON")


@pytest.mark.parametrize("opener", ["[", '{"k":'])
def test_depth_limit_is_exact(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    at_limit = opener * 5 + "1" + closer * 5
    assert parse_json(at_limit.encode(), 5).value is not None
    with pytest.raises(RequestError) as caught:
        parse_json((opener + at_limit + closer).encode(), 5)
    assert caught.value.status == 400
    assert caught.value.message.startswith("request body has JSON nested deeper than 5 levels at line 1")


def test_empty_containers_count_as_a_level() -> None:
    with pytest.raises(RequestError, match="deeper than 2 levels"):
        parse_json(b"[[[]]]", 2)


def test_hostile_nesting_is_refused_without_recursion() -> None:
    with pytest.raises(RequestError, match="deeper than 1000 levels"):
        parse_json(b"[" * 200_000, 1000)


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
