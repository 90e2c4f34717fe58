"""Review queue limits (issue 15, deliver 4): how fast one client may add held items, how many may wait,
and how long a decided item's held text is kept.

A review item costs a person's attention, a row holding raw text and a webhook, so an unauthenticated
caller must not be able to fill the queue. `ClientBuckets` is a token bucket per client address (the TCP
peer, never a header the caller sets), in a bounded LRU map: memory stays at `max_clients` buckets
whatever the number of addresses. Shed holds are answered 429 (this client's rate) or 503 (the queue is
full) with `Retry-After`, never as a verdict. Decided items are deleted `retention_s` after their
decision (the sweeper, guard.review.gate), each purge an audit record.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReviewLimits:
    per_client_per_minute: float = 30.0  # sustained new held items per client address
    per_client_burst: int = 10
    max_pending: int = 1000
    retention_s: float = 7 * 24 * 3600.0  # decided items (and their held text) are deleted after this
    max_clients: int = 10_000  # client buckets kept (least recently used dropped first)
    queue_full_retry_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Shed:
    """A hold that was not taken: the HTTP status (429 rate, 503 queue full) and seconds to wait."""

    status: int
    retry_after_s: int
    code: str
    message: str


RATE_LIMITED = "review_rate_limited"
QUEUE_FULL = "review_queue_full"


class ClientBuckets:
    """Token buckets by client key. Not thread-safe: used on the event loop only."""

    def __init__(self, per_minute: float, burst: int, max_clients: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._max = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds until one is available."""
        tokens, at = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + max(0.0, now - at) * self._rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self._rate if self._rate > 0 else math.inf
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)  # a dropped bucket restarts full: only the oldest are dropped
        return wait


def retry_after(seconds: float) -> int:
    """Whole seconds for `Retry-After` (at least 1; capped at an hour for a zero rate)."""
    return max(1, min(3600, math.ceil(seconds)))
