"""The audit extension point: every decision, allow included, is appended to a tamper-evident log.

The pipeline calls `AuditSink.append(event)` once per decided message, after the decision and before the
answer leaves the guard. A sink that cannot write raises `AuditError`; the pipeline then refuses the
request (503) rather than act unrecorded. Events carry no raw text: the sink stores at most a keyed HMAC.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from guard.types import Decision


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    request_id: str
    time: float  # unix seconds
    route: str
    decision: Decision
    detector_versions: tuple[tuple[str, str], ...]  # (detector name, version)
    texts: tuple[str, ...]  # for the sink's keyed HMAC only; never written as is
    reviewer: str = ""
    review_outcome: str = ""
    # Precomputed keyed HMACs of the texts (a streamed answer's, digested as it passed; `texts` is then
    # empty): the sink writes these instead of computing them (guard.proxy.answer_caps).
    text_hmacs: tuple[str, ...] | None = None


class AuditSink(Protocol):
    async def append(self, event: DecisionEvent) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TextDigestSource(Protocol):
    """A sink whose text HMAC can be computed incrementally: a fresh `hmac` object keyed as the sink's
    (None when the sink has no key), so a streamed answer is digested as it passes, never kept whole."""

    def text_digest(self) -> hmac.HMAC | None: ...


@dataclass(frozen=True, slots=True)
class ReviewActionEvent:
    """A reviewer's act on a review item: a decision, or an admin unmasking an item's personal data."""

    time: float
    review_id: str
    request_id: str
    action: str  # "decide" | "unmask"
    reviewer: str
    role: str
    outcome: str = ""  # approve | deny | edit, for "decide"


class ReviewAuditSink(AuditSink, Protocol):
    """The sinks in `guard.audit` also record reviewers' acts (the review API needs this one)."""

    async def append_review_action(self, event: ReviewActionEvent) -> None: ...
