"""Detection metrics with 95% Wilson score intervals, PII span matching, and latency percentiles.

Span rule (PII): a predicted span and a gold span match when they have the same entity type (after the
`ENTITY_ALIASES` mapping, e.g. LOCATION = GPE) and overlap by at least one character. Each gold span is
matched at most once and each predicted span at most once (greedy, in order of start offset). Span
precision = matched predicted / all predicted; recall = matched gold / all gold; per entity type.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054

# Older presidio label sets name the same thing differently; compare on one name.
ENTITY_ALIASES: dict[str, str] = {"LOCATION": "GPE", "ADDRESS": "STREET_ADDRESS"}


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 4), "low": round(self.low, 4), "high": round(self.high, 4)}

    def __str__(self) -> str:
        if math.isnan(self.value):
            return "n/a"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """Proportion with its Wilson score interval; NaN for zero trials."""
    if trials <= 0:
        nan = float("nan")
        return Interval(nan, nan, nan)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class BinaryCounts:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @classmethod
    def from_pairs(cls, gold: Iterable[bool], predicted: Iterable[bool]) -> BinaryCounts:
        tp = fp = tn = fn = 0
        for g, p in zip(gold, predicted, strict=True):
            if g and p:
                tp += 1
            elif g:
                fn += 1
            elif p:
                fp += 1
            else:
                tn += 1
        return cls(tp, fp, tn, fn)

    @property
    def precision(self) -> Interval:
        return wilson(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> Interval:
        return wilson(self.tp, self.tp + self.fn)

    @property
    def fpr(self) -> Interval:
        return wilson(self.fp, self.fp + self.tn)

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {
            "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn,
            "precision": self.precision.as_dict(), "recall": self.recall.as_dict(),
            "f1": None if math.isnan(self.f1) else round(self.f1, 4), "fpr": self.fpr.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class SpanCounts:
    predicted: int = 0
    gold: int = 0
    matched_predicted: int = 0
    matched_gold: int = 0

    @property
    def precision(self) -> Interval:
        return wilson(self.matched_predicted, self.predicted)

    @property
    def recall(self) -> Interval:
        return wilson(self.matched_gold, self.gold)

    def as_dict(self) -> dict[str, object]:
        return {
            "predicted": self.predicted, "gold": self.gold,
            "precision": self.precision.as_dict(), "recall": self.recall.as_dict(),
        }


SpanTuple = tuple[int, int, str]


def canonical_entity(entity_type: str) -> str:
    return ENTITY_ALIASES.get(entity_type, entity_type)


def match_spans(gold: Sequence[SpanTuple], predicted: Sequence[SpanTuple]) -> dict[str, SpanCounts]:
    """Per entity type counts for one text under the overlap rule in the module docstring."""
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    gold_c = sorted((s, e, canonical_entity(t)) for s, e, t in gold)
    pred_c = sorted((s, e, canonical_entity(t)) for s, e, t in predicted)
    used_gold: set[int] = set()
    for start, end, kind in pred_c:
        counts = by_type[kind]
        counts[0] += 1
        for index, (g_start, g_end, g_kind) in enumerate(gold_c):
            if index in used_gold or g_kind != kind:
                continue
            if start < g_end and g_start < end:
                used_gold.add(index)
                counts[2] += 1
                counts[3] += 1
                break
    for _, _, kind in gold_c:
        by_type[kind][1] += 1
    return {k: SpanCounts(v[0], v[1], v[2], v[3]) for k, v in by_type.items()}


def add_span_counts(total: dict[str, SpanCounts], more: dict[str, SpanCounts]) -> None:
    for kind, counts in more.items():
        old = total.get(kind, SpanCounts())
        total[kind] = SpanCounts(
            old.predicted + counts.predicted,
            old.gold + counts.gold,
            old.matched_predicted + counts.matched_predicted,
            old.matched_gold + counts.matched_gold,
        )


def percentiles(samples: Sequence[float], points: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles (in the samples' unit); empty input gives an empty mapping."""
    if not samples:
        return {}
    ordered = sorted(samples)
    out: dict[str, float] = {}
    for point in points:
        rank = max(1, math.ceil(point / 100 * len(ordered)))
        out[f"p{point:g}"] = ordered[rank - 1]
    return out
