"""What the review store holds: an item (the held texts, their findings, the deadline) and its decision.

An item is created `pending` and moves exactly once to a final status: `approved`, `denied`, `edited`
(a reviewer's decision) or `timed_out` (nobody decided before the deadline). Stores enforce the "exactly
once" with a conditional update, so two reviewers racing on one item get one success and one 409.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum

from guard.review.base import HoldRequest, ReviewOutcome
from guard.types import Action, Direction


class ItemStatus(str, Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EDITED = "edited"
    TIMED_OUT = "timed_out"

    @property
    def outcome(self) -> ReviewOutcome | None:
        return _OUTCOMES.get(self)


_OUTCOMES = {
    ItemStatus.APPROVED: ReviewOutcome.APPROVE,
    ItemStatus.DENIED: ReviewOutcome.DENY,
    ItemStatus.EDITED: ReviewOutcome.EDIT,
    ItemStatus.TIMED_OUT: ReviewOutcome.TIMEOUT,
}


class ReviewerOutcome(str, Enum):
    """What a reviewer may decide (the API's `outcome` field)."""

    APPROVE = "approve"
    DENY = "deny"
    EDIT = "edit"

    @property
    def status(self) -> ItemStatus:
        return {
            ReviewerOutcome.APPROVE: ItemStatus.APPROVED,
            ReviewerOutcome.DENY: ItemStatus.DENIED,
            ReviewerOutcome.EDIT: ItemStatus.EDITED,
        }[self]


@dataclass(frozen=True, slots=True)
class ItemFinding:
    """A finding as the reviewer sees it: where it is, what found it, and why it counted."""

    text_index: int
    detector: str
    detector_version: str
    category: str
    label: str
    score: float
    threshold: float | None  # None: the finding reached no band of the table
    band: str
    action: str
    start: int | None
    end: int | None
    entity_type: str
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "text_index": self.text_index, "detector": self.detector,
            "detector_version": self.detector_version, "category": self.category, "label": self.label,
            "score": self.score, "threshold": self.threshold, "band": self.band, "action": self.action,
            "start": self.start, "end": self.end, "entity_type": self.entity_type, "reason": self.reason,
        }

    @staticmethod
    def from_json(raw: dict[str, object]) -> ItemFinding:
        def opt_int(v: object) -> int | None:
            return None if v is None else int(str(v))

        threshold = raw.get("threshold")
        return ItemFinding(
            text_index=int(str(raw["text_index"])), detector=str(raw["detector"]),
            detector_version=str(raw["detector_version"]), category=str(raw["category"]),
            label=str(raw["label"]), score=float(str(raw["score"])),
            threshold=None if threshold is None else float(str(threshold)), band=str(raw["band"]),
            action=str(raw["action"]), start=opt_int(raw.get("start")), end=opt_int(raw.get("end")),
            entity_type=str(raw["entity_type"]), reason=str(raw["reason"]),
        )


@dataclass(frozen=True, slots=True)
class ForwardRequest:
    """The request to replay upstream once a deferred item is approved."""

    method: str = "POST"
    path: str = ""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class NewItem:
    request_id: str
    direction: Direction
    route: str
    tier: str
    policy_version: str
    texts: tuple[str, ...]
    findings: tuple[ItemFinding, ...]
    created_at: float
    deadline: float
    on_timeout: Action
    deferred: bool = False
    forward: ForwardRequest = field(default_factory=ForwardRequest)
    id: str = field(default_factory=lambda: secrets.token_hex(16))  # unguessable: it is also a capability


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """An item as stored, with its decision once there is one."""

    item: NewItem
    status: ItemStatus = ItemStatus.PENDING
    reviewer: str = ""
    note: str = ""
    edited_texts: dict[int, str] | None = None
    decided_at: float | None = None
    consumed_at: float | None = None  # deferred items: when the approved request was forwarded

    @property
    def id(self) -> str:
        return self.item.id


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: int
    oldest_created_at: float | None


def findings_for(request: HoldRequest) -> tuple[ItemFinding, ...]:
    """Every finding of the decision, with the threshold and band of the trigger it made, if any.

    A finding's text comes from its trigger, else from `request.findings_per_text`, else (one text only)
    is text 0; otherwise it is -1: shown to reviewers, never used to place a mask in the wrong text.
    """
    index_of: dict[int, int] = {}
    for text_index, per_text in enumerate(request.findings_per_text):
        for finding in per_text:
            index_of[id(finding)] = text_index
    triggers = {id(t.finding): t for t in request.decision.triggers}
    for trigger in request.decision.triggers:
        index_of[id(trigger.finding)] = trigger.text_index
    ordered = [t.finding for t in request.decision.triggers] + list(request.decision.findings)
    ordered += [f for per_text in request.findings_per_text for f in per_text]
    out: list[ItemFinding] = []
    seen: set[int] = set()
    for finding in ordered:
        if id(finding) in seen:
            continue
        seen.add(id(finding))
        found = triggers.get(id(finding))
        span = finding.span
        default_index = 0 if len(request.texts) == 1 else -1
        out.append(ItemFinding(
            text_index=index_of.get(id(finding), default_index),
            detector=finding.detector, detector_version=finding.detector_version,
            category=finding.category.value, label=finding.label, score=finding.score,
            threshold=None if found is None else found.threshold,
            band="" if found is None else found.band.value,
            action="" if found is None else found.action.value,
            start=None if span is None else span.start, end=None if span is None else span.end,
            entity_type="" if span is None else span.entity_type, reason=finding.reason,
        ))
    return tuple(out)
