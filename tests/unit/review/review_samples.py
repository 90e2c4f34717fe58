"""Sample held messages for the review tests: a prompt with a (test) credit-card number and a name."""

from __future__ import annotations

from guard.review.base import HoldRequest
from guard.types import (
    Action, Band, Category, Decision, Direction, Finding, ReviewSettings, Span, Trigger,
)

CARD = "4111 1111 1111 1111"
NAME = "Zebulon Quaxley"


def prompt(marker: str = "") -> str:
    return f"Please charge {CARD} for {NAME} today {marker}".strip()


def card_request(
    request_id: str = "req-1", timeout_s: float = 30.0, on_timeout: Action = Action.BLOCK,
    deferred: bool = False, text: str | None = None,
) -> HoldRequest:
    text = prompt() if text is None else text
    start = text.index(CARD)
    card = Finding("pii", "presidio-2.2", Category.PII, 1.0, Span(start, start + len(CARD), "CREDIT_CARD"),
                   "CREDIT_CARD", "credit card number (Luhn valid)")
    name_start = text.find(NAME)
    name = Finding("pii", "presidio-2.2", Category.PII, 0.85,
                   Span(name_start, name_start + len(NAME), "PERSON"), "PERSON", "a person's name")
    trigger = Trigger(card, 0, Band.MEDIUM, 0.5, Action.REVIEW)
    decision = Decision(
        action=Action.REVIEW, direction=Direction.INPUT, tier="limited", policy_version="2026.11.1",
        triggers=(trigger,), findings=(card, name), review=ReviewSettings(timeout_s, on_timeout, deferred),
        categories=(Category.PII,),
    )
    return HoldRequest(
        request_id=request_id, direction=Direction.INPUT, route="chat", tier="limited", decision=decision,
        texts=(text,), path="/v1/chat/completions", body=b'{"messages": []}',
    )
