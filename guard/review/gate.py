"""`StoreReviewGate`: the `ReviewGate` the pipeline calls. Enqueue, wait for a decision, or time out.

The holding replica polls its item in the store (every `poll_interval_s`) and is woken at once when the
decision arrives through this process's API (`DecisionBus`), so a decision made on another replica reaches
the held caller within one poll interval. A sweeper expires items whose holder is gone (a restart, a
caller that hung up, a deferred item) so the timeout action applies to them too.

Fail closed: a store failure, a lost item or a shutdown while holding returns `ReviewOutcome.ERROR`, which
the pipeline answers with 503, never with an allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from guard.audit.base import ReviewActionEvent, ReviewAuditSink
from guard.errors import AuditError, ReviewError
from guard.metrics import GuardMetrics
from guard.review.base import HoldRequest, HoldResult, ReviewOutcome
from guard.review.items import ForwardRequest, ItemStatus, NewItem, ReviewItem, findings_for
from guard.review.limits import QUEUE_FULL, RATE_LIMITED, ClientBuckets, ReviewLimits, Shed, retry_after
from guard.review.notify import ReviewNotifier
from guard.review.store import ReviewStore
from guard.types import Action

log = logging.getLogger(__name__)

# A caller whose deferred item was approved re-sends the same request with this header; the guard then
# forwards it once (as approved, or as the reviewer edited it) instead of holding it again.
REVIEW_ID_HEADER = "x-guard-review-id"


class DecisionBus:
    """In-process wake-ups: the API tells the gate that an item it may be holding was decided."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def register(self, item_id: str) -> asyncio.Event:
        return self._events.setdefault(item_id, asyncio.Event())

    def unregister(self, item_id: str) -> None:
        self._events.pop(item_id, None)

    def notify(self, item_id: str) -> None:
        event = self._events.get(item_id)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        for event in self._events.values():
            event.set()


def result_of(item: ReviewItem) -> HoldResult:
    outcome = item.status.outcome
    if outcome is None:
        return HoldResult(ReviewOutcome.ERROR, item.id)
    return HoldResult(
        outcome=outcome, review_id=item.id, edited_texts=item.edited_texts, reviewer=item.reviewer,
        note=item.note,
    )


class StoreReviewGate:
    """Holds messages in a `ReviewStore`. Owns the sweeper task; lends the store from the factory."""

    def __init__(
        self, store: ReviewStore, metrics: GuardMetrics, bus: DecisionBus,
        notifier: ReviewNotifier | None = None, poll_interval_s: float = 0.25,
        sweep_interval_s: float = 1.0, clock: Callable[[], float] = time.time,
        limits: ReviewLimits | None = None, audit: ReviewAuditSink | None = None,
    ) -> None:
        self._limits = limits or ReviewLimits()
        self._buckets = ClientBuckets(
            self._limits.per_client_per_minute, self._limits.per_client_burst, self._limits.max_clients
        )
        self._audit = audit
        self._last_purge = 0.0
        self._store = store
        self._metrics = metrics
        self._bus = bus
        self._notifier = notifier
        self._poll_interval_s = poll_interval_s
        self._sweep_interval_s = sweep_interval_s
        self._clock = clock
        self._closing = False
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh_queue()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="review-sweeper")

    async def hold(self, request: HoldRequest) -> HoldResult:
        settings = request.decision.review
        if settings is None or self._closing:
            return HoldResult(ReviewOutcome.ERROR, "")
        resubmitted = next((v for k, v in request.headers if k.lower() == REVIEW_ID_HEADER), None)
        if resubmitted is not None:
            return await self._resume(resubmitted, request)
        now = self._clock()
        shed = await self._admit(request.client, now)
        if shed is not None:
            log.warning("review hold shed", extra={"code": shed.code, "route": request.route})
            return HoldResult(ReviewOutcome.SHED, "", shed=shed)
        item = NewItem(
            request_id=request.request_id, direction=request.direction, route=request.route,
            tier=request.tier, policy_version=request.decision.policy_version, texts=request.texts,
            findings=findings_for(request), created_at=now, deadline=now + settings.timeout_s,
            on_timeout=settings.on_timeout, deferred=settings.deferred,
            # Method and path only: a deferred approval is used by the caller re-sending its request, so the
            # raw body (other messages, system prompts) and headers (credentials) are not kept.
            forward=ForwardRequest(request.method, request.path),
        )
        try:
            await self._store.enqueue(item)
        except ReviewError as exc:
            log.error("review enqueue failed", extra={"error_type": type(exc).__name__})
            return HoldResult(ReviewOutcome.ERROR, "")
        log.info("review item enqueued", extra={"item_id": item.id, "tier": item.tier, "route": item.route})
        if self._notifier is not None:
            self._notifier.submit(item)
        await self.refresh_queue()
        if settings.deferred:
            return HoldResult(ReviewOutcome.DEFERRED, item.id)
        result = await self._wait(item)
        if result.outcome in (ReviewOutcome.APPROVE, ReviewOutcome.EDIT):
            # Used up now, by the caller that waited: the id can't carry the approval a second time.
            try:
                await self._store.consume(item.id, self._clock())
            except ReviewError as exc:
                log.error("review consume failed", extra={"item_id": item.id, "error_type": type(exc).__name__})
                return HoldResult(ReviewOutcome.ERROR, item.id)
        return result

    async def _admit(self, client: str, now: float) -> Shed | None:
        """A new held item for `client`: None when it may be added, else why not (429 or 503)."""
        wait = self._buckets.take(client or "unknown", now)
        if wait > 0:
            return Shed(429, retry_after(wait), RATE_LIMITED, "Too many messages held for review from this client; "
                        "retry later.")
        try:
            stats = await self._store.stats()
        except ReviewError:
            return None  # enqueue will meet the same store failure and fail closed there
        if stats.pending >= self._limits.max_pending:
            return Shed(503, retry_after(self._limits.queue_full_retry_s), QUEUE_FULL,
                        "The review queue is full; retry later.")
        return None

    async def _resume(self, item_id: str, request: HoldRequest) -> HoldResult:
        """A deferred item's request, sent again: forward it once if approved; never hold a second copy."""
        try:
            item = await self._store.get(item_id)
            same = (
                item.item.texts == request.texts and item.item.direction is request.direction
                and item.item.route == request.route
            )
            if not same:
                # An approval is for the texts a reviewer saw, not for whatever carries its id.
                log.warning("review id resent with other texts", extra={"item_id": item.id})
                return HoldResult(ReviewOutcome.ERROR, item.id)
            if not item.item.deferred:
                # A held (synchronous) review was answered to the caller that waited: nothing to resume.
                log.warning("review id of a held review resent", extra={"item_id": item.id})
                return HoldResult(ReviewOutcome.ERROR, item.id)
            if item.status is ItemStatus.PENDING:
                return HoldResult(ReviewOutcome.DEFERRED, item.id)
            if item.status in (ItemStatus.APPROVED, ItemStatus.EDITED):
                item, consumed = await self._store.consume(item.id, self._clock())
                if not consumed:
                    log.warning("review approval already used", extra={"item_id": item.id})
                    return HoldResult(ReviewOutcome.ERROR, item.id)
            return result_of(item)
        except ReviewError as exc:  # an unknown id included
            log.warning("review resume failed", extra={"error_type": type(exc).__name__})
            return HoldResult(ReviewOutcome.ERROR, "")

    async def _wait(self, item: NewItem) -> HoldResult:
        event = self._bus.register(item.id)
        try:
            while True:
                if self._closing:
                    return HoldResult(ReviewOutcome.ERROR, item.id)
                try:
                    current = await self._store.get(item.id)
                    if current.status is not ItemStatus.PENDING:
                        return result_of(current)
                    if self._clock() >= item.deadline:
                        current, changed = await self._store.expire(item.id, self._clock())
                        if changed:
                            self._metrics.observe_review_outcome("timeout", self._clock() - item.created_at)
                        await self.refresh_queue()
                        return result_of(current)
                except ReviewError as exc:
                    log.error("review wait failed", extra={"item_id": item.id, "error_type": type(exc).__name__})
                    return HoldResult(ReviewOutcome.ERROR, item.id)
                wait_s = max(0.0, min(self._poll_interval_s, item.deadline - self._clock()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), wait_s)
                event.clear()
        finally:
            self._bus.unregister(item.id)

    def wake(self, item_id: str) -> None:
        """A decision for `item_id` was just stored by this process: stop waiting for the next poll."""
        self._bus.notify(item_id)

    async def refresh_queue(self) -> None:
        try:
            stats = await self._store.stats()
        except ReviewError as exc:
            log.warning("review queue stats failed", extra={"error_type": type(exc).__name__})
            return
        age = 0.0 if stats.oldest_created_at is None else max(0.0, self._clock() - stats.oldest_created_at)
        self._metrics.set_review_queue(stats.pending, age)

    async def sweep(self) -> list[ReviewItem]:
        """Expire every pending item past its deadline (the timeout action then applies to it)."""
        now = self._clock()
        expired = await self._store.expire_due(now)
        for item in expired:
            self._metrics.observe_review_outcome("timeout", now - item.item.created_at)
            self._bus.notify(item.id)
            log.info("review item timed out", extra={"item_id": item.id, "action": item.item.on_timeout.value})
        await self.refresh_queue()
        return expired

    async def purge(self) -> int:
        """Delete items decided more than `retention_s` ago (their held text with them); each purge is an
        audit record. Returns how many were purged."""
        now = self._clock()
        self._last_purge = now
        purged = await self._store.purge_decided(now - self._limits.retention_s)
        for item_id, request_id in purged:
            if self._audit is not None:
                try:
                    await self._audit.append_review_action(ReviewActionEvent(
                        time=now, review_id=item_id, request_id=request_id, action="purge", reviewer="guard",
                        role="retention",
                    ))
                except (AuditError, OSError) as exc:
                    self._metrics.observe_audit_failure()
                    log.error("audit of a review purge failed", extra={"error_type": type(exc).__name__})
        if purged:
            log.info("review items purged", extra={"count": len(purged)})
        return len(purged)

    async def _sweep_forever(self) -> None:
        # Purging looks for work less often than expiry: retention is days in production, seconds in tests.
        purge_every_s = max(self._sweep_interval_s, min(60.0, self._limits.retention_s / 2))
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                await self.sweep()
                if self._clock() - self._last_purge >= purge_every_s:
                    await self.purge()
            except ReviewError as exc:
                log.error("review sweep failed", extra={"error_type": type(exc).__name__})

    async def release(self) -> None:
        """Stop holding: every waiting caller gets ERROR (a clear refusal); pending items stay pending."""
        self._closing = True
        self._bus.notify_all()

    async def aclose(self) -> None:
        await self.release()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._notifier is not None:
            await self._notifier.aclose()


def timeout_action(result: HoldResult, on_timeout: Action) -> Action:
    """What the pipeline enforces for a hold result: allow on approve/edit, block on deny/error."""
    if result.outcome in (ReviewOutcome.APPROVE, ReviewOutcome.EDIT):
        return Action.ALLOW
    if result.outcome is ReviewOutcome.TIMEOUT:
        return on_timeout
    return Action.BLOCK
