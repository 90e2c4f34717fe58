"""Pseudonyms for one exchange: stable numbered placeholders, originals restored in whole texts and in
streams cut at every position (placeholders split across pieces included)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from guard.actions.pseudonymize import Pseudonyms, StreamRestorer
from guard.types import Span

TEXT = "Mail jane@example.com or call Jane Roe; jane@example.com again, and Ann Lee."


def _spans(text: str) -> list[Span]:
    out = []
    for value, kind in (("jane@example.com", "EMAIL_ADDRESS"), ("Jane Roe", "PERSON"), ("Ann Lee", "PERSON")):
        start = 0
        while (index := text.find(value, start)) >= 0:
            out.append(Span(index, index + len(value), kind))
            start = index + 1
    return out


def test_same_value_same_placeholder_numbered_per_type() -> None:
    table = Pseudonyms()
    masked = table.pseudonymize(TEXT, _spans(TEXT))
    assert masked == ("Mail <EMAIL_ADDRESS_1> or call <PERSON_1>; <EMAIL_ADDRESS_1> again, and <PERSON_2>.")
    assert "jane" not in masked and len(table) == 3
    assert table.restore(masked) == TEXT


def test_placeholders_not_issued_here_are_left_alone() -> None:
    table = Pseudonyms()
    table.pseudonymize(TEXT, _spans(TEXT))
    assert table.restore("<PERSON_9> and <PERSON_1>") == "<PERSON_9> and Jane Roe"


@given(cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=12))
@example(cuts=[7, 8, 9, 10, 11, 12, 13])
@example(cuts=[1])
def test_stream_restores_whatever_the_chunking(cuts: list[int]) -> None:
    table = Pseudonyms()
    answer = table.pseudonymize(TEXT, _spans(TEXT)) + " <b>bold</b> 3 < 4 <"
    points = sorted({min(c, len(answer)) for c in cuts})
    pieces = [answer[a:b] for a, b in zip([0, *points], [*points, len(answer)], strict=True)]
    restorer = StreamRestorer(table)
    released = "".join(restorer.feed(p) for p in pieces) + restorer.finish()
    assert released == TEXT + " <b>bold</b> 3 < 4 <"
