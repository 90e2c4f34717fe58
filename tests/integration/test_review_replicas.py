"""Two `guard serve` replicas sharing one PostgreSQL review queue and audit table: an item enqueued by one
replica and decided through the other reaches the caller held by the first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.fakes.guard_process import GuardProcess
from tests.fakes.upstream import FakeUpstream
from tests.unit.review.review_e2e import (
    CARD, Callers, decide, pending, wait_pending, write_policy, write_tokens,
)

pytestmark = pytest.mark.postgres


def test_a_review_decided_on_another_replica_reaches_the_held_caller(tmp_path: Path, postgres_dsn: str) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    policy = write_policy(tmp_path / "policy.yaml", timeout_s=60)
    args = ["--review-store", postgres_dsn, "--tokens", str(tokens), "--audit", postgres_dsn]
    callers = Callers()
    with FakeUpstream() as upstream:
        upstream.script(reply="Charged.")
        a = GuardProcess(upstream.url, policy, tmp_path, extra_args=args)
        b = GuardProcess(upstream.url, policy, tmp_path, extra_args=args)
        with a, b:
            approved = callers.send(a.url, f"charge {CARD} for order 1")
            denied = callers.send(a.url, f"charge {CARD} for order 2")
            items = wait_pending(b.admin_url, count=2)  # visible through the other replica
            assert {i["id"] for i in pending(a.admin_url)} == {i["id"] for i in items}
            first, second = sorted(items, key=lambda i: str(i["created_at"]))
            assert decide(b.admin_url, first["id"], "approve").status_code == 200
            assert decide(a.admin_url, first["id"], "deny").status_code == 409  # exactly once, across replicas
            assert decide(b.admin_url, second["id"], "deny").status_code == 200
            results = [approved.result(timeout=20), denied.result(timeout=20)]
            by_status = sorted(r.status_code for r in results)
            assert by_status == [200, 400]
            ok = next(r for r in results if r.status_code == 200)
            assert ok.json()["choices"][0]["message"]["content"] == "Charged."
            assert len(upstream.received) == 1
    callers.close()
    with psycopg.connect(postgres_dsn) as conn:
        records = [json.loads(r[0]) for r in conn.execute("SELECT record FROM guard_audit ORDER BY seq")]
    assert {r["kind"] for r in records} == {"decision", "review_action"}
    assert not any(CARD in json.dumps(r) for r in records)
    verified = subprocess.run([sys.executable, "-m", "guard", "audit", "verify", postgres_dsn],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
