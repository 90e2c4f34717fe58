"""The decision: findings × tier → action. Pure: no I/O, no clocks, so golden tests pin it exactly.

For each finding, the tier's table for its direction and category (or the finding's label within it)
gives the strongest band whose `min_score` the score reaches; that band's action is the finding's. The
message's action is the strongest of its findings' actions. Detector failures apply the tier's
`on_detector_error`. In shadow mode the enforced action is `allow` and the strongest one is recorded as
`would_have_been`; `log` rows are recorded the same way in any mode.
"""

from __future__ import annotations

from collections.abc import Sequence

from guard.policy.model import PolicyFile, TierPolicy
from guard.types import (
    Action,
    Decision,
    Direction,
    Finding,
    ReviewSettings,
    ScanResult,
    Trigger,
)


def triggers_for(
    findings_per_text: Sequence[Sequence[Finding]], tier: TierPolicy, direction: Direction
) -> list[Trigger]:
    """Findings that reach a band of the tier's table, with the band, threshold and action."""
    table = tier.table(direction)
    triggers: list[Trigger] = []
    for index, findings in enumerate(findings_per_text):
        for finding in findings:
            category_table = table.get(finding.category)
            if category_table is None:
                continue
            for band, rule in category_table.table_for(finding.label).bands():
                if finding.score >= rule.min_score:
                    triggers.append(Trigger(finding, index, band, rule.min_score, rule.action))
                    break
    return triggers


def decide(policy: PolicyFile, result: ScanResult, direction: Direction, tier_name: str) -> Decision:
    tier = policy.tiers[tier_name]
    triggers = triggers_for(result.findings, tier, direction)
    strongest = Action.ALLOW
    for trigger in triggers:
        action = trigger.action
        # A `redact` needs a span to act on; a span-less trigger that asks for it fails closed. Judged per
        # trigger, so a further (review-strength) finding can never turn that block back into a review.
        if action is Action.REDACT and trigger.finding.span is None:
            action = Action.BLOCK
        if action.strength > strongest.strength:
            strongest = action
    if result.failures and tier.on_detector_error.strength > strongest.strength:
        strongest = tier.on_detector_error

    would_have_been: Action | None = None
    enforced = strongest
    if policy.mode == "shadow" and strongest is not Action.ALLOW:
        would_have_been, enforced = strongest, Action.ALLOW
    elif strongest is Action.LOG:
        would_have_been, enforced = Action.LOG, Action.ALLOW

    categories = tuple(dict.fromkeys(t.finding.category for t in triggers if t.action.strength >= Action.REDACT.strength))
    review = None
    if enforced is Action.REVIEW:
        review = ReviewSettings(tier.review.timeout_s, tier.review.on_timeout, tier.review.deferred)
    return Decision(
        action=enforced,
        direction=direction,
        tier=tier_name,
        policy_version=policy.version,
        triggers=tuple(triggers),
        findings=tuple(f for per_text in result.findings for f in per_text),
        failures=result.failures,
        would_have_been=would_have_been,
        review=review,
        categories=categories,
    )
