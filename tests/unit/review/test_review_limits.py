"""The per-client token bucket: burst, refill, Retry-After, and memory bounded by `max_clients`."""

from __future__ import annotations

from guard.review.limits import ClientBuckets, retry_after


def test_a_client_gets_its_burst_then_waits_for_the_refill() -> None:
    buckets = ClientBuckets(per_minute=60, burst=3, max_clients=10)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("a", 0.0)
    assert wait == 1.0 and retry_after(wait) == 1
    assert buckets.take("b", 0.0) == 0.0  # another client has its own bucket
    assert buckets.take("a", 1.0) == 0.0  # one token back after a second at 60/min
    assert buckets.take("a", 1.0) > 0


def test_memory_stays_at_max_clients_however_many_addresses() -> None:
    buckets = ClientBuckets(per_minute=1, burst=1, max_clients=100)
    for i in range(10_000):
        buckets.take(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(buckets) == 100
    assert buckets.take("10.0.39.15", 10_000.0) > 0  # the most recent clients are the ones kept
