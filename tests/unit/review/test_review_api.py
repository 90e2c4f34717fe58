"""The reviewer API over real HTTP on loopback: tokens and roles, masking, unmask audit, 409, validation."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from guard.audit.jsonl import JsonlAuditSink
from guard.metrics import GuardMetrics
from guard.review.api import review_routes
from guard.review.base import ReviewOutcome
from guard.review.gate import DecisionBus, StoreReviewGate
from guard.review.store import ReviewStore
from guard.review.tokens import load_tokens
from tests.unit.review.review_samples import CARD, NAME, card_request

pytestmark = pytest.mark.anyio
Serve = Callable[[object], AbstractAsyncContextManager[str]]
TOKENS = {"reviewer": "tok-reviewer-1", "admin": "tok-admin-1", "auditor": "tok-auditor-1"}


@dataclass
class Env:
    base: str
    client: httpx.AsyncClient
    gate: StoreReviewGate
    store: ReviewStore
    audit_path: Path
    metrics: GuardMetrics

    def auth(self, role: str) -> dict[str, str]:
        return {"authorization": f"Bearer {TOKENS[role]}"}

    def audit_records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]


@pytest.fixture
async def env(store: ReviewStore, tmp_path: Path, serve_asgi: Serve) -> AsyncIterator[Env]:
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text("".join(
        f"- {{name: {role}-user, role: {role}, token_sha256: {hashlib.sha256(t.encode()).hexdigest()}}}\n"
        for role, t in TOKENS.items()
    ))
    metrics = GuardMetrics(CollectorRegistry(), "test")
    metrics.prepare([], [])
    gate = StoreReviewGate(store, metrics, DecisionBus(), poll_interval_s=5.0)  # only the API's wake-up is fast
    audit = JsonlAuditSink(tmp_path / "audit.jsonl", key=b"k" * 32)
    await audit.open()
    app = Starlette(routes=review_routes(store, load_tokens(tokens_file), audit, metrics, gate))
    async with serve_asgi(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield Env(base, client, gate, store, tmp_path / "audit.jsonl", metrics)
    await gate.aclose()
    await audit.aclose()


async def hold_one(env: Env, **kwargs: object) -> tuple[asyncio.Task[object], str]:
    task = asyncio.create_task(env.gate.hold(card_request(**kwargs)))  # type: ignore[arg-type]
    while True:
        listed = (await env.client.get("/v1/reviews", headers=env.auth("reviewer"))).json()["items"]
        if listed:
            return task, listed[0]["id"]
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("path", ["/v1/reviews", "/v1/reviews/x", "/v1/reviews/x/decision"])
async def test_every_route_needs_a_valid_token(env: Env, path: str) -> None:
    method = "POST" if path.endswith("decision") else "GET"
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKENS['admin']}"}):
        response = await env.client.request(method, path, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


async def test_approval_through_the_api_releases_the_held_caller(env: Env) -> None:
    task, item_id = await hold_one(env)
    response = await env.client.post(
        f"/v1/reviews/{item_id}/decision", headers=env.auth("reviewer"), json={"outcome": "approve", "note": "fine"}
    )
    assert response.status_code == 200 and response.json()["status"] == "approved"
    result = await asyncio.wait_for(task, 2)  # woken at once, not after the 5 s poll
    assert result.outcome is ReviewOutcome.APPROVE and result.reviewer == "reviewer-user"  # type: ignore[attr-defined]
    again = await env.client.post(
        f"/v1/reviews/{item_id}/decision", headers=env.auth("admin"), json={"outcome": "deny"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"
    records = [r for r in env.audit_records() if r["kind"] == "review_action"]
    assert [(r["action"], r["reviewer"], r["outcome"]) for r in records] == [("decide", "reviewer-user", "approve")]
    assert env.metrics.registry.get_sample_value("guard_review_outcomes_total", {"outcome": "approve"}) == 1


async def test_reviewers_see_pii_masked_and_only_admins_unmask_with_an_audit_record(env: Env) -> None:
    task, item_id = await hold_one(env)
    for role in ("reviewer", "auditor"):
        listed = await env.client.get("/v1/reviews?status=pending", headers=env.auth(role))
        shown = await env.client.get(f"/v1/reviews/{item_id}", headers=env.auth(role))
        assert shown.status_code == 200
        for raw in (listed.text, shown.text):
            assert CARD not in raw and NAME not in raw
        texts = shown.json()["texts"][0]["segments"]
        assert "[CREDIT_CARD]" in "".join(s["text"] for s in texts)
        explained = shown.json()["findings_detail"][0]
        assert explained["threshold"] == 0.5 and "1.00 >= 0.50" in explained["explanation"]
        refused = await env.client.get(f"/v1/reviews/{item_id}?unmask=true", headers=env.auth(role))
        assert refused.status_code == 403
    assert not [r for r in env.audit_records() if r["kind"] == "review_action"]
    unmasked = await env.client.get(f"/v1/reviews/{item_id}?unmask=true", headers=env.auth("admin"))
    assert unmasked.status_code == 200 and CARD in unmasked.text and unmasked.json()["masked"] is False
    [record] = [r for r in env.audit_records() if r["kind"] == "review_action"]
    assert record["action"] == "unmask" and record["reviewer"] == "admin-user" and record["role"] == "admin"
    assert CARD not in env.audit_path.read_text()
    task.cancel()


async def test_auditors_may_not_decide(env: Env) -> None:
    task, item_id = await hold_one(env)
    response = await env.client.post(
        f"/v1/reviews/{item_id}/decision", headers=env.auth("auditor"), json={"outcome": "approve"}
    )
    assert response.status_code == 403
    task.cancel()


async def test_edit_replaces_the_escalated_text(env: Env) -> None:
    task, item_id = await hold_one(env)
    response = await env.client.post(
        f"/v1/reviews/{item_id}/decision", headers=env.auth("reviewer"),
        json={"outcome": "edit", "text": "Please charge my card on file"},
    )
    assert response.status_code == 200
    result = await asyncio.wait_for(task, 2)
    assert result.outcome is ReviewOutcome.EDIT  # type: ignore[attr-defined]
    assert result.edited_texts == {0: "Please charge my card on file"}  # type: ignore[attr-defined]
    shown = (await env.client.get(f"/v1/reviews/{item_id}", headers=env.auth("reviewer"))).json()
    assert shown["decision"]["edited"] == {"0": {"chars": 29}}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "invalid_decision"),
        (b'{"outcome": "maybe"}', "outcome"),
        (b'{"outcome": "edit"}', "needs the replacement text"),
        (b'{"outcome": "approve", "text": "x"}', "only an edit takes text"),
        (b'{"outcome": "edit", "text": "x", "index": 3}', "index"),
        (b'{"outcome": "approve", "surprise": 1}', "surprise"),
    ],
)
async def test_bad_decisions_are_400_with_the_expected_shape(env: Env, body: bytes, fragment: str) -> None:
    task, item_id = await hold_one(env)
    response = await env.client.post(
        f"/v1/reviews/{item_id}/decision", headers={**env.auth("reviewer"), "content-type": "application/json"},
        content=body,
    )
    assert response.status_code == 400 and fragment in response.text
    task.cancel()


async def test_unknown_item_and_bad_query(env: Env) -> None:
    assert (await env.client.get("/v1/reviews/nope", headers=env.auth("reviewer"))).status_code == 404
    assert (await env.client.post(
        "/v1/reviews/nope/decision", headers=env.auth("reviewer"), json={"outcome": "deny"}
    )).status_code == 404
    assert (await env.client.get("/v1/reviews?status=weird", headers=env.auth("reviewer"))).status_code == 400
    assert (await env.client.get("/v1/reviews?limit=0", headers=env.auth("reviewer"))).status_code == 400


async def test_console_page_is_served(env: Env) -> None:
    page = await env.client.get("/console/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert (await env.client.get("/console/app.js")).status_code == 200
    redirect = await env.client.get("/console")
    assert redirect.status_code == 307
