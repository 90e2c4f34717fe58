"""Wilson intervals, binary counts, the PII span overlap rule and percentiles."""

from __future__ import annotations

import math

import pytest

from guard.evaluation.metrics import BinaryCounts, match_spans, percentiles, wilson


def test_wilson_matches_the_textbook_values() -> None:
    # 81 of 263: the example of Wilson (1927) as worked in Newcombe (1998), 0.2553 to 0.3662 at 95%.
    interval = wilson(81, 263)
    assert interval.value == pytest.approx(81 / 263)
    assert interval.low == pytest.approx(0.2553, abs=1e-4)
    assert interval.high == pytest.approx(0.3662, abs=1e-4)


def test_wilson_edges() -> None:
    assert wilson(0, 10).low == 0.0 and 0.0 < wilson(0, 10).high < 0.35
    assert wilson(10, 10).high == pytest.approx(1.0) and 0.65 < wilson(10, 10).low < 1.0
    assert math.isnan(wilson(0, 0).value)
    assert str(wilson(0, 0)) == "n/a"


def test_binary_counts() -> None:
    counts = BinaryCounts.from_pairs([True, True, True, False, False, False, False], [True, True, False, True, False, False, False])
    assert (counts.tp, counts.fn, counts.fp, counts.tn) == (2, 1, 1, 3)
    assert counts.precision.value == pytest.approx(2 / 3)
    assert counts.recall.value == pytest.approx(2 / 3)
    assert counts.fpr.value == pytest.approx(1 / 4)
    assert counts.f1 == pytest.approx(2 / 3)
    assert counts.as_dict()["tp"] == 2


def test_span_overlap_rule_per_entity_type() -> None:
    gold = [(0, 10, "PERSON"), (20, 30, "EMAIL_ADDRESS"), (40, 45, "LOCATION")]
    predicted = [(5, 12, "PERSON"), (30, 35, "EMAIL_ADDRESS"), (41, 44, "GPE"), (50, 55, "PERSON")]
    counts = match_spans(gold, predicted)
    assert (counts["PERSON"].matched_predicted, counts["PERSON"].predicted, counts["PERSON"].gold) == (1, 2, 1)
    # Touching at offset 30 is not overlap (ends are exclusive).
    assert counts["EMAIL_ADDRESS"].matched_gold == 0
    # LOCATION and GPE are one type.
    assert counts["GPE"].matched_gold == 1


def test_a_gold_span_is_matched_once() -> None:
    counts = match_spans([(0, 10, "PERSON")], [(0, 4, "PERSON"), (5, 10, "PERSON")])
    assert counts["PERSON"].matched_predicted == 1 and counts["PERSON"].matched_gold == 1


def test_percentiles_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentiles(samples) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert percentiles([]) == {}
