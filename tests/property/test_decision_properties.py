"""Decision properties (hypothesis), on the shipped policies and through the real proxy.

1. Adding a finding (or a detector failure) never weakens a decision: the action a policy would take for
   findings F is never stronger than for F plus one more, in every tier and direction of every shipped
   policy. "Would take" is the enforced action, or `would_have_been` where the policy only logs (shadow
   mode, `log` rows), so shadow policies are held to the same promise.
2. The verdict on a streamed answer does not depend on how the upstream's bytes are chunked: the same SSE
   body replayed by a real loopback upstream in hypothesis-chosen chunkings, through a real `guard serve`,
   gives the same `x-guard-decision`, the same released text and never releases the planted marker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from guard.policy.decide import decide
from guard.policy.model import PolicyFile
from guard.types import (
    Action,
    Category,
    Decision,
    DetectorFailure,
    Direction,
    FailureReason,
    Finding,
    ScanResult,
    Span,
)
from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy, write_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode, sse_stream
from tests.fakes.guard_process import GuardProcess

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
SHIPPED = ("default.yaml", "strict.yaml", "monitor.yaml")


def _load(name: str) -> PolicyFile:
    return PolicyFile.model_validate(yaml.safe_load((POLICY_DIR / name).read_text()))


def _policies() -> list[PolicyFile]:
    return [_load(name) for name in SHIPPED]


def _would(decision: Decision) -> Action:
    return decision.would_have_been if decision.would_have_been is not None else decision.action


def _labels(policy: PolicyFile) -> list[str]:
    labels = {"", "MARKER", "EMAIL_ADDRESS", "PERSON", "CREDIT_CARD", "US_SSN"}
    for tier in policy.tiers.values():
        for direction in Direction:
            for table in tier.table(direction).values():
                labels.update(table.by_label)
    return sorted(labels)


@st.composite
def findings(draw: st.DrawFn, labels: list[str]) -> Finding:
    category = draw(st.sampled_from(list(Category)))
    score = draw(st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
    label = draw(st.sampled_from(labels))
    has_span = draw(st.booleans())
    span = None
    if has_span:
        start = draw(st.integers(min_value=0, max_value=200))
        span = Span(start, start + draw(st.integers(min_value=1, max_value=40)), label or "ENTITY")
    return Finding(
        detector=draw(st.sampled_from(["pii", "rules", "classifier", "claims"])),
        detector_version="1",
        category=category,
        score=score,
        span=span,
        label=label,
    )


def _scan(per_text: list[list[Finding]], failures: tuple[DetectorFailure, ...] = ()) -> ScanResult:
    return ScanResult(findings=tuple(tuple(f) for f in per_text), failures=failures)


def test_the_shipped_policies_are_all_checked() -> None:
    # The property below runs over these files; a missing one must fail here, not shrink the test silently.
    for name in SHIPPED:
        assert (POLICY_DIR / name).is_file(), f"shipped policy {name} is missing"


# Every action on one category, so hypothesis can combine any two of them; `by_label` overrides too.
_ALL_ACTIONS = PolicyFile.model_validate(
    {
        "name": "every_action",
        "version": "1",
        "detectors": [{"kind": "rules", "name": "rules", "rules": [
            {"name": "r", "category": "pii", "keywords": ["x"]},
            {"name": "s", "category": "prompt_injection", "keywords": ["y"]},
        ]}],
        "default_tier": "t",
        "tiers": {"t": {
            "input": {
                "pii": {
                    "low": {"min_score": 0.2, "action": "log"},
                    "medium": {"min_score": 0.5, "action": "redact"},
                    "high": {"min_score": 0.9, "action": "review"},
                    "by_label": {"CREDIT_CARD": {"low": {"min_score": 0.3, "action": "block"}}},
                },
                "prompt_injection": {"medium": {"min_score": 0.5, "action": "review"}},
            },
            "output": {"pii": {"medium": {"min_score": 0.5, "action": "redact"}}},
        }},
    }
)
_SPANLESS_REDACT = Finding("pii", "1", Category.PII, 0.6, None, "")
_REVIEW = Finding("classifier", "1", Category.PROMPT_INJECTION, 0.7, None, "")


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.lists(findings(_labels(_ALL_ACTIONS)), max_size=4), min_size=1, max_size=3),
    extra=findings(_labels(_ALL_ACTIONS)),
    index=st.integers(min_value=0, max_value=2),
    direction=st.sampled_from(list(Direction)),
)
# Regression: a span-less finding on a `redact` row fails closed to `block`; a further `review`-strength
# finding must not turn that block back into a review.
@example(texts=[[_SPANLESS_REDACT]], extra=_REVIEW, index=0, direction=Direction.INPUT)
def test_adding_a_finding_never_weakens_any_action(
    texts: list[list[Finding]], extra: Finding, index: int, direction: Direction
) -> None:
    _check(_ALL_ACTIONS, "t", direction, texts, extra, index % len(texts))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_adding_a_finding_never_weakens_a_shipped_policy(data: st.DataObject) -> None:
    for policy in _policies():
        labels = _labels(policy)
        for tier_name in policy.tiers:
            for direction in Direction:
                texts = data.draw(st.lists(st.lists(findings(labels), max_size=4), min_size=1, max_size=3))
                extra = data.draw(findings(labels))
                index = data.draw(st.integers(min_value=0, max_value=len(texts) - 1))
                _check(policy, tier_name, direction, texts, extra, index)


def _check(
    policy: PolicyFile,
    tier: str,
    direction: Direction,
    texts: list[list[Finding]],
    extra: Finding,
    index: int,
) -> None:
    before = decide(policy, _scan(texts), direction, tier)
    more = [list(t) for t in texts]
    more[index].append(extra)
    after = decide(policy, _scan(more), direction, tier)
    assert _would(after).strength >= _would(before).strength, (
        f"{policy.name}/{tier}/{direction.value}: adding {extra} weakened {_would(before)} to {_would(after)}"
    )
    # A detector failure on top is never weaker either.
    failed = decide(policy, _scan(more, (DetectorFailure("pii", FailureReason.ERROR),)), direction, tier)
    assert _would(failed).strength >= _would(after).strength


# --- 2. the verdict on a stream does not depend on its chunking (through a real `guard serve`) ---------

_PIECES = ["Dear ", "caf\u00e9 ", "owner, ", "your code is ", MARKER[:7], MARKER[7:], " \U0001f600 and ",
           "that is all ", "for now."]
_STREAM = sse_stream(_PIECES)


def _released_text(raw: bytes) -> tuple[str, list[str]]:
    """The content the caller received, and every finish_reason, from the guard's SSE answer."""
    text, finishes = [], []
    for block in raw.split(b"\n\n"):
        for line in block.split(b"\n"):
            if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                continue
            payload = json.loads(line[5:])
            for choice in payload.get("choices", []):
                text.append((choice.get("delta") or {}).get("content") or "")
                if choice.get("finish_reason"):
                    finishes.append(choice["finish_reason"])
    return "".join(text), finishes


def _split(data: bytes, cuts: list[int]) -> tuple[bytes, ...]:
    points = sorted({c % len(data) for c in cuts} | {0, len(data)})
    return tuple(data[a:b] for a, b in zip(points, points[1:]) if b > a)


@pytest.fixture(scope="module")
def stream_guards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultServer, dict[str, GuardProcess]]]:
    workdir = tmp_path_factory.mktemp("chunking")
    with FaultServer(Behaviour(Mode.SCRIPTED, chunks=(_STREAM,))) as upstream:
        guards = {}
        try:
            for tier in ("limited", "high"):
                policy = fault_policy(default_tier=tier)
                # Small windows so the stream is screened in many steps and released as it goes.
                policy["tiers"][tier]["stream"] = {"window_chars": 12, "overlap_chars": 24}
                path = write_policy(workdir / f"{tier}.yaml", policy)
                guards[tier] = GuardProcess(upstream.url, path, workdir).start()
            yield upstream, guards
        finally:
            for guard in guards.values():
                guard.stop()


_REFERENCE: dict[str, tuple[str, bytes, str, list[str]]] = {}  # the one-chunk answer, per tier


def _through(guard: GuardProcess, upstream: FaultServer, chunks: tuple[bytes, ...]) -> tuple[str, bytes, str, list[str]]:
    upstream.behaviour = Behaviour(Mode.SCRIPTED, chunks=chunks, chunk_pause_s=0.002)
    with httpx.stream("POST", guard.url + CHAT, json=chat("tell me", stream=True), timeout=20) as response:
        raw = b"".join(response.iter_raw())
        decision = response.headers.get("x-guard-decision", "")
    text, finishes = _released_text(raw)
    return decision, raw, text, finishes


@pytest.mark.parametrize("tier", ["limited", "high"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(_STREAM) - 1), max_size=40))
@example(cuts=[])  # one chunk
@example(cuts=list(range(1, len(_STREAM))))  # one byte at a time: splits every UTF-8 sequence and field
def test_stream_verdict_does_not_depend_on_chunking(
    stream_guards: tuple[FaultServer, dict[str, GuardProcess]], tier: str, cuts: list[int]
) -> None:
    upstream, guards = stream_guards
    guard = guards[tier]
    if tier not in _REFERENCE:
        _REFERENCE[tier] = _through(guard, upstream, (_STREAM,))
    reference = _REFERENCE[tier]
    decision, raw, text, finishes = _through(guard, upstream, _split(_STREAM, cuts))
    assert MARKER.encode() not in raw
    assert (decision, text, finishes) == (reference[0], reference[2], reference[3])
    if tier == "high":
        assert finishes == ["content_filter"]
    else:
        assert "<MARKER>" in text and finishes == ["stop"]
