"""Golden decisions for the shipped policies: each `*.cases.yaml` pins findings → action, verdict and
categories through `guard.policy.decide`, so a policy edit that changes behaviour shows up in review."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from guard.policy.decide import decide
from guard.policy.load import load_policy
from guard.types import Action, Category, DetectorFailure, Direction, FailureReason, Finding, ScanResult, Span, Verdict

HERE = Path(__file__).resolve().parent
POLICIES = HERE.parent
_DEFAULT_DETECTOR = {Category.PII: "pii", Category.CUSTOM: "secrets"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseFinding(_Strict):
    category: Category
    label: str
    score: Annotated[float, Field(ge=0, le=1)]
    span: tuple[int, int] | None = (0, 5)
    detector: str | None = None
    text: Annotated[int, Field(ge=0)] = 0


class Expect(_Strict):
    action: Action
    verdict: Verdict
    categories: list[Category]
    would_have_been: Action | None = None
    review_timeout_s: float | None = None


class Case(_Strict):
    name: str
    direction: Direction
    tier: str
    findings: list[CaseFinding]
    failures: list[str] = Field(default_factory=list)
    expect: Expect


class CaseFile(_Strict):
    policy: str
    cases: list[Case] = Field(min_length=1)


def _cases() -> list[tuple[str, Case]]:
    out = []
    for path in sorted(HERE.glob("*.cases.yaml")):
        case_file = CaseFile.model_validate(yaml.safe_load(path.read_text()))
        out.extend((case_file.policy, case) for case in case_file.cases)
    return out


CASES = _cases()


def test_the_shipped_policies_have_golden_cases() -> None:
    covered = {policy for policy, _ in CASES}
    assert {"default.yaml", "strict.yaml", "monitor.yaml"} <= covered


@pytest.mark.parametrize(("policy_name", "case"), CASES, ids=[f"{p}: {c.name}" for p, c in CASES])
def test_golden_case(policy_name: str, case: Case) -> None:
    policy = load_policy(POLICIES / policy_name)
    assert case.tier in policy.tiers, f"case names tier {case.tier!r}, not in {policy_name}"
    texts = max((f.text for f in case.findings), default=0) + 1
    per_text: list[list[Finding]] = [[] for _ in range(texts)]
    for f in case.findings:
        span = Span(f.span[0], f.span[1], f.label) if f.span is not None else None
        detector = f.detector or _DEFAULT_DETECTOR[f.category]
        per_text[f.text].append(Finding(detector, "golden", f.category, f.score, span, f.label))
    failures = tuple(DetectorFailure(name, FailureReason.ERROR) for name in case.failures)
    result = ScanResult(findings=tuple(tuple(fs) for fs in per_text), failures=failures)

    decision = decide(policy, result, case.direction, case.tier)

    assert decision.action is case.expect.action
    assert decision.verdict is case.expect.verdict
    assert list(decision.categories) == case.expect.categories
    assert decision.would_have_been is case.expect.would_have_been
    assert decision.policy_version == policy.version and decision.tier == case.tier
    if case.expect.review_timeout_s is not None:
        assert decision.review is not None and decision.review.timeout_s == case.expect.review_timeout_s
