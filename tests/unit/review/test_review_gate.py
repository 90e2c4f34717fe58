"""The gate: hold until a decision, a timeout, a shutdown or a store failure; deferred answers at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from guard.metrics import GuardMetrics
from guard.review.base import ReviewOutcome
from guard.review.gate import DecisionBus, StoreReviewGate
from guard.review.items import ItemStatus, ReviewerOutcome
from guard.review.sqlite_store import SqliteReviewStore
from guard.review.store import ReviewStore
from guard.types import Action
from tests.fakes.guard_process import free_port
from tests.unit.review.review_samples import card_request

pytestmark = pytest.mark.anyio


def metrics() -> GuardMetrics:
    m = GuardMetrics(CollectorRegistry(), "test")
    m.prepare([], [])
    return m


def sample(m: GuardMetrics, name: str, **labels: str) -> float:
    value = m.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def pending_id(store: ReviewStore) -> str:
    while True:  # the hold enqueues first; wait for the item to appear
        items = await store.list_items(ItemStatus.PENDING, 10)
        if items:
            return items[0].id
        await asyncio.sleep(0.01)


async def test_hold_returns_the_reviewers_edit(store: ReviewStore) -> None:
    m = metrics()
    gate = StoreReviewGate(store, m, DecisionBus(), poll_interval_s=0.05)
    held = asyncio.create_task(gate.hold(card_request()))
    item_id = await pending_id(store)
    assert sample(m, "guard_review_queue_items") == 1
    await store.decide(item_id, ReviewerOutcome.EDIT, "alice", "fixed", {0: "charge my card"}, time.time())
    result = await asyncio.wait_for(held, 5)
    assert result.outcome is ReviewOutcome.EDIT and result.review_id == item_id
    assert result.edited_texts == {0: "charge my card"} and result.reviewer == "alice"


async def test_hold_times_out_with_the_tier_action(store: ReviewStore) -> None:
    m = metrics()
    gate = StoreReviewGate(store, m, DecisionBus(), poll_interval_s=0.05)
    started = time.monotonic()
    result = await gate.hold(card_request(timeout_s=0.3, on_timeout=Action.BLOCK))
    assert result.outcome is ReviewOutcome.TIMEOUT
    assert 0.3 <= time.monotonic() - started < 3
    assert (await store.get(result.review_id)).status is ItemStatus.TIMED_OUT
    assert sample(m, "guard_review_outcomes_total", outcome="timeout") == 1
    assert sample(m, "guard_review_queue_items") == 0


async def test_deferred_answers_at_once_and_stays_pending(store: ReviewStore) -> None:
    gate = StoreReviewGate(store, metrics(), DecisionBus())
    result = await asyncio.wait_for(gate.hold(card_request(deferred=True)), 2)
    assert result.outcome is ReviewOutcome.DEFERRED
    assert (await store.get(result.review_id)).status is ItemStatus.PENDING


async def test_a_decision_through_another_store_reaches_the_holder(tmp_path: Path) -> None:
    # Two processes' worth of stores on one file: the holder learns of the decision by polling.
    holder_store, other = SqliteReviewStore(tmp_path / "q.db"), SqliteReviewStore(tmp_path / "q.db")
    await holder_store.open()
    await other.open()
    try:
        gate = StoreReviewGate(holder_store, metrics(), DecisionBus(), poll_interval_s=0.05)
        held = asyncio.create_task(gate.hold(card_request()))
        item_id = await pending_id(other)
        await other.decide(item_id, ReviewerOutcome.DENY, "bob", "", None, time.time())
        assert (await asyncio.wait_for(held, 5)).outcome is ReviewOutcome.DENY
    finally:
        await holder_store.aclose()
        await other.aclose()


async def test_shutdown_while_holding_fails_closed(store: ReviewStore) -> None:
    gate = StoreReviewGate(store, metrics(), DecisionBus(), poll_interval_s=5)
    held = asyncio.create_task(gate.hold(card_request()))
    await pending_id(store)
    await gate.aclose()
    result = await asyncio.wait_for(held, 2)
    assert result.outcome is ReviewOutcome.ERROR
    assert (await store.list_items(ItemStatus.PENDING, 10))[0].id == result.review_id  # still pending


async def test_store_failure_fails_closed() -> None:
    from guard.review.postgres_store import PostgresReviewStore

    dead = PostgresReviewStore(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    gate = StoreReviewGate(dead, metrics(), DecisionBus())
    result = await gate.hold(card_request())
    assert result.outcome is ReviewOutcome.ERROR


async def test_sweeper_expires_items_nobody_holds(store: ReviewStore) -> None:
    m = metrics()
    gate = StoreReviewGate(store, m, DecisionBus(), sweep_interval_s=0.05)
    result = await gate.hold(card_request(timeout_s=0.2, deferred=True))
    await gate.start()
    try:
        for _ in range(100):
            if (await store.get(result.review_id)).status is ItemStatus.TIMED_OUT:
                break
            await asyncio.sleep(0.05)
        assert (await store.get(result.review_id)).status is ItemStatus.TIMED_OUT
        assert sample(m, "guard_review_outcomes_total", outcome="timeout") == 1
    finally:
        await gate.aclose()
