"""Audit records: what one line of the log holds, its canonical bytes, and the hash chain.

A record is a JSON object serialised canonically (sorted keys, no spaces, ASCII) so its bytes are a pure
function of its content. Each record carries `seq` (0, 1, 2, ... across every file and rotation), `prev`
(the previous record's hash; 64 zeros for seq 0) and `hash` over the canonical record without `hash`:
with a key (format v2) HMAC-SHA256 under the key that the record's `kid` names (guard.audit.keys), without
one (v1) plain SHA-256. Editing, deleting, inserting or reordering a record therefore breaks the chain at
that record, and with a key, so does a record rewritten with its hash recomputed.

No raw text and no raw personal data: findings keep category, detector, score, threshold, span offsets
and entity type; the texts appear only as a keyed HMAC-SHA256 (when the deployment gives a key), which
lets an investigator holding the key confirm a given text without the log revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from collections.abc import Callable
from dataclasses import dataclass

from guard.audit.base import DecisionEvent, ReviewActionEvent
from guard.audit.keys import PREVIOUS_KEY_ENV, AuditKey, AuditKeys
from guard.errors import AuditError
from guard.types import Action, Decision

GENESIS = "0" * 64
FORMAT_VERSION = 1  # unkeyed: SHA-256 links
KEYED_FORMAT_VERSION = 2  # HMAC-SHA256 links with a key id


def canonical(record: dict[str, object]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def record_hash(record: dict[str, object]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode("ascii")).hexdigest()


def record_mac(record: dict[str, object], key: AuditKey) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hmac.new(key.secret, canonical(body).encode("ascii"), hashlib.sha256).hexdigest()


def seal(body: dict[str, object], seq: int, prev: str, key: AuditKey | None = None) -> dict[str, object]:
    """The body with its place in the chain and its hash (a MAC under `key` when given)."""
    if key is None:
        record: dict[str, object] = {**body, "v": FORMAT_VERSION, "seq": seq, "prev": prev}
        record["hash"] = record_hash(record)
        return record
    record = {**body, "v": KEYED_FORMAT_VERSION, "seq": seq, "prev": prev, "kid": key.kid}
    record["hash"] = record_mac(record, key)
    return record


def check_hash(record: dict[str, object], keys: AuditKeys) -> str | None:
    """Why `record`'s hash is not right (None when it is)."""
    kid = record.get("kid")
    if kid is None:
        if record["hash"] != record_hash(record):
            return "hash does not match the content: the record was edited"
        return None
    key = keys.for_kid(str(kid))
    if key is None:
        return f"MACed with key id '{kid}', and no key with that id was given (GUARD_AUDIT_HMAC_KEY / _KEY_ID)"
    if not hmac.compare_digest(str(record["hash"]), record_mac(record, key)):
        return (
            f"MAC does not match the content under key '{kid}': the record was edited or forged "
            "(hash recomputed), or the key changed"
        )
    return None


def rotation_vouch(old: AuditKey, prev: str, to_kid: str) -> str:
    """The old key's word for a switch: a MAC of the chain's last hash and the new key id."""
    return hmac.new(old.secret, f"key_rotation:{prev}:{to_kid}".encode("ascii"), hashlib.sha256).hexdigest()


def check_rotation(record: dict[str, object], keys: AuditKeys) -> str | None:
    """Why a `key_rotation` record does not vouch for its switch (None when it does)."""
    from_kid = record.get("from_kid")
    if from_kid is None:
        return None  # a key introduced on a log that had none: nothing older to vouch
    old = keys.for_kid(str(from_kid))
    if old is None:
        return f"rotates from key id '{from_kid}', and no key with that id was given (GUARD_AUDIT_PREVIOUS_HMAC_KEY)"
    expected = rotation_vouch(old, str(record.get("prev")), str(record.get("to_kid")))
    if not hmac.compare_digest(str(record.get("vouch")), expected):
        return f"the rotation is not vouched for by key '{from_kid}': a forged rotation, or the old key changed"
    return None


@dataclass(frozen=True, slots=True)
class Continuation:
    """Where a (re)started sink continues the chain: the next seq and prev, and the body of a rotation
    record to write first (sealed with the current key) when the key changed."""

    seq: int
    prev: str
    rotation: dict[str, object] | None = None


def continue_chain(
    last: dict[str, object] | None, keys: AuditKeys, where: str, now: float, has_keyed: Callable[[], bool]
) -> Continuation:
    """Check the chain's last record against `keys` and say how to continue it; `AuditError` when the
    guard must not append (a forged or foreign-keyed last record, a key change with no previous key).
    `has_keyed` (asked only when a key meets an unkeyed last record) says whether any record is keyed."""
    if last is None:
        return Continuation(0, GENESIS)
    current = keys.current
    last_kid = None if last.get("kid") is None else str(last["kid"])
    if last_kid is not None and keys.for_kid(last_kid) is None:
        named = "is not set" if current is None else f"has id '{current.kid}'"
        raise AuditError(
            f"{where}: the log's key id is '{last_kid}' but GUARD_AUDIT_HMAC_KEY {named}; to rotate keys, give "
            f"the old one as {PREVIOUS_KEY_ENV} (a changed key is refused: the chain would not verify)"
        )
    problem = check_hash(last, keys)
    if problem is not None:
        raise AuditError(f"{where}: the last audit record (seq {last.get('seq')}): {problem}; "
                         "run `guard audit verify` before appending to this log")
    seq, prev = int(str(last["seq"])) + 1, str(last["hash"])
    if current is None:
        return Continuation(seq, prev)  # an unkeyed log stays unkeyed (a keyed one was refused above)
    if last_kid == current.kid:
        return Continuation(seq, prev)
    if last_kid is None and has_keyed():
        raise AuditError(
            f"{where}: the last audit record (seq {last.get('seq')}) is unkeyed but the log holds keyed records: it "
            "was appended without the key; run `guard audit verify` before appending to this log"
        )
    body: dict[str, object] = {
        "kind": "key_rotation", "time": round(now, 6), "from_kid": last_kid, "to_kid": current.kid,
    }
    if last_kid is not None:
        old = keys.for_kid(last_kid)
        if old is not None:
            body["vouch"] = rotation_vouch(old, prev, current.kid)
    return Continuation(seq, prev, body)


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
