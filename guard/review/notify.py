"""Webhook notification of new review items: generic JSON that Slack's incoming webhooks also accept.

The payload carries no personal data and no held text: the item's id, a link to it in the console, where
it came from (route, tier, direction), the categories that escalated it and its deadline. Delivery runs in
the background (the held caller never waits on it) and is retried with exponential backoff on network
errors, 429 and 5xx; other 4xx answers are final (a wrong URL will not fix itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import httpx

from guard.review.items import NewItem

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: str
    console_url: str  # the admin port's public base URL, e.g. https://guard-admin.example.com
    attempts: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float = 5.0


def payload(item: NewItem, console_url: str) -> dict[str, object]:
    categories = sorted({f.category for f in item.findings if f.action})
    link = f"{console_url.rstrip('/')}/console/#{item.id}"
    timeout_s = round(item.deadline - item.created_at)
    text = (
        f"guard: a {item.direction.value} on route '{item.route}' (tier {item.tier}) is held for review "
        f"({', '.join(categories) or 'no category'}); decide within {timeout_s} s: {link}"
    )
    return {
        "text": text,  # Slack's incoming webhooks show this field
        "review_id": item.id,
        "url": link,
        "api_url": f"{console_url.rstrip('/')}/v1/reviews/{item.id}",
        "route": item.route,
        "tier": item.tier,
        "direction": item.direction.value,
        "categories": categories,
        "created_at": item.created_at,
        "deadline": item.deadline,
        "on_timeout": item.on_timeout.value,
    }


class ReviewNotifier:
    """Posts one webhook per new item. Owns its HTTP client and its in-flight deliveries."""

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(timeout=settings.timeout_s)
        self._tasks: set[asyncio.Task[bool]] = set()

    def submit(self, item: NewItem) -> asyncio.Task[bool]:
        task = asyncio.create_task(self.deliver(payload(item, self._settings.console_url)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(self, body: dict[str, object]) -> bool:
        """Post `body` until it is accepted or the attempts run out; True when delivered."""
        delay = self._settings.backoff_s
        for attempt in range(1, self._settings.attempts + 1):
            try:
                response = await self._client.post(self._settings.url, json=body)
                if response.status_code < 300:
                    return True
                retryable = response.status_code == 429 or response.status_code >= 500
                log.warning(
                    "review webhook refused",
                    extra={"status": response.status_code, "attempt": attempt, "item_id": body["review_id"]},
                )
                if not retryable:
                    return False
            except httpx.HTTPError as exc:
                log.warning(
                    "review webhook failed",
                    extra={"error_type": type(exc).__name__, "attempt": attempt, "item_id": body["review_id"]},
                )
            if attempt < self._settings.attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.backoff_max_s)
        log.error("review webhook gave up", extra={"item_id": body["review_id"]})
        return False

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()
