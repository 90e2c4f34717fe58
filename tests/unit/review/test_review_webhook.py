"""The review webhook against a real loopback receiver that fails twice, then accepts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from guard.review.items import NewItem, findings_for
from guard.review.notify import ReviewNotifier, WebhookSettings
from guard.types import Action, Direction
from tests.unit.review.review_samples import CARD, NAME, card_request

pytestmark = pytest.mark.anyio
Serve = Callable[[object], AbstractAsyncContextManager[str]]


def receiver(fail_first: int, status: int = 500) -> tuple[Starlette, list[tuple[float, bytes]]]:
    seen: list[tuple[float, bytes]] = []

    async def hook(request: Request) -> Response:
        seen.append((time.monotonic(), await request.body()))
        return Response(status_code=status if len(seen) <= fail_first else 200)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])]), seen


def item(marker: str) -> NewItem:
    request = card_request(text=f"My card {CARD}, I am {NAME}, ref {marker}")
    return NewItem(
        request_id="req-9", direction=Direction.INPUT, route="chat", tier="high", policy_version="v1",
        texts=request.texts, findings=findings_for(request), created_at=time.time(),
        deadline=time.time() + 30, on_timeout=Action.BLOCK,
    )


async def test_webhook_retries_with_backoff_and_carries_no_personal_data(serve_asgi: Serve) -> None:
    app, seen = receiver(fail_first=2)
    marker = "PIIMARK-7f3a9c"
    async with serve_asgi(app) as base:
        notifier = ReviewNotifier(WebhookSettings(
            url=base + "/hook", console_url="https://guard-admin.example", backoff_s=0.1,
        ))
        try:
            delivered = await notifier.submit(item(marker))
        finally:
            await notifier.aclose()
    assert delivered
    assert len(seen) == 3
    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # exponential backoff
    raw = seen[-1][1].decode()
    for secret in (CARD, CARD.replace(" ", ""), NAME, marker, "Zebulon"):
        assert secret not in raw
    body = json.loads(raw)
    assert body["url"].startswith("https://guard-admin.example/console/#")
    assert body["review_id"] in body["text"] and body["categories"] == ["pii"]
    assert body["tier"] == "high" and body["route"] == "chat"


async def test_webhook_gives_up_on_a_client_error(serve_asgi: Serve) -> None:
    app, seen = receiver(fail_first=10, status=404)
    async with serve_asgi(app) as base:
        notifier = ReviewNotifier(WebhookSettings(url=base + "/hook", console_url="http://x", backoff_s=0.01))
        try:
            assert not await notifier.submit(item("m"))
        finally:
            await notifier.aclose()
    assert len(seen) == 1


async def test_webhook_gives_up_after_its_attempts() -> None:
    from tests.fakes.guard_process import free_port

    notifier = ReviewNotifier(WebhookSettings(
        url=f"http://127.0.0.1:{free_port()}/hook", console_url="http://x", attempts=3, backoff_s=0.01,
    ))
    try:
        assert not await notifier.submit(item("m"))
    finally:
        await notifier.aclose()
