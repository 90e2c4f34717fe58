"""JSON views of review items for the reviewer API and console: masked unless the caller may unmask.

Never shown to anyone: the replay request kept for deferred items (its headers can hold the caller's
upstream credentials). Shown masked to reviewers and auditors: held texts and edited texts.
"""

from __future__ import annotations

from guard.review.items import ItemFinding, ReviewItem
from guard.review.masking import segments


def _explain(finding: ItemFinding) -> str:
    if finding.threshold is None:
        return (
            f"{finding.detector} scored {finding.category} {finding.score:.2f}; "
            "below every band of the policy's table"
        )
    return (
        f"{finding.detector} scored {finding.category}"
        f"{'/' + finding.label if finding.label else ''} {finding.score:.2f} >= {finding.threshold:.2f} "
        f"({finding.band} band) -> {finding.action}"
    )


def summary(item: ReviewItem, now: float) -> dict[str, object]:
    new = item.item
    return {
        "id": new.id,
        "request_id": new.request_id,
        "status": item.status.value,
        "direction": new.direction.value,
        "route": new.route,
        "tier": new.tier,
        "policy_version": new.policy_version,
        "created_at": new.created_at,
        "deadline": new.deadline,
        "time_left_s": max(0.0, new.deadline - now) if item.status.value == "pending" else 0.0,
        "on_timeout": new.on_timeout.value,
        "deferred": new.deferred,
        "categories": sorted({f.category for f in new.findings if f.action}),
        "findings": len(new.findings),
    }


def detail(item: ReviewItem, now: float, mask: bool) -> dict[str, object]:
    new = item.item
    out = summary(item, now)
    out["masked"] = mask
    out["texts"] = [
        {
            "index": index,
            "segments": [s.to_json() for s in segments(text, index, new.findings, mask)],
        }
        for index, text in enumerate(new.texts)
    ]
    out["findings_detail"] = [
        {**f.to_json(), "explanation": _explain(f)} for f in new.findings
    ]
    edited: dict[str, object] | None = None
    if item.edited_texts is not None:
        if mask:
            # A reviewer's edit is not screened: show its size, not its content, to non-admins.
            edited = {str(k): {"chars": len(v)} for k, v in item.edited_texts.items()}
        else:
            edited = {str(k): {"text": v} for k, v in item.edited_texts.items()}
    out["decision"] = None if item.decided_at is None else {
        "status": item.status.value, "reviewer": item.reviewer, "note": item.note,
        "decided_at": item.decided_at, "edited": edited,
    }
    return out
