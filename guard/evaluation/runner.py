"""Runs a policy's detectors over labelled rows and counts what the policy would have flagged.

Same code path as `guard serve` (issue 10): the detectors a (tier, direction) runs come from
`guard.proxy.runtime.detector_plan`, texts go through the same `Screener`, and the decision is
`guard.policy.decide.decide`, as in `guard.proxy.screening_step.Stepper.decide`. A row counts as flagged
for a category when that decision holds a trigger of the category whose action is not `allow` (a `log`
counts: it is what the policy reports, and in shadow mode every action is one). A detector failure counts
as flagged for every category when the tier's `on_detector_error` is not `allow`, as enforcement treats it.
A row may carry a `role` (the chat role its text would arrive in, e.g. `tool`): it is passed on as the slot
role is in `guard serve`, so untrusted content is screened as such. Positives of a category are rows with `label: 1` and that
`category`; negatives are all `label: 0` rows; positives of other categories are left out of a
category's counts. Direction: `auto` screens disinformation datasets as model output and all others
as input (prompts).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry
from tqdm import tqdm

from guard.detectors.base import Detector, DetectorResources
from guard.detectors.registry import build_detector
from guard.errors import ConfigError, DetectorError
from guard.evaluation.metrics import BinaryCounts, SpanCounts, SpanTuple, add_span_counts, match_spans, percentiles
from guard.metrics import GuardMetrics
from guard.policy.decide import decide, triggers_for
from guard.proxy.runtime import detector_plan
from guard.policy.model import PolicyFile
from guard.screening import Screener, ScreeningCache
from guard.types import Action, Category, Direction, ScanContext

DirectionChoice = Literal["auto", "input", "output"]


@dataclass(frozen=True, slots=True)
class EvalRow:
    text: str
    label: int
    category: str
    dataset: str
    spans: tuple[SpanTuple, ...] | None = None
    line: int = 0  # 1-based line in its file, so a miss can be looked up without printing its text
    role: str = ""  # the slot role it would arrive in ("tool" for a tool result or document), as in serve


@dataclass
class DatasetResult:
    name: str
    rows: int = 0
    direction: str = "input"
    counts: dict[str, list[tuple[bool, bool]]] = field(default_factory=lambda: defaultdict(list))
    spans: dict[str, SpanCounts] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    # per category: file lines of missed positives ("fn") and flagged negatives ("fp"); never the text
    misses: dict[str, dict[str, list[int]]] = field(default_factory=lambda: defaultdict(lambda: {"fn": [], "fp": []}))

    def binary(self) -> dict[str, BinaryCounts]:
        return {c: BinaryCounts.from_pairs([g for g, _ in p], [q for _, q in p]) for c, p in sorted(self.counts.items())}


def read_eval_rows(path: Path) -> list[EvalRow]:
    rows: list[EvalRow] = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    name = path.parent.name if path.name == "train.jsonl" else path.stem
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            text, label, category = raw["text"], raw["label"], raw["category"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(f"{path}:{number}: a row needs 'text', 'label' and 'category'") from None
        if not isinstance(text, str) or label not in (0, 1) or not isinstance(category, str):
            raise ConfigError(f"{path}:{number}: 'text' is a string, 'label' 0 or 1, 'category' a string")
        spans = None
        if "spans" in raw:
            spans = tuple((int(s["start"]), int(s["end"]), str(s["entity_type"])) for s in raw["spans"])
        rows.append(EvalRow(text, int(label), category, str(raw.get("dataset") or name), spans, number, str(raw.get("role") or "")))
    return rows


def dataset_files(target: Path) -> list[Path]:
    """A JSONL file, or a folder of them (`*.jsonl` or `*/train.jsonl`, as in ../shared/datasets)."""
    if target.is_file():
        return [target]
    if target.is_dir():
        found = sorted(target.glob("*.jsonl")) + sorted(target.glob("*/train.jsonl"))
        if found:
            return found
    raise ConfigError(f"{target}: no JSONL dataset there (a .jsonl file, or a folder of them)")


def _direction(rows: list[EvalRow], choice: DirectionChoice) -> Direction:
    if choice != "auto":
        return Direction(choice)
    return Direction.OUTPUT if any(r.category == Category.DISINFORMATION.value for r in rows) else Direction.INPUT


class Evaluator:
    """Owns the detectors it builds from the policy for the length of one evaluation."""

    def __init__(self, policy: PolicyFile, tier: str | None = None, threads: int = 1) -> None:
        self.policy = policy
        self.tier = tier or policy.default_tier
        if self.tier not in policy.tiers:
            raise ConfigError(f"tier '{self.tier}' is not one of {sorted(policy.tiers)}")
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="guard-eval")
        self._resources = DetectorResources(self._executor, threads)
        self._detectors: list[Detector] = [build_detector(c) for c in policy.detectors]
        self._plan = detector_plan(policy, {d.name: d for d in self._detectors})
        self._screener = Screener(ScreeningCache(0), GuardMetrics(CollectorRegistry(), "eval"))

    async def __aenter__(self) -> Evaluator:
        for detector in self._detectors:
            await detector.load(self._resources)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for detector in self._detectors:
            await detector.aclose()
        self._executor.shutdown(wait=True)

    def detectors_for(self, direction: Direction, skip: frozenset[Category] = frozenset()) -> list[Detector]:
        """As in `guard serve`: only detectors that find a category of this direction's table run
        (less those whose every category is in `skip`)."""
        wanted = set(self.policy.tiers[self.tier].table(direction)) - skip
        return [d for d in self._detectors if d.categories & wanted]

    async def flagged(self, texts: list[str], direction: Direction, detectors: list[Detector]) -> list[set[tuple[str, str]]]:
        """Per text: the (category, label) of each finding the policy's table turns into an action other than `allow`."""
        tier = self.policy.tiers[self.tier]
        ctx = ScanContext(direction=direction, tier=self.tier, route="eval")
        out: list[set[tuple[str, str]]] = []
        for text in texts:  # one message per screen, as `run` does, so the policy's time budget means the same
            scan = await self._screener.screen([text], detectors, ctx, self.policy.limits.detector_budget_s)
            if scan.failures:
                raise DetectorError(f"{len(scan.failures)} detector failure(s) while screening")
            out.append({(t.finding.category.value, t.finding.label) for t in triggers_for(scan.findings, tier, direction)
                        if t.action is not Action.ALLOW})
        return out

    async def run(self, name: str, rows: list[EvalRow], direction: DirectionChoice = "auto") -> DatasetResult:
        chosen = _direction(rows, direction)
        result = DatasetResult(name=name, rows=len(rows), direction=chosen.value)
        tier = self.policy.tiers[self.tier]
        categories = sorted(c.value for c in tier.table(chosen))
        ctx = ScanContext(direction=chosen, tier=self.tier, route="eval")
        detectors = list(self._plan.get((self.tier, chosen), ()))
        for row in tqdm(rows, desc=result.name, unit="row", leave=False):
            started = time.perf_counter()
            row_ctx = replace(ctx, roles=(row.role,)) if row.role else ctx
            scan = await self._screener.screen([row.text], detectors, row_ctx, self.policy.limits.detector_budget_s)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.failures += len(scan.failures)
            decision = decide(self.policy, scan, chosen, self.tier)
            flagged = {t.finding.category.value for t in decision.triggers if t.action is not Action.ALLOW}
            if decision.failures and tier.on_detector_error is not Action.ALLOW:
                flagged.update(categories)
            for category in categories:
                if row.label == 1 and row.category != category:
                    continue
                result.counts[category].append((row.label == 1, category in flagged))
                if (row.label == 1) != (category in flagged):
                    result.misses[category]["fn" if row.label == 1 else "fp"].append(row.line)
            if row.spans is not None:
                predicted = [
                    (f.span.start, f.span.end, f.span.entity_type)
                    for f in scan.findings[0] if f.category is Category.PII and f.span is not None
                ]
                add_span_counts(result.spans, match_spans(row.spans, predicted))
        return result


def evaluate(policy: PolicyFile, targets: list[Path], tier: str | None, direction: DirectionChoice, limit: int | None) -> list[DatasetResult]:
    # Every file is read and checked before any model loads, so a bad row fails fast.
    loaded: list[tuple[str, list[EvalRow]]] = []
    for path in targets:
        rows = read_eval_rows(path)[:limit]
        named = {r.dataset for r in rows}
        if len(named) > 1:
            # A file whose rows name several datasets (one per language, say) is reported per dataset.
            loaded.extend((name, [r for r in rows if r.dataset == name]) for name in sorted(named))
        else:
            loaded.append((path.parent.name if path.name == "train.jsonl" else path.stem, rows))

    async def main() -> list[DatasetResult]:
        async with Evaluator(policy, tier) as evaluator:
            return [await evaluator.run(name, rows, direction) for name, rows in loaded]

    return asyncio.run(main())


def summary(results: list[DatasetResult]) -> dict[str, object]:
    """Per dataset and overall: binary metrics per category, span metrics per entity type, latency."""
    overall_pairs: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    overall_spans: dict[str, SpanCounts] = {}
    latencies: list[float] = []
    datasets = {}
    for r in results:
        for category, pairs in r.counts.items():
            overall_pairs[category].extend(pairs)
        add_span_counts(overall_spans, r.spans)
        latencies.extend(r.latencies_ms)
        datasets[r.name] = {
            "rows": r.rows, "direction": r.direction, "detector_failures": r.failures,
            "categories": {c: b.as_dict() for c, b in r.binary().items()},
            "spans": {k: v.as_dict() for k, v in sorted(r.spans.items())},
            "latency_ms": {k: round(v, 2) for k, v in percentiles(r.latencies_ms).items()},
            "misses": {c: m for c, m in sorted(r.misses.items())},
        }
    overall = {c: BinaryCounts.from_pairs([g for g, _ in p], [q for _, q in p]).as_dict() for c, p in sorted(overall_pairs.items())}
    return {
        "datasets": datasets,
        "overall": {"categories": overall, "spans": {k: v.as_dict() for k, v in sorted(overall_spans.items())},
                    "latency_ms": {k: round(v, 2) for k, v in percentiles(latencies).items()}},
    }
