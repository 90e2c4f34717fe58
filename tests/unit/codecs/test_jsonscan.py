"""guard/codecs/jsonscan.py: validation like json.loads, located strings, clear errors."""

from __future__ import annotations

import json

import pytest

from guard.codecs.jsonscan import parse_json
from guard.errors import RequestError
from guard.types import Direction
from tests.fakes.json_strings import json_strings

SECRET = "hunter2-secret"


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
    found = json_strings(parse_json(text.encode(), 10).value)
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
        (b'{"a": 1, "a": 2}', "request body has a duplicate key in a JSON object at line 1 column 10"),
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
