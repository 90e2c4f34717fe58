"""One screening step shared by every place the pipeline screens: run the tier's detectors for a direction,
decide, count, and (for `review`) hold for a human. Returns what to do, not how to answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry import trace

from guard.actions.redact import redact, spans_to_redact
from guard.audit.base import AuditSink, DecisionEvent, TextDigestSource
from guard.errors import GuardError
from guard.metrics import GuardMetrics
from guard.policy.decide import decide
from guard.proxy.admission import Admission
from guard.proxy.answer_caps import DigestFactory
from guard.proxy.runtime import ActivePolicy
from guard.review.base import HoldRequest, ReviewGate, ReviewOutcome
from guard.review.limits import Shed
from guard.screening import Screener
from guard.tracing import tracer
from guard.types import Action, Decision, Direction, ScanContext, Verdict


def _no_digest() -> None:
    return None


# One line per decision (route, tier, direction, verdict, categories; never text), on a logger of its own so
# an operator can turn it off (`guard serve --no-decision-log`) without losing the rest.
decision_log = logging.getLogger("guard.decisions")


def log_decision(ctx: StepContext, decision: Decision) -> None:
    """The decision line, and the same facts on the current (exchange) span."""
    categories = "+".join(sorted({c.value for c in decision.categories}))
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(f"guard.{ctx.direction.value}.verdict", decision.verdict.value)
        span.set_attribute(f"guard.{ctx.direction.value}.action", decision.action.value)
        span.set_attribute(f"guard.{ctx.direction.value}.categories", categories)
    decision_log.info(
        "decision",
        extra={
            "route": ctx.route,
            "tier": ctx.tier,
            "direction": ctx.direction,
            "verdict": decision.verdict,
            "action": decision.action,
            # Closed-set names joined with "+" (a log field is a scalar of a safe shape).
            "categories": categories,
        },
    )


class AuditWriteError(GuardError):
    """The audit sink could not record a decision: the request is refused (503)."""


class ReviewShedError(GuardError):
    """A review hold was shed (guard.review.limits): the request is answered 429/503 with Retry-After."""

    def __init__(self, shed: Shed) -> None:
        super().__init__(shed.code)
        self.shed = shed


@dataclass(frozen=True, slots=True)
class Resolution:
    """The enforced outcome of a screened message.

    `forward`: send it on (with `replacements` by text position if any); otherwise refuse it. `verdict` is
    what `x-guard-decision` reports; `message` explains a refusal; `deferred_id` is set when a deferred
    review answered at once.
    """

    decision: Decision
    verdict: Verdict
    forward: bool
    replacements: dict[int, str]
    message: str = ""
    deferred_id: str = ""
    shed: Shed | None = None  # an input hold that was shed: answered 429/503, not as a verdict


@dataclass(frozen=True, slots=True)
class StepContext:
    request_id: str
    route: str
    tier: str
    direction: Direction
    method: str = "POST"
    path: str = ""
    review_id: str = ""  # `x-guard-review-id`: a deferred review's request, sent again (guard.review.gate)
    client: str = ""  # the TCP peer's address (the review hold rate's key)


REVIEW_NOT_CONFIGURED = (
    "This message needs human review under the guard's policy, but review is not configured, so it was refused."
)
_BLOCKED = "This message was blocked by the guard's policy."
_DENIED = "A reviewer declined this message."
_REVIEW_TIMEOUT = "This message was held for review and nobody decided in time."
_REVIEW_ERROR = "The review could not be completed, so the message was refused."


class Stepper:
    """Screens, decides, reviews and audits one message. Owns nothing; everything is lent by the app."""

    def __init__(
        self,
        screener: Screener,
        metrics: GuardMetrics,
        review_gate: ReviewGate | None,
        audit_sink: AuditSink | None,
        admission: Admission | None = None,
    ) -> None:
        self._admission = admission
        self._screener = screener
        self._metrics = metrics
        self._gate = review_gate
        self._audit = audit_sink

    async def decide(
        self, active: ActivePolicy, texts: Sequence[str], ctx: StepContext, roles: Sequence[str] = ()
    ) -> Decision:
        detectors = active.detectors_for(ctx.tier, ctx.direction)
        if not detectors:
            return active.allow[(ctx.tier, ctx.direction)]
        scan = ScanContext(ctx.direction, ctx.tier, ctx.route, ctx.request_id, roles=tuple(roles))
        limits = active.policy.limits
        if self._admission is None:
            result = await self._screener.screen(texts, detectors, scan, limits.detector_budget_s)
        else:
            # Admitted first (or shed with OverloadedError); the detector budget starts after the wait.
            async with self._admission.admit(limits.admission, sum(map(len, texts)), ctx.direction):
                result = await self._screener.screen(texts, detectors, scan, limits.detector_budget_s)
        with tracer.start_as_current_span("guard.decide") as span:
            decision = decide(active.policy, result, ctx.direction, ctx.tier)
            span.set_attribute("guard.action", decision.action.value)
            span.set_attribute("guard.failures", len(result.failures))
        if result.failures:
            self._metrics.observe_fail_mode(
                ctx.direction, failed_open=decision.action not in (Action.BLOCK, Action.REVIEW)
            )
        return decision

    async def resolve(
        self, active: ActivePolicy, texts: Sequence[str], ctx: StepContext, decision: Decision, body: bytes = b""
    ) -> Resolution:
        """Act on `decision`: redactions, a review hold, or a refusal. Audits and counts it."""
        reviewer = outcome_name = ""
        action = decision.action
        if action is Action.REDACT:
            replacements = {}
            for index, text in enumerate(texts):
                spans = spans_to_redact(decision, index)
                if spans:
                    replacements[index] = redact(text, spans)
            resolution = Resolution(decision, Verdict.REDACT, True, replacements)
        elif action is Action.BLOCK:
            resolution = Resolution(decision, Verdict.BLOCK, False, {}, _BLOCKED)
        elif action is Action.REVIEW:
            resolution, reviewer, outcome_name = await self.hold(texts, ctx, decision, body)
        else:
            resolution = Resolution(decision, Verdict.ALLOW, True, {})
        await self.audit(active, texts, ctx, decision, reviewer, outcome_name)
        if resolution.shed is not None:
            raise ReviewShedError(resolution.shed)
        self._metrics.observe_decision(ctx.direction, ctx.route, resolution.verdict, decision.would_have_been)
        return resolution

    async def audit(
        self,
        active: ActivePolicy,
        texts: Sequence[str],
        ctx: StepContext,
        decision: Decision,
        reviewer: str = "",
        outcome: str = "",
        text_hmacs: tuple[str, ...] | None = None,
    ) -> None:
        log_decision(ctx, decision)
        self._metrics.observe_tier_action(ctx.direction, ctx.tier, decision.action)
        if self._audit is None:
            return
        event = DecisionEvent(
            request_id=ctx.request_id,
            time=time.time(),
            route=ctx.route,
            decision=decision,
            detector_versions=active.detector_versions,
            texts=tuple(texts),
            reviewer=reviewer,
            review_outcome=outcome,
            text_hmacs=text_hmacs,
        )
        try:
            await self._audit.append(event)
        except (GuardError, OSError) as exc:
            # Acting unrecorded is worse than not acting: the caller gets a 503 (guard/audit/base.py).
            self._metrics.observe_audit_failure()
            raise AuditWriteError("audit append failed") from exc

    def text_digest_factory(self) -> DigestFactory | None:
        """How a streamed answer is digested for the audit record as it passes (None: keep its text;
        the sink computes the HMAC itself). No sink: nothing is recorded, so nothing is kept."""
        if self._audit is None:
            return _no_digest
        if isinstance(self._audit, TextDigestSource):
            return self._audit.text_digest
        return None

    async def hold(
        self, texts: Sequence[str], ctx: StepContext, decision: Decision, body: bytes
    ) -> tuple[Resolution, str, str]:
        """Hold `texts` for a reviewer (fail closed when no gate is configured): the resolution, the
        reviewer's identity and the outcome's name, for the audit record."""
        if self._gate is None:
            return Resolution(decision, Verdict.BLOCK, False, {}, REVIEW_NOT_CONFIGURED), "", "not_configured"
        with tracer.start_as_current_span("guard.review.hold") as span:
            result = await self._gate.hold(
                HoldRequest(
                    request_id=ctx.request_id,
                    direction=ctx.direction,
                    route=ctx.route,
                    tier=ctx.tier,
                    decision=decision,
                    texts=tuple(texts),
                    method=ctx.method,
                    path=ctx.path,
                    body=body,
                    headers=(("x-guard-review-id", ctx.review_id),) if ctx.review_id else (),
                    client=ctx.client,
                )
            )
            span.set_attribute("guard.review.outcome", result.outcome.value)
        outcome = result.outcome
        if outcome is ReviewOutcome.APPROVE:
            resolution = Resolution(decision, Verdict.REVIEW, True, {})
        elif outcome is ReviewOutcome.EDIT:
            resolution = Resolution(decision, Verdict.REVIEW, True, dict(result.edited_texts or {}))
        elif outcome is ReviewOutcome.DEFERRED:
            resolution = Resolution(decision, Verdict.REVIEW, False, {}, deferred_id=result.review_id)
        elif outcome is ReviewOutcome.TIMEOUT and decision.review is not None and (
            decision.review.on_timeout is Action.ALLOW
        ):
            resolution = Resolution(decision, Verdict.REVIEW, True, {})
        elif outcome is ReviewOutcome.TIMEOUT:
            resolution = Resolution(decision, Verdict.BLOCK, False, {}, _REVIEW_TIMEOUT)
        elif outcome is ReviewOutcome.DENY:
            resolution = Resolution(decision, Verdict.BLOCK, False, {}, _DENIED)
        elif outcome is ReviewOutcome.SHED and result.shed is not None:
            # Input: shed with 429/503 (the caller may retry). An answer is already paid for and may be
            # streaming, so it is withheld as a refusal instead: never released unreviewed.
            shed = result.shed if ctx.direction is Direction.INPUT else None
            resolution = Resolution(decision, Verdict.BLOCK, False, {}, result.shed.message, shed=shed)
        else:
            # The store failed or the hold was cut short: refused, and counted so the fault is visible.
            self._metrics.observe_review_outcome("error", 0.0)
            resolution = Resolution(decision, Verdict.BLOCK, False, {}, _REVIEW_ERROR)
        return resolution, result.reviewer, outcome.value
