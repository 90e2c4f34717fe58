"""Redaction: replace detected spans with typed placeholders (`<EMAIL_ADDRESS>`), touching nothing else.

Overlapping or touching spans (two recognizers on the same phone number, a name next to an email) become
one placeholder, typed after the longest of them, so the output never shows a fragment of a value between
two placeholders. Characters outside every span are copied unchanged, in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from guard.types import Action, Decision, Span


def merge_spans(spans: Sequence[Span], length: int | None = None) -> list[Span]:
    """Disjoint, non-touching spans sorted by start, covering exactly what `spans` cover.

    With `length`, spans are first clipped to `[0, length)`. Empty spans are dropped. A merged span keeps
    the entity type of its longest member; on a tie, the one that starts first (then the one given first).
    """
    clipped: list[tuple[int, int, int, str]] = []  # (start, end, order, entity_type)
    for order, span in enumerate(spans):
        start, end = max(span.start, 0), span.end
        if length is not None:
            start, end = min(start, length), min(end, length)
        if end > start:
            clipped.append((start, end, order, span.entity_type))
    clipped.sort(key=lambda item: (item[0], item[2]))

    merged: list[Span] = []
    group_start = group_end = -1
    best_length = -1
    best_type = ""
    for start, end, _order, entity_type in clipped:
        if best_length >= 0:
            if start <= group_end:  # overlapping or touching: same placeholder
                group_end = max(group_end, end)
                if end - start > best_length:
                    best_length, best_type = end - start, entity_type
                continue
            merged.append(Span(group_start, group_end, best_type))
        group_start, group_end = start, end
        best_length, best_type = end - start, entity_type
    if best_length >= 0:
        merged.append(Span(group_start, group_end, best_type))
    return merged


def placeholder(entity_type: str) -> str:
    return f"<{entity_type}>"


def redact(text: str, spans: Sequence[Span]) -> str:
    """`text` with each merged span replaced by `<ENTITY_TYPE>`; spans past the end are clipped."""
    pieces: list[str] = []
    cursor = 0
    for span in merge_spans(spans, len(text)):
        pieces.append(text[cursor : span.start])
        pieces.append(placeholder(span.entity_type))
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def spans_to_redact(decision: Decision, text_index: int) -> list[Span]:
    """Spans of the findings in text `text_index` whose policy row said `redact` (not those only logged)."""
    return [
        trigger.finding.span
        for trigger in decision.triggers
        if trigger.text_index == text_index
        and trigger.action is Action.REDACT
        and trigger.finding.span is not None
    ]
