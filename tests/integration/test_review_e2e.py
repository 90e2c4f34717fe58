"""Human review end to end over HTTP on loopback: caller → `guard serve` (SQLite store, JSONL audit) →
fake upstream, with a reviewer deciding through the admin API. One guard serves the module's tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fakes.guard_process import GuardProcess
from tests.fakes.upstream import FakeUpstream
from tests.unit.review.review_e2e import (
    AUDIT_KEY, CARD, Callers, WebhookReceiver, auth, chat, decide, pending, wait_pending, write_policy, write_tokens,
)

MARK_IN = "ZQXPROMPTMARK7731"  # unique markers: none may appear in audit, webhook, logs or metrics
MARK_OUT = "ZQXANSWERMARK4402"


@dataclass
class Rig:
    guard: GuardProcess
    upstream: FakeUpstream
    callers: Callers
    webhook: WebhookReceiver
    audit: Path


def rig_policy(path: Path) -> Path:
    write_policy(path, timeout_s=30)
    policy = yaml.safe_load(path.read_text())
    # A second tier on the completions route with a short hold, for the timeout case.
    # Output too: a card number in the model's answer is held for a reviewer.
    policy["tiers"]["limited"]["output"]["pii"]["by_label"] = {
        "CREDIT_CARD": {"medium": {"min_score": 0.5, "action": "review"}}
    }
    quick = json.loads(json.dumps(policy["tiers"]["limited"]))
    quick["review"] = {"timeout_s": 1.5, "on_timeout": "block"}
    policy["tiers"]["quick"] = quick
    for route in policy["routes"]:
        if route["name"] == "completions":
            route["tier"] = "quick"
    path.write_text(yaml.safe_dump(policy))
    return path


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("review-e2e")
    webhook = WebhookReceiver()
    callers = Callers()
    with FakeUpstream() as upstream:
        guard = GuardProcess(
            upstream.url, rig_policy(tmp / "policy.yaml"), tmp,
            extra_args=[
                "--review-store", f"sqlite:///{tmp}/review.db", "--tokens", str(write_tokens(tmp / "tokens.yaml")),
                "--audit", str(tmp / "audit.jsonl"), "--log-level", "debug",
            ],
            env={"GUARD_AUDIT_HMAC_KEY": AUDIT_KEY, "GUARD_REVIEW_WEBHOOK_URL": webhook.url,
                 "GUARD_ADMIN_PUBLIC_URL": "https://review.example"},
        )
        with guard:
            yield Rig(guard, upstream, callers, webhook, tmp / "audit.jsonl")
    callers.close()
    webhook.close()


def prompt(tag: str) -> str:
    return f"Please charge {CARD} for the order {tag} {MARK_IN}"


def test_an_approved_prompt_reaches_the_upstream_and_the_caller_gets_the_answer(rig: Rig) -> None:
    rig.upstream.script(reply=f"Order confirmed {MARK_OUT}.")
    seen_before = len(rig.upstream.received)
    held = rig.callers.send(rig.guard.url, prompt("approve"))
    [item] = wait_pending(rig.guard.admin_url)
    assert not held.done() and len(rig.upstream.received) == seen_before  # held: nothing forwarded yet
    assert rig.guard.metric("guard_review_queue_items") == 1
    assert decide(rig.guard.admin_url, item["id"], "approve").status_code == 200
    answer = held.result(timeout=15)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-guard-decision"] == "review"
    assert answer.json()["choices"][0]["message"]["content"] == f"Order confirmed {MARK_OUT}."
    assert CARD in json.dumps(rig.upstream.received[-1].json())  # approved as sent
    assert rig.guard.metric("guard_review_outcomes_total", outcome="approve") == 1
    assert rig.guard.metric("guard_review_queue_items") == 0


def test_an_edited_prompt_goes_upstream_as_edited(rig: Rig) -> None:
    held = rig.callers.send(rig.guard.url, prompt("edit"))
    [item] = wait_pending(rig.guard.admin_url)
    assert decide(rig.guard.admin_url, item["id"], "edit", text="Please charge the card on file").status_code == 200
    assert held.result(timeout=15).status_code == 200
    sent = rig.upstream.received[-1].json()
    assert sent["messages"][0]["content"] == "Please charge the card on file"  # type: ignore[index]


def sse_text(body: str) -> str:
    out = []
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            delta = json.loads(line[6:])["choices"][0].get("delta", {})
            out.append(delta.get("content") or "")
    return "".join(out)


@pytest.mark.parametrize("stream", [False, True])
def test_an_escalated_answer_is_held_whole_until_approved(rig: Rig, stream: bool) -> None:
    # Three times the tier's hold-back window (96 chars), the card number near the end: a tier that can
    # escalate output holds a stream whole, so the reviewer sees (and masks) the complete answer.
    reply = "Thanks for your order. " * 12 + f"Your card {CARD} was charged; the receipt follows by mail."
    rig.upstream.script(reply=reply, chunks=6 if stream else 1)
    body = {"model": "fake", "stream": stream, "messages": [{"role": "user", "content": "charge my saved card"}]}
    held = rig.callers.pool.submit(httpx.post, rig.guard.url + "/v1/chat/completions", json=body, timeout=60)
    [item] = wait_pending(rig.guard.admin_url)
    assert item["direction"] == "output" and not held.done()
    shown = httpx.get(f"{rig.guard.admin_url}/v1/reviews/{item['id']}", headers=auth("reviewer")).json()
    seen = "".join(seg["text"] for seg in shown["texts"][0]["segments"])
    assert seen == reply.replace(CARD, "[CREDIT_CARD]")  # the whole answer, masked
    assert decide(rig.guard.admin_url, item["id"], "approve").status_code == 200
    answer = held.result(timeout=15)
    assert answer.status_code == 200
    if not stream:  # a stream's headers leave before its text is screened; they carry the input's verdict
        assert answer.headers["x-guard-decision"] == "review"
    text = sse_text(answer.text) if stream else answer.json()["choices"][0]["message"]["content"]
    assert text == reply


def test_a_denied_prompt_gets_a_clear_refusal(rig: Rig) -> None:
    seen_before = len(rig.upstream.received)
    held = rig.callers.send(rig.guard.url, prompt("deny"))
    [item] = wait_pending(rig.guard.admin_url)
    assert decide(rig.guard.admin_url, item["id"], "deny", note="not allowed").status_code == 200
    answer = held.result(timeout=15)
    assert answer.status_code == 400 and answer.headers["x-guard-decision"] == "block"
    error = answer.json()["error"]
    assert error["code"] == "content_filter" and "reviewer" in error["message"].lower()
    assert len(rig.upstream.received) == seen_before
    assert decide(rig.guard.admin_url, item["id"], "approve").status_code == 409  # decided once


def test_a_timeout_applies_the_tiers_action(rig: Rig) -> None:
    seen_before = len(rig.upstream.received)
    answer = httpx.post(
        rig.guard.url + "/v1/completions", json={"model": "fake", "prompt": prompt("timeout")}, timeout=30
    )
    assert answer.status_code == 400 and answer.headers["x-guard-decision"] == "block"
    assert "in time" in answer.json()["error"]["message"]
    assert len(rig.upstream.received) == seen_before
    assert rig.guard.metric("guard_review_outcomes_total", outcome="timeout") >= 1
    timed_out = httpx.get(rig.guard.admin_url + "/v1/reviews?status=timed_out", headers=auth("auditor")).json()
    assert len(timed_out["items"]) >= 1


def test_deferred_mode_answers_at_once_and_forwards_the_approved_request_once(rig: Rig) -> None:
    text = prompt("deferred")
    first = chat(rig.guard.url, text, path="/v1/batch/chat/completions", timeout_s=10)
    assert first.status_code == 202 and first.headers["x-guard-decision"] == "review"
    body = first.json()
    review_id, result_url = body["id"], body["result_url"]
    assert result_url == f"/guard/reviews/{review_id}"
    polled = httpx.get(rig.guard.url + result_url, timeout=10)
    assert polled.status_code == 202 and polled.json()["status"] == "pending" and CARD not in polled.text
    again = chat(rig.guard.url, text, path="/v1/batch/chat/completions", headers={"x-guard-review-id": review_id})
    assert again.status_code == 202  # still pending: held again under the same id, no second item
    assert [i["id"] for i in pending(rig.guard.admin_url)] == [review_id]
    assert decide(rig.guard.admin_url, review_id, "approve").status_code == 200
    assert httpx.get(rig.guard.url + result_url, timeout=10).json()["action"] == "resubmit"
    other = chat(rig.guard.url, prompt("other"), path="/v1/batch/chat/completions",
                 headers={"x-guard-review-id": review_id})
    assert other.status_code == 400  # an approval covers the texts the reviewer saw, nothing else
    seen_before = len(rig.upstream.received)
    forwarded = chat(rig.guard.url, text, path="/v1/batch/chat/completions", headers={"x-guard-review-id": review_id})
    assert forwarded.status_code == 200 and forwarded.headers["x-guard-decision"] == "review"
    assert len(rig.upstream.received) == seen_before + 1  # the fake upstream echoes unknown paths
    assert rig.upstream.received[-1].path == "/v1/batch/chat/completions"
    assert CARD in rig.upstream.received[-1].body.decode()
    assert httpx.get(rig.guard.url + result_url, timeout=10).json()["action"] == "used"
    replay = chat(rig.guard.url, text, path="/v1/batch/chat/completions", headers={"x-guard-review-id": review_id})
    assert replay.status_code == 400  # used once


def test_the_webhook_announced_each_item_without_personal_data(rig: Rig) -> None:
    payloads = rig.webhook.payloads()
    assert len(payloads) >= 4
    for raw in rig.webhook.bodies:
        text = raw.decode()
        assert CARD not in text and CARD.replace(" ", "") not in text and MARK_IN not in text
    assert all(str(p["url"]).startswith("https://review.example/console/#") for p in payloads)


def test_no_planted_marker_reaches_audit_logs_or_metrics(rig: Rig) -> None:
    audit = rig.audit.read_text()
    logs = rig.guard.logs()
    metrics = rig.guard.metrics_text()
    for where, text in (("audit", audit), ("logs", logs), ("metrics", metrics)):
        for secret in (MARK_IN, MARK_OUT, CARD, CARD.replace(" ", "")):
            assert secret not in text, f"{secret} leaked into {where}"
    records = [json.loads(line) for line in audit.splitlines()]
    reviewed = [r for r in records if r["kind"] == "decision" and r["review"]]
    assert {r["review"]["outcome"] for r in reviewed} >= {"approve", "deny", "edit", "timeout", "deferred"}
    assert any(r["review"]["reviewer"] == "reviewer-e2e" for r in reviewed)
    assert [r for r in records if r["kind"] == "review_action" and r["outcome"] == "approve"]
    assert all(r["text_hmac"] for r in records if r["kind"] == "decision" and r["direction"] == "input")


def verify(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guard", "audit", "verify", *map(str, paths)], capture_output=True, text=True,
        env={**os.environ, "GUARD_AUDIT_HMAC_KEY": AUDIT_KEY},  # the chain is MACed with the guard's key
    )


def test_audit_verify_passes_on_the_real_log_and_names_each_tampering(rig: Rig, tmp_path: Path) -> None:
    intact = verify(rig.audit)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    lines = rig.audit.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 10

    edited = tmp_path / "edited.jsonl"
    data = bytearray(b"".join(lines))
    at = len(b"".join(lines[:4])) + data[len(b"".join(lines[:4])):].index(b'"tier":"') + len(b'"tier":"')
    data[at] = ord("X")  # one byte of record seq 4
    edited.write_bytes(bytes(data))
    out = verify(edited)
    assert out.returncode == 1 and f"{edited}:5 (record seq 4): MAC does not match" in out.stdout

    deleted = tmp_path / "deleted.jsonl"
    deleted.write_bytes(b"".join(lines[:6] + lines[7:]))
    out = verify(deleted)
    assert out.returncode == 1 and f"{deleted}:7 (record seq 7): comes where seq 6 was expected" in out.stdout

    swapped = tmp_path / "swapped.jsonl"
    swapped.write_bytes(b"".join(lines[:2] + [lines[3], lines[2]] + lines[4:]))
    out = verify(swapped)
    assert out.returncode == 1
    assert f"{swapped}:3 (record seq 3)" in out.stdout and f"{swapped}:4 (record seq 2): out of order" in out.stdout
