"""Decision events for the audit tests, carrying planted personal data that must never reach the log."""

from __future__ import annotations

import time

from guard.audit.base import DecisionEvent
from guard.types import Action, Band, Category, Decision, Direction, Finding, Span, Trigger

CARD = "5500 0000 0000 0004"
EMAIL = "quillon.vex@example.org"


def event(i: int, marker: str = "PIIMARK-0000", action: Action = Action.ALLOW) -> DecisionEvent:
    text = f"mail {EMAIL} card {CARD} {marker} #{i}"
    card = Finding("pii", "presidio-2.2", Category.PII, 0.97,
                   Span(text.index(CARD), text.index(CARD) + len(CARD), "CREDIT_CARD"), "CREDIT_CARD",
                   f"looks like {CARD}")  # a reason that (wrongly) quotes data: the log must drop it
    decision = Decision(
        action=action, direction=Direction.INPUT, tier="high", policy_version="2026.11.1",
        triggers=(Trigger(card, 0, Band.HIGH, 0.9, action),) if action is not Action.ALLOW else (),
        findings=(card,), categories=(Category.PII,),
    )
    return DecisionEvent(
        request_id=f"req-{i}", time=time.time(), route="chat", decision=decision,
        detector_versions=(("pii", "presidio-2.2"),), texts=(text,),
    )
