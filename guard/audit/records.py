"""Audit records: what one line of the log holds, its canonical bytes, and the hash chain.

A record is a JSON object serialised canonically (sorted keys, no spaces, ASCII) so its bytes are a pure
function of its content. Each record carries `seq` (0, 1, 2, ... across every file and rotation), `prev`
(the previous record's hash; 64 zeros for seq 0) and `hash` = SHA-256 of the canonical record without
`hash`. Editing, deleting, inserting or reordering a record therefore breaks the chain at that record.

No raw text and no raw personal data: findings keep category, detector, score, threshold, span offsets
and entity type; the texts appear only as a keyed HMAC-SHA256 (when the deployment gives a key), which
lets an investigator holding the key confirm a given text without the log revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from guard.audit.base import DecisionEvent, ReviewActionEvent
from guard.types import Action, Decision

GENESIS = "0" * 64
FORMAT_VERSION = 1


def canonical(record: dict[str, object]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def record_hash(record: dict[str, object]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode("ascii")).hexdigest()


def seal(body: dict[str, object], seq: int, prev: str) -> dict[str, object]:
    """The body with its place in the chain and its hash."""
    record: dict[str, object] = {**body, "v": FORMAT_VERSION, "seq": seq, "prev": prev}
    record["hash"] = record_hash(record)
    return record


def text_hmacs(texts: tuple[str, ...], key: bytes) -> list[str]:
    if not key:
        return []
    return [hmac.new(key, t.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest() for t in texts]


def new_text_digest(key: bytes) -> hmac.HMAC | None:
    """An incremental `text_hmacs` for one text: `update` it with the text's UTF-8 bytes in pieces."""
    return hmac.new(key, digestmod=hashlib.sha256) if key else None


def enforced(decision: Decision, review_outcome: str) -> str:
    """What the caller got: for a `review`, what the reviewer's outcome (or the timeout) made of it."""
    if decision.action is not Action.REVIEW:
        return "allow" if decision.action is Action.LOG else decision.action.value
    if review_outcome in ("approve", "edit"):
        return "allow"
    if review_outcome == "timeout" and decision.review is not None and decision.review.on_timeout is Action.ALLOW:
        return "allow"
    if review_outcome == "deferred":
        return "deferred"
    return "block"  # deny, timeout under block, a store error, review not configured


def decision_body(event: DecisionEvent, key: bytes) -> dict[str, object]:
    decision = event.decision
    triggers = {id(t.finding): t for t in decision.triggers}
    ordered = [t.finding for t in decision.triggers] + list(decision.findings)
    findings: list[dict[str, object]] = []
    seen: set[int] = set()
    for finding in ordered:
        if id(finding) in seen:
            continue
        seen.add(id(finding))
        trigger = triggers.get(id(finding))
        span = finding.span
        findings.append({
            "detector": finding.detector,
            "detector_version": finding.detector_version,
            "category": finding.category.value,
            "label": finding.label,
            "score": round(finding.score, 6),
            "threshold": None if trigger is None else trigger.threshold,
            "band": None if trigger is None else trigger.band.value,
            "action": None if trigger is None else trigger.action.value,
            "text_index": None if trigger is None else trigger.text_index,
            "start": None if span is None else span.start,
            "end": None if span is None else span.end,
            "entity_type": None if span is None else span.entity_type,
        })
    review: dict[str, object] | None = None
    if event.review_outcome or event.reviewer:
        review = {"outcome": event.review_outcome, "reviewer": event.reviewer}
    return {
        "kind": "decision",
        "time": round(event.time, 6),
        "request_id": event.request_id,
        "route": event.route,
        "direction": decision.direction.value,
        "tier": decision.tier,
        "policy_version": decision.policy_version,
        "action": decision.action.value,
        "verdict": decision.verdict.value,
        "enforced": enforced(decision, event.review_outcome),
        "would_have_been": None if decision.would_have_been is None else decision.would_have_been.value,
        "categories": [c.value for c in decision.categories],
        "detectors": {name: version for name, version in event.detector_versions},
        "findings": findings,
        "failures": [{"detector": f.detector, "reason": f.reason.value} for f in decision.failures],
        "review": review,
        "text_hmac": list(event.text_hmacs) if event.text_hmacs is not None else text_hmacs(event.texts, key),
    }


def review_action_body(event: ReviewActionEvent) -> dict[str, object]:
    return {
        "kind": "review_action",
        "time": round(event.time, 6),
        "review_id": event.review_id,
        "request_id": event.request_id,
        "action": event.action,
        "reviewer": event.reviewer,
        "role": event.role,
        "outcome": event.outcome,
    }
