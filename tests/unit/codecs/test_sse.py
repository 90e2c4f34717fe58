"""guard/codecs/sse.py: events, raw bytes, line endings and chunk boundaries."""

from __future__ import annotations

import pytest

from guard.codecs.sse import SseEvent, SseParser
from guard.errors import UpstreamError


def parse(stream: bytes, step: int = 0) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    if step:
        for i in range(0, len(stream), step):
            events += parser.feed(stream[i : i + step])
    else:
        events += parser.feed(stream)
    return events + parser.finish()


def test_event_fields_and_raw_bytes() -> None:
    stream = b"event: delta\nid: 7\ndata: one\ndata:two\ndata\n: comment\nretry: 10\n\n"
    [event] = parse(stream)
    assert event.raw == stream
    assert event.data == "one\ntwo\n"
    assert event.event == "delta"
    assert event.fields == (("event", "delta"), ("id", "7"), ("retry", "10"))
    assert event.field_lines() == b"event: delta\nid: 7\nretry: 10\n"


def test_only_one_space_after_the_colon_is_dropped() -> None:
    [event] = parse(b"data:  two spaces\n\n")
    assert event.data == " two spaces"


def test_all_three_line_endings() -> None:
    stream = b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"
    events = parse(stream)
    assert [e.data for e in events] == ["a", "b", "c"]
    assert b"".join(e.raw for e in events) == stream


def test_comment_only_blocks_and_stray_blank_lines_are_kept() -> None:
    events = parse(b": keep-alive\n\n\ndata: x\n\n")
    assert [(e.raw, e.data) for e in events] == [(b": keep-alive\n\n", None), (b"\n", None), (b"data: x\n\n", "x")]


def test_trailing_cr_waits_for_the_next_byte() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r\n\r") == []  # the \r could be half of \r\n
    [event] = parser.feed(b"\ndata: b")
    assert event.raw == b"data: a\r\n\r\n"
    [last] = parser.finish()
    assert (last.raw, last.data) == (b"data: b", "b")


def test_trailing_cr_at_the_end_of_the_stream_ends_the_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r\r") == []
    [event] = parser.finish()
    assert (event.raw, event.data) == (b"data: a\r\r", "a")


def test_split_inside_a_multibyte_character() -> None:
    stream = "data: caf\u00e9 \U0001f600\n\n".encode()
    for step in range(1, 6):
        [event] = parse(stream, step)
        assert event.data == "caf\u00e9 \U0001f600"


def test_invalid_utf8_becomes_replacement_characters() -> None:
    [event] = parse(b"data: a\xffb\n\n")
    assert event.data == "a\ufffdb"
    assert event.raw == b"data: a\xffb\n\n"


def test_leading_bom_is_ignored_once() -> None:
    events = parse(b"\xef\xbb\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\n")
    assert events[0].data == "a"
    assert events[1].data is None  # a BOM later on is part of a field name, as the standard says
    assert events[1].fields == (("\ufeffdata", "b"),)


def test_nothing_left_means_no_event_at_finish() -> None:
    parser = SseParser()
    assert len(parser.feed(b"data: a\n\n")) == 1
    assert parser.finish() == []


def test_an_endless_event_is_an_upstream_error() -> None:
    parser = SseParser(max_event_bytes=16)
    assert [e.data for e in parser.feed(b"data: 0123456789\n\n")] == ["0123456789"]  # 18 bytes, but complete
    parser.feed(b"data: 0123456789")
    with pytest.raises(UpstreamError, match="longer than 16 bytes"):
        parser.feed(b"X")
