"""`open_review(url, metrics, ...)`: the review store and gate `guard serve --review-store URL` names.

    sqlite:///var/lib/guard/review.db     (one replica; the path after `sqlite://`)
    postgresql://user@host:5432/db        (replicas sharing one queue)

`open_review` opens the store (schema created) and starts the gate's sweeper before it returns;
`build_review` only constructs (for `create_app`, which opens in `GuardApp.startup`). Close with
`ReviewHandles.aclose()`: the gate first (held callers get 503), then the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guard.audit.base import ReviewAuditSink
from guard.errors import ConfigError
from guard.metrics import GuardMetrics
from guard.review.gate import DecisionBus, StoreReviewGate
from guard.review.limits import ReviewLimits
from guard.review.notify import ReviewNotifier, WebhookSettings
from guard.review.postgres_store import PostgresReviewStore
from guard.review.sqlite_store import SqliteReviewStore
from guard.review.store import ReviewStore

_EXAMPLES = "e.g. 'sqlite:///var/lib/guard/review.db' or 'postgresql://guard@db:5432/guard'"


@dataclass(frozen=True, slots=True)
class ReviewHandles:
    store: ReviewStore
    gate: StoreReviewGate

    async def open(self) -> None:
        await self.store.open()
        await self.gate.start()

    async def aclose(self) -> None:
        await self.gate.aclose()
        await self.store.aclose()


def store_for(url: str) -> ReviewStore:
    """A store for `url`, not yet opened. `ConfigError` for a URL of another kind."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite://"):]
        if path in ("/", ""):
            raise ConfigError(f"review store URL '{url}' names no file; {_EXAMPLES}")
        return SqliteReviewStore(Path(path))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresReviewStore(url)
    raise ConfigError(f"review store URL must start with sqlite:/// or postgresql://; {_EXAMPLES}")


def build_review(
    url: str, metrics: GuardMetrics, webhook: WebhookSettings | None = None,
    poll_interval_s: float = 0.25, sweep_interval_s: float = 1.0,
    limits: ReviewLimits | None = None, audit: ReviewAuditSink | None = None,
) -> ReviewHandles:
    """Construct (cheap, no I/O) the store and gate for `url`; `await handles.open()` before use.
    `limits` bound the queue (guard.review.limits); `audit` records each retention purge."""
    store = store_for(url)
    notifier = ReviewNotifier(webhook) if webhook is not None else None
    gate = StoreReviewGate(
        store, metrics, DecisionBus(), notifier, poll_interval_s=poll_interval_s, sweep_interval_s=sweep_interval_s,
        limits=limits, audit=audit,
    )
    return ReviewHandles(store, gate)


async def open_review(
    url: str, metrics: GuardMetrics, webhook: WebhookSettings | None = None,
    poll_interval_s: float = 0.25, sweep_interval_s: float = 1.0,
) -> ReviewHandles:
    handles = build_review(url, metrics, webhook, poll_interval_s, sweep_interval_s)
    await handles.open()
    return handles
