"""The Screener: cached by content and detector version, one call per distinct text, and a detector that
raises or overruns its budget becomes a failure the policy decides on, never an empty (allowing) result."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from guard.detectors.registry import PluginConfig
from guard.metrics import GuardMetrics
from guard.screening import Screener, ScreeningCache
from guard.types import Category, DetectorFailure, Direction, FailureReason, ScanContext
from tests.fakes.detectors import FaultDetector

CTX = ScanContext(Direction.INPUT, "limited", "chat", "req-1")


def fault(mode: str, **settings: Any) -> FaultDetector:
    config = PluginConfig(
        kind="plugin", name=f"fault_{mode}", factory="tests.fakes.detectors:FaultDetector",
        reports=[Category.PII], settings={"mode": mode, "marker": "MARK", **settings},
    )
    return FaultDetector(config)


def screener(max_entries: int = 100) -> tuple[Screener, CollectorRegistry]:
    registry = CollectorRegistry()
    return Screener(ScreeningCache(max_entries), GuardMetrics(registry, "test")), registry


def test_a_text_screened_before_comes_from_the_cache() -> None:
    screen, registry = screener()
    detector = fault("find")
    first = asyncio.run(screen.screen(["system MARK", "hello"], [detector], CTX, budget_s=1.0))
    second = asyncio.run(screen.screen(["system MARK", "hello", "new MARK"], [detector], CTX, budget_s=1.0))
    assert detector.calls == 2  # the second call screened only the new text
    assert second.cache_hits == 2 and first.cache_hits == 0
    assert second.findings[0] == first.findings[0] and len(second.findings[2]) == 1
    assert registry.get_sample_value("guard_cache_lookups_total", {"detector": "fault_find", "result": "hit"}) == 2


def test_identical_texts_in_one_batch_are_screened_once_and_both_get_the_findings() -> None:
    screen, _ = screener()
    detector = fault("find")
    result = asyncio.run(screen.screen(["a MARK", "a MARK"], [detector], CTX, budget_s=1.0))
    assert detector.calls == 1
    assert [len(f) for f in result.findings] == [1, 1]


def test_the_cache_is_bounded() -> None:
    screen, _ = screener(max_entries=2)
    detector = fault("find")
    for text in ("one", "two", "three", "one"):
        asyncio.run(screen.screen([text], [detector], CTX, budget_s=1.0))
    assert detector.calls == 4  # "one" was evicted by "three"


def test_a_raising_detector_is_a_failure_and_is_counted() -> None:
    screen, registry = screener()
    result = asyncio.run(screen.screen(["x"], [fault("raise"), fault("find")], CTX, budget_s=1.0))
    assert result.failures == (DetectorFailure("fault_raise", FailureReason.ERROR),)
    assert result.findings == ((),)
    assert registry.get_sample_value(
        "guard_detector_errors_total", {"detector": "fault_raise", "reason": "error"}
    ) == 1


def test_a_detector_past_its_budget_is_a_timeout_failure_and_nothing_is_cached() -> None:
    screen, registry = screener()
    slow = fault("sleep", delay_s=5.0)
    result = asyncio.run(screen.screen(["x"], [slow], CTX, budget_s=0.05))
    assert result.failures == (DetectorFailure("fault_sleep", FailureReason.TIMEOUT),)
    again = asyncio.run(screen.screen(["x"], [slow], CTX, budget_s=0.05))
    assert again.failures and slow.calls == 2  # a failure is never cached as "nothing found"
    assert registry.get_sample_value(
        "guard_detector_errors_total", {"detector": "fault_sleep", "reason": "timeout"}
    ) == 2
