"""Both review stores: persistence, ordering, exactly-once decisions, expiry, stats."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from guard.errors import AlreadyDecidedError
from guard.review.factory import store_for
from guard.review.items import ItemStatus, NewItem, ReviewerOutcome, findings_for
from guard.review.sqlite_store import SqliteReviewStore
from guard.review.store import ItemNotFoundError, ReviewStore
from guard.types import Action, Direction
from tests.unit.review.review_samples import CARD, card_request

pytestmark = pytest.mark.anyio


def new_item(created_at: float, timeout_s: float = 30.0, request_id: str = "req-1") -> NewItem:
    request = card_request(request_id)
    return NewItem(
        request_id=request.request_id, direction=Direction.INPUT, route="chat", tier="limited",
        policy_version="v1", texts=request.texts, findings=findings_for(request), created_at=created_at,
        deadline=created_at + timeout_s, on_timeout=Action.BLOCK,
    )


async def test_enqueue_then_get_round_trips_every_field(store: ReviewStore) -> None:
    item = new_item(time.time())
    await store.enqueue(item)
    got = await store.get(item.id)
    assert got.item == item
    assert got.status is ItemStatus.PENDING
    assert got.item.findings[0].entity_type == "CREDIT_CARD"
    assert got.item.findings[0].threshold == 0.5


async def test_list_is_oldest_first_and_filters_by_status(store: ReviewStore) -> None:
    now = time.time()
    items = [new_item(now - age, request_id=f"r{age}") for age in (5, 50, 20)]
    for item in items:
        await store.enqueue(item)
    pending = await store.list_items(ItemStatus.PENDING, 10)
    assert [i.item.request_id for i in pending] == ["r50", "r20", "r5"]
    await store.decide(items[0].id, ReviewerOutcome.DENY, "alice", "", None, now)
    assert [i.item.request_id for i in await store.list_items(ItemStatus.PENDING, 10)] == ["r50", "r20"]
    assert [i.item.request_id for i in await store.list_items(ItemStatus.DENIED, 10)] == ["r5"]
    assert len(await store.list_items(None, 2)) == 2


async def test_second_decision_is_refused(store: ReviewStore) -> None:
    item = new_item(time.time())
    await store.enqueue(item)
    decided = await store.decide(item.id, ReviewerOutcome.EDIT, "alice", "ok", {0: "charge the card"}, time.time())
    assert decided.status is ItemStatus.EDITED and decided.edited_texts == {0: "charge the card"}
    with pytest.raises(AlreadyDecidedError):
        await store.decide(item.id, ReviewerOutcome.APPROVE, "bob", "", None, time.time())
    assert (await store.get(item.id)).reviewer == "alice"


async def test_racing_decisions_apply_exactly_once(store: ReviewStore, tmp_path: Path) -> None:
    item = new_item(time.time())
    await store.enqueue(item)
    results = await asyncio.gather(
        *(store.decide(item.id, ReviewerOutcome.APPROVE, f"r{i}", "", None, time.time()) for i in range(8)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert sum(isinstance(r, AlreadyDecidedError) for r in results) == 7


async def test_unknown_id_is_not_found(store: ReviewStore) -> None:
    with pytest.raises(ItemNotFoundError):
        await store.get("nope")
    with pytest.raises(ItemNotFoundError):
        await store.decide("nope", ReviewerOutcome.APPROVE, "a", "", None, time.time())


async def test_expire_only_changes_pending_items(store: ReviewStore) -> None:
    now = time.time()
    a, b = new_item(now - 100, timeout_s=10), new_item(now - 100, timeout_s=10)
    await store.enqueue(a)
    await store.enqueue(b)
    await store.decide(a.id, ReviewerOutcome.APPROVE, "alice", "", None, now)
    kept, changed = await store.expire(a.id, now)
    assert not changed and kept.status is ItemStatus.APPROVED  # the reviewer's decision stands
    expired, changed = await store.expire(b.id, now)
    assert changed and expired.status is ItemStatus.TIMED_OUT


async def test_expire_due_sweeps_only_past_deadline(store: ReviewStore) -> None:
    now = time.time()
    late, fresh = new_item(now - 60, timeout_s=30), new_item(now, timeout_s=30)
    await store.enqueue(late)
    await store.enqueue(fresh)
    swept = await store.expire_due(now)
    assert [i.id for i in swept] == [late.id]
    assert await store.expire_due(now) == []
    stats = await store.stats()
    assert stats.pending == 1 and stats.oldest_created_at == pytest.approx(fresh.created_at)


async def test_sqlite_items_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    first = SqliteReviewStore(path)
    await first.open()
    item = new_item(time.time())
    await first.enqueue(item)
    await first.aclose()
    second = SqliteReviewStore(path)
    await second.open()
    try:
        got = await second.get(item.id)
        assert got.status is ItemStatus.PENDING and CARD in got.item.texts[0]
    finally:
        await second.aclose()


async def test_two_sqlite_stores_on_one_file_decide_once(tmp_path: Path) -> None:
    a, b = SqliteReviewStore(tmp_path / "q.db"), SqliteReviewStore(tmp_path / "q.db")
    await a.open()
    await b.open()
    try:
        item = new_item(time.time())
        await a.enqueue(item)
        results = await asyncio.gather(
            a.decide(item.id, ReviewerOutcome.APPROVE, "x", "", None, time.time()),
            b.decide(item.id, ReviewerOutcome.DENY, "y", "", None, time.time()),
            return_exceptions=True,
        )
        assert sum(isinstance(r, AlreadyDecidedError) for r in results) == 1
    finally:
        await a.aclose()
        await b.aclose()


def test_store_url_must_name_a_kind() -> None:
    from guard.errors import ConfigError

    with pytest.raises(ConfigError, match="sqlite:///"):
        store_for("mysql://x")
    with pytest.raises(ConfigError, match="names no file"):
        store_for("sqlite:///")


async def test_purge_deletes_only_items_decided_before_the_cutoff(store: ReviewStore) -> None:
    now = time.time()
    old, recent, waiting = new_item(now - 100, request_id="old"), new_item(now - 100, request_id="recent"), new_item(now)
    for item in (old, recent, waiting):
        await store.enqueue(item)
    await store.decide(old.id, ReviewerOutcome.DENY, "alice", "", None, now - 50)
    await store.decide(recent.id, ReviewerOutcome.APPROVE, "alice", "", None, now - 5)
    assert await store.purge_decided(now - 10) == [(old.id, "old")]
    with pytest.raises(ItemNotFoundError):
        await store.get(old.id)
    assert (await store.get(recent.id)).status is ItemStatus.APPROVED
    assert await store.purge_decided(now) == [(recent.id, "recent")]
    assert (await store.stats()).pending == 1  # pending items are never purged, whatever their age


async def test_sqlite_store_files_are_private_and_purged_text_leaves_the_file(tmp_path: Path) -> None:
    import os
    import stat

    old_umask = os.umask(0o022)  # as a library user's process might have it
    try:
        path = tmp_path / "new-dir" / "r.db"
        store = SqliteReviewStore(path)
        await store.open()
        item = new_item(time.time())
        await store.enqueue(item)
        await store.decide(item.id, ReviewerOutcome.DENY, "alice", "", None, time.time())
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
        assert modes == {"r.db": 0o600, "r.db-wal": 0o600, "r.db-shm": 0o600}
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert await store.purge_decided(time.time()) == [(item.id, "req-1")]
        held = b"".join(p.read_bytes() for p in path.parent.iterdir())
        assert CARD.encode() not in held
        await store.aclose()
    finally:
        os.umask(old_umask)
