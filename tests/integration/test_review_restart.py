"""Killing `guard serve` (SIGKILL) while a request is held loses no item, and never lets the request through."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.fakes.guard_process import GuardProcess
from tests.fakes.upstream import FakeUpstream
from tests.unit.review.review_e2e import CARD, Callers, decide, pending, wait_pending, write_policy, write_tokens


def test_sigkill_while_holding_keeps_the_item_and_never_allows(tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    policy = write_policy(tmp_path / "policy.yaml", timeout_s=120)
    args = ["--review-store", f"sqlite:///{tmp_path}/review.db", "--tokens", str(tokens),
            "--audit", str(tmp_path / "audit.jsonl")]
    callers = Callers()
    with FakeUpstream() as upstream:
        first = GuardProcess(upstream.url, policy, tmp_path, extra_args=args).start()
        try:
            held = callers.send(first.url, f"charge {CARD} now")
            [item] = wait_pending(first.admin_url)
            first.signal(signal.SIGKILL)
            assert first.wait_exit(30) == -signal.SIGKILL
            # The held caller gets an error, never the model's answer.
            with pytest.raises(httpx.TransportError):
                held.result(timeout=30)
            assert upstream.received == []
        finally:
            first.stop()
        second = GuardProcess(upstream.url, policy, tmp_path, extra_args=args)
        second.port, second.admin_port = first.port, first.admin_port  # the same guard, restarted
        second.args = first.args
        with second:
            [after] = pending(second.admin_url)
            assert after["id"] == item["id"] and after["status"] == "pending"
            assert second.metric("guard_review_queue_items") == 1
            # The item can still be decided (nobody waits for it now); its audit chain continued.
            assert decide(second.admin_url, item["id"], "deny").status_code == 200
            assert upstream.received == []
    callers.close()
    import subprocess
    import sys

    verified = subprocess.run(
        [sys.executable, "-m", "guard", "audit", "verify", str(tmp_path / "audit.jsonl")], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_graceful_stop_answers_held_callers_with_a_refusal(tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    policy = write_policy(tmp_path / "policy.yaml", timeout_s=120)
    callers = Callers()
    with FakeUpstream() as upstream:
        guard = GuardProcess(
            upstream.url, policy, tmp_path,
            extra_args=["--review-store", f"sqlite:///{tmp_path}/review.db", "--tokens", str(tokens),
                        "--drain-timeout", "1"],
        ).start()
        try:
            held = callers.send(guard.url, f"charge {CARD} now")
            wait_pending(guard.admin_url)
            guard.signal(signal.SIGTERM)
            answer = held.result(timeout=30)
            # A clear refusal once the drain time is up (the item stays pending), never the model's answer.
            assert answer.status_code == 400, answer.text
            assert "review could not be completed" in answer.json()["error"]["message"]
            assert upstream.received == []
            assert guard.wait_exit(30) == 0
        finally:
            guard.stop()
    callers.close()
