"""RulesDetector: regexes and word-bounded, case-insensitive keywords; spans and labels from config."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from guard.detectors.base import Detector, DetectorResources
from guard.detectors.registry import build_detector
from guard.detectors.rules import RulesConfig, RulesDetector
from guard.errors import DetectorError
from guard.types import Category, Direction, Finding, ScanContext

CTX = ScanContext(direction=Direction.INPUT, tier="limited")

CONFIG = RulesConfig.model_validate(
    {
        "kind": "rules",
        "name": "house",
        "rules": [
            {"name": "codename", "keywords": ["Bluebird", "project  nightjar"], "score": 0.9},
            {"name": "aws_key", "patterns": [r"\bAKIA[0-9A-Z]{16}\b"], "category": "pii"},
        ],
    }
)


def _detect(detector: RulesDetector, texts: list[str]) -> list[list[Finding]]:
    async def go() -> list[list[Finding]]:
        with ThreadPoolExecutor(1) as executor:
            await detector.load(DetectorResources(executor, 1))
            found = await detector.detect(texts, CTX)
            await detector.aclose()
            return [list(f) for f in found]

    return asyncio.run(go())


def test_built_through_the_registry_and_a_detector() -> None:
    detector = build_detector(CONFIG)
    assert isinstance(detector, RulesDetector)
    assert isinstance(detector, Detector)
    assert detector.categories == frozenset({Category.CUSTOM, Category.PII})


def test_keywords_are_case_insensitive_with_word_boundaries() -> None:
    texts = [
        "the BLUEBIRD launch and Project Nightjar",
        "bluebirds and unbluebird do not count",
        "nothing here",
    ]
    found = _detect(RulesDetector(CONFIG), texts)
    spans = [(texts[0][f.span.start : f.span.end], f.label, f.score) for f in found[0] if f.span]
    assert spans == [("BLUEBIRD", "codename", 0.9), ("Project Nightjar", "codename", 0.9)]
    assert found[1] == [] and found[2] == []


def test_regex_findings_carry_span_category_and_label() -> None:
    text = "key=AKIAIOSFODNN7EXAMPLE;"
    (finding,) = _detect(RulesDetector(CONFIG), [text])[0]
    assert finding.category is Category.PII
    assert finding.label == "aws_key"
    assert finding.span is not None
    assert (finding.span.start, finding.span.end, finding.span.entity_type) == (4, 24, "AWS_KEY")
    assert finding.detector == "house" and finding.detector_version == RulesDetector(CONFIG).version
    assert "AKIA" not in finding.reason


def test_version_changes_with_the_rules() -> None:
    other = RulesConfig.model_validate({"kind": "rules", "name": "house", "rules": [{"name": "x", "keywords": ["y"]}]})
    assert RulesDetector(CONFIG).version != RulesDetector(other).version


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "bad", "patterns": ["AKIA[0-9"]}, "patterns[0] is not a valid regular expression"),
        ({"name": "empty", "patterns": ["x*"]}, "matches the empty string"),
        ({"name": "none"}, "has neither patterns nor keywords"),
        ({"name": "blank", "keywords": ["  "]}, "keywords[0] is blank"),
    ],
)
def test_invalid_rules_are_refused_at_validation(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        RulesConfig.model_validate({"kind": "rules", "name": "r", "rules": [rule]})


def test_detect_before_load_raises() -> None:
    with pytest.raises(DetectorError):
        asyncio.run(RulesDetector(CONFIG).detect(["x"], CTX))
