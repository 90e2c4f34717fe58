"""`guard.detectors.deadline`: segments cover a text so that every short span lies whole in one segment,
and the deadline check fires once it has passed."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from guard.detectors.deadline import DeadlineExceededError, check, segments


@given(st.text(alphabet="ab ", min_size=0, max_size=400), st.integers(8, 64), st.integers(1, 7))
@example("a" * 100, 16, 4)
def test_every_span_up_to_the_overlap_lies_in_one_segment(text: str, size: int, overlap: int) -> None:
    ranges = segments(text, size, overlap)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(text)
    assert all(end - start <= size for start, end in ranges)
    for start in range(len(text)):
        for end in range(start + 1, min(start + overlap, len(text)) + 1):
            assert any(s <= start and end <= e for s, e in ranges), (start, end, ranges)


def test_check_raises_only_past_the_deadline() -> None:
    check(None)
    check(time.monotonic() + 10)
    with pytest.raises(DeadlineExceededError):
        check(time.monotonic() - 0.001)
