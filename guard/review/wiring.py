"""The review and audit rooms as `guard serve` runs them, built from `GuardSettings` in `create_app`.

    --review-store URL   review store and gate (sqlite:///PATH or postgresql://...); needs --tokens
    --tokens FILE        reviewer tokens for the admin port's review API and console
    --audit SPEC         audit sink (a JSONL path or postgresql://...)

From the environment (secrets and deployment URLs stay out of argv and process listings):
    GUARD_AUDIT_HMAC_KEY      key for the audit chain's MACs and the texts' HMAC (none: unkeyed SHA-256)
    GUARD_AUDIT_KEY_ID        its id in the records (default: derived from the key)
    GUARD_AUDIT_PREVIOUS_HMAC_KEY / _PREVIOUS_KEY_ID   the key before it, to rotate (guard.audit.keys)
    GUARD_REVIEW_WEBHOOK_URL  webhook for new review items (generic JSON, Slack-compatible)
    GUARD_ADMIN_PUBLIC_URL    base URL of the admin port as reviewers reach it (links in the webhook)

`open_rooms` validates and opens everything before `create_app` runs (a bad token file is a
`ConfigError`, a log that cannot be continued an `AuditError`: the guard refuses to start).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.routing import BaseRoute

from guard.audit.factory import audit_sink_for
from guard.audit.jsonl import JsonlAuditSink
from guard.audit.keys import keys_from_env
from guard.audit.postgres import PostgresAuditSink
from guard.errors import ConfigError
from guard.metrics import GuardMetrics
from guard.review.api import review_routes
from guard.review.deferred import result_routes
from guard.review.factory import ReviewHandles, build_review
from guard.review.gate import StoreReviewGate
from guard.review.limits import ReviewLimits
from guard.review.notify import WebhookSettings
from guard.review.tokens import load_tokens
from guard.settings import GuardSettings


@dataclass
class Rooms:
    """What `guard serve` passes to `create_app` (the same fields as `guard.app.Extras`), and how to close it."""

    review: ReviewHandles | None = None
    audit_sink: JsonlAuditSink | PostgresAuditSink | None = None
    admin_routes: list[BaseRoute] = field(default_factory=list)
    proxy_routes: list[BaseRoute] = field(default_factory=list)  # the deferred result URL (proxy port)

    @property
    def review_gate(self) -> StoreReviewGate | None:
        return None if self.review is None else self.review.gate

    async def aclose(self) -> None:
        """The gate first (held callers get 503, items stay pending), then the store and the log."""
        if self.review is not None:
            await self.review.aclose()
        if self.audit_sink is not None:
            await self.audit_sink.aclose()


async def open_rooms(
    settings: GuardSettings, metrics: GuardMetrics, environ: Mapping[str, str] = os.environ
) -> Rooms:
    """Open what `settings` name. `ConfigError`/`AuditError`/`ReviewError` stop the start-up; anything
    opened before the failure is closed again."""
    tokens = load_tokens(settings.tokens_file) if settings.tokens_file is not None else None
    if settings.review_store_url is not None and tokens is None:
        raise ConfigError(
            "--review-store needs --tokens FILE: without reviewer tokens nobody could decide a held item"
        )
    rooms = Rooms()
    try:
        if settings.audit_path is not None:
            keys = keys_from_env(environ)
            rooms.audit_sink = audit_sink_for(
                str(settings.audit_path), keys.text_key, keys=keys, anchor_path=settings.audit_anchor_path,
                anchor_interval_s=settings.audit_anchor_interval_s,
            )
            await rooms.audit_sink.open()
        if settings.review_store_url is not None and tokens is not None:
            webhook = None
            if environ.get("GUARD_REVIEW_WEBHOOK_URL"):
                public = environ.get("GUARD_ADMIN_PUBLIC_URL") or f"http://{settings.admin_host}:{settings.admin_port}"
                webhook = WebhookSettings(url=environ["GUARD_REVIEW_WEBHOOK_URL"], console_url=public)
            limits = ReviewLimits(
                per_client_per_minute=settings.review_rate_per_minute, per_client_burst=settings.review_burst,
                max_pending=settings.review_max_pending, retention_s=settings.review_retention_s,
            )
            rooms.review = build_review(settings.review_store_url, metrics, webhook, limits=limits,
                                        audit=rooms.audit_sink)
            await rooms.review.open()
            rooms.admin_routes = review_routes(
                rooms.review.store, tokens, rooms.audit_sink, metrics, rooms.review.gate
            )
            rooms.proxy_routes = result_routes(rooms.review.store)
    except BaseException:
        await rooms.aclose()
        raise
    return rooms
