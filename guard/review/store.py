"""The `ReviewStore` extension point: a durable queue of held items, each decided exactly once.

Implementations: `SqliteReviewStore` (one replica, a file in WAL mode) and `PostgresReviewStore` (replicas
sharing one queue). Items survive a restart of the guard. The gate (`guard.review.gate`) enqueues and
waits; the reviewer API lists, reads and decides; a sweeper expires items whose deadline passed.

Contract for every implementation:
- `enqueue` persists the item before returning (a crash after it loses nothing).
- `decide` and `expire` change a `pending` item only, atomically: the first caller wins; `decide` on an
  item that is no longer pending raises `AlreadyDecidedError` (the API's 409); `expire` returns the item
  as it is (a reviewer's decision that arrived first stands).
- Unknown ids raise `ItemNotFoundError`. Store failures raise `ReviewError` with a message holding no text.
"""

from __future__ import annotations

import json
from typing import Protocol

from guard.errors import ReviewError
from guard.review.items import (
    ForwardRequest,
    ItemFinding,
    ItemStatus,
    NewItem,
    QueueStats,
    ReviewerOutcome,
    ReviewItem,
)
from guard.types import Action, Direction


class ItemNotFoundError(ReviewError):
    """No item with this id (answered 404)."""


class ReviewStore(Protocol):
    async def open(self) -> None:
        """Create the schema if missing. Called once at startup, before any other method."""

    async def enqueue(self, item: NewItem) -> ReviewItem: ...

    async def get(self, item_id: str) -> ReviewItem: ...

    async def list_items(self, status: ItemStatus | None, limit: int) -> list[ReviewItem]:
        """Items with this status (all when None), oldest first."""

    async def decide(
        self, item_id: str, outcome: ReviewerOutcome, reviewer: str, note: str,
        edited_texts: dict[int, str] | None, now: float,
    ) -> ReviewItem: ...

    async def expire(self, item_id: str, now: float) -> tuple[ReviewItem, bool]:
        """Mark a pending item `timed_out`; returns the item and whether this call changed it."""

    async def expire_due(self, now: float) -> list[ReviewItem]:
        """Expire every pending item whose deadline has passed; returns the ones this call changed."""

    async def consume(self, item_id: str, now: float) -> tuple[ReviewItem, bool]:
        """Use up an approved or edited deferred item's approval (once); returns the item and whether
        this call consumed it."""

    async def stats(self) -> QueueStats: ...

    async def purge_decided(self, decided_before: float) -> list[tuple[str, str]]:
        """Delete every item decided (approved, edited, denied, timed out) at or before `decided_before`,
        held text included; returns (id, request_id) of each, for the audit. A purged id is unknown after
        (its deferred approval can no longer be used: fail closed)."""

    async def aclose(self) -> None: ...


# --- row codec shared by the SQL stores ------------------------------------------------------------
COLUMNS = (
    "id", "request_id", "direction", "route", "tier", "policy_version", "texts", "findings",
    "created_at", "deadline", "on_timeout", "deferred", "forward", "status", "reviewer", "note",
    "edited_texts", "decided_at", "consumed_at",
)


def item_row(item: NewItem) -> tuple[object, ...]:
    forward = {
        "method": item.forward.method, "path": item.forward.path,
        "body": item.forward.body.decode("utf-8", "surrogateescape"),
        "headers": [list(h) for h in item.forward.headers],
    }
    return (
        item.id, item.request_id, item.direction.value, item.route, item.tier, item.policy_version,
        json.dumps(list(item.texts)), json.dumps([f.to_json() for f in item.findings]),
        item.created_at, item.deadline, item.on_timeout.value, 1 if item.deferred else 0,
        json.dumps(forward), ItemStatus.PENDING.value, "", "", None, None, None,
    )


def row_item(row: tuple[object, ...]) -> ReviewItem:
    values = dict(zip(COLUMNS, row, strict=True))
    forward = json.loads(str(values["forward"]))
    new = NewItem(
        id=str(values["id"]), request_id=str(values["request_id"]),
        direction=Direction(str(values["direction"])), route=str(values["route"]),
        tier=str(values["tier"]), policy_version=str(values["policy_version"]),
        texts=tuple(json.loads(str(values["texts"]))),
        findings=tuple(ItemFinding.from_json(f) for f in json.loads(str(values["findings"]))),
        created_at=float(str(values["created_at"])), deadline=float(str(values["deadline"])),
        on_timeout=Action(str(values["on_timeout"])), deferred=bool(values["deferred"]),
        forward=ForwardRequest(
            method=forward["method"], path=forward["path"],
            body=str(forward["body"]).encode("utf-8", "surrogateescape"),
            headers=tuple((str(k), str(v)) for k, v in forward["headers"]),
        ),
    )
    edited = values["edited_texts"]
    decided_at = values["decided_at"]
    consumed_at = values["consumed_at"]
    return ReviewItem(
        item=new, status=ItemStatus(str(values["status"])), reviewer=str(values["reviewer"]),
        note=str(values["note"]),
        edited_texts=None if edited is None else {int(k): str(v) for k, v in json.loads(str(edited)).items()},
        decided_at=None if decided_at is None else float(str(decided_at)),
        consumed_at=None if consumed_at is None else float(str(consumed_at)),
    )


def edited_json(edited_texts: dict[int, str] | None) -> str | None:
    return None if edited_texts is None else json.dumps({str(k): v for k, v in edited_texts.items()})
