"""Redaction: placeholders replace exactly the merged spans; everything else is copied unchanged."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from guard.actions.redact import merge_spans, redact
from guard.types import Span

ENTITY_TYPES = ("EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER", "X")


def test_replaces_each_span_with_its_type() -> None:
    text = "mail bob@example.com or call 555-0100 now"
    spans = [Span(5, 20, "EMAIL_ADDRESS"), Span(29, 37, "PHONE_NUMBER")]
    assert redact(text, spans) == "mail <EMAIL_ADDRESS> or call <PHONE_NUMBER> now"


def test_overlapping_spans_become_one_placeholder_typed_after_the_longest() -> None:
    text = "call +1 212 555 0134 today"
    spans = [Span(8, 20, "US_BANK_NUMBER"), Span(5, 20, "PHONE_NUMBER")]
    assert redact(text, spans) == "call <PHONE_NUMBER> today"


def test_touching_spans_merge_and_tie_goes_to_the_first() -> None:
    assert merge_spans([Span(0, 3, "A"), Span(3, 6, "B")]) == [Span(0, 6, "A")]
    assert merge_spans([Span(3, 6, "B"), Span(0, 3, "A")]) == [Span(0, 6, "A")]


def test_out_of_bounds_and_empty_spans() -> None:
    assert redact("abc", [Span(1, 99, "X"), Span(2, 2, "Y"), Span(-5, 0, "Z")]) == "a<X>"
    assert redact("", [Span(0, 4, "X")]) == ""
    assert redact("abc", []) == "abc"


@st.composite
def text_and_spans(draw: st.DrawFn) -> tuple[str, list[Span]]:
    text = draw(st.text(max_size=40))
    bound = len(text) + 3  # some spans run past the end: they must be clipped
    spans = []
    for _ in range(draw(st.integers(0, 8))):
        start = draw(st.integers(0, bound))
        end = draw(st.integers(start, bound))
        spans.append(Span(start, end, draw(st.sampled_from(ENTITY_TYPES))))
    return text, spans


def _oracle(text: str, spans: list[Span]) -> str:
    """Per-character coverage: each maximal run of covered characters is one placeholder."""
    covered = [False] * len(text)
    for span in spans:
        for i in range(max(span.start, 0), min(span.end, len(text))):
            covered[i] = True
    out: list[str] = []
    i = 0
    while i < len(text):
        if not covered[i]:
            out.append(text[i])
            i += 1
            continue
        j = i
        while j < len(text) and covered[j]:
            j += 1
        members = [s for s in spans if max(s.start, 0) < min(s.end, len(text)) and s.start < j and s.end > i]
        # Longest clipped member wins; ties to the earliest start, then the order given.
        best = min(
            enumerate(members),
            key=lambda m: (-(min(m[1].end, len(text)) - max(m[1].start, 0)), m[1].start, m[0]),
        )[1]
        out.append(f"<{best.entity_type}>")
        i = j
    return "".join(out)


@given(text_and_spans())
@example(("abcdef", [Span(0, 2, "X"), Span(2, 4, "PERSON")]))
@example(("abcdef", [Span(1, 3, "X"), Span(0, 6, "PERSON"), Span(5, 9, "X")]))
def test_redaction_matches_the_character_oracle(case: tuple[str, list[Span]]) -> None:
    text, spans = case
    assert redact(text, spans) == _oracle(text, spans)


@given(text_and_spans())
def test_merged_spans_are_disjoint_sorted_and_in_bounds(case: tuple[str, list[Span]]) -> None:
    text, spans = case
    merged = merge_spans(spans, len(text))
    for span in merged:
        assert 0 <= span.start < span.end <= len(text)
    for left, right in zip(merged, merged[1:]):
        assert left.end < right.start  # disjoint and not touching
    covered = {i for s in spans for i in range(max(s.start, 0), min(s.end, len(text)))}
    assert covered == {i for s in merged for i in range(s.start, s.end)}


@given(text_and_spans())
def test_text_outside_spans_is_unchanged(case: tuple[str, list[Span]]) -> None:
    text, spans = case
    merged = merge_spans(spans, len(text))
    out = redact(text, spans)
    cursor = 0
    position = 0
    for span in merged:
        gap = text[cursor : span.start]
        assert out[position : position + len(gap)] == gap
        position += len(gap) + len(f"<{span.entity_type}>")
        cursor = span.end
    assert out[position:] == text[cursor:]
