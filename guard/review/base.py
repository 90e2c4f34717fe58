"""The human-review extension points the proxy pipeline calls.

`ReviewGate.hold` is called by the pipeline when a decision's action is `review`: it enqueues the item,
waits up to the tier's timeout for a reviewer, and returns the outcome. The pipeline then forwards
(approve/edit, with the edited texts), refuses (deny), or applies the timeout action. A gate never raises
for a missing decision: a store failure returns `ReviewOutcome.ERROR`, which the pipeline fails closed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from guard.review.limits import Shed
from guard.types import Decision, Direction, Finding


class ReviewOutcome(str, Enum):
    APPROVE = "approve"
    DENY = "deny"
    EDIT = "edit"
    TIMEOUT = "timeout"
    ERROR = "error"  # the store failed or the item was lost: fail closed
    DEFERRED = "deferred"  # answered at once with a review id; the result is fetched later
    SHED = "shed"  # not held: the client's rate or the queue's size is over its limit (429/503, guard.review.limits)


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """Everything a reviewer needs to decide, and nothing the pipeline can't rebuild. `texts` is the held
    content (kept in the review store only, masked for reviewers without the admin role)."""

    request_id: str
    direction: Direction
    route: str
    tier: str
    decision: Decision
    texts: tuple[str, ...]
    # For deferred mode: what the guard must forward on approval (the caller is not waiting).
    method: str = "POST"
    path: str = ""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default=())
    # Optional: the scan's findings per text (same order as `texts`), so untriggered PII findings can be
    # masked in the right text. Triggers carry their own text index; this adds the rest.
    findings_per_text: tuple[tuple[Finding, ...], ...] = field(default=())
    client: str = ""  # the TCP peer's address: the key of the per-client hold rate


@dataclass(frozen=True, slots=True)
class HoldResult:
    outcome: ReviewOutcome
    review_id: str
    edited_texts: dict[int, str] | None = None
    reviewer: str = ""
    note: str = ""
    shed: Shed | None = None  # set with ReviewOutcome.SHED


class ReviewGate(Protocol):
    async def hold(self, request: HoldRequest) -> HoldResult: ...

    async def release(self) -> None:
        """Stop holding (a draining guard whose drain time is up): every waiting `hold` returns ERROR at
        once, so its caller gets an answer rather than a cut connection; the items stay pending."""
