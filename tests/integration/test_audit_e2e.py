"""The audit log of a real `guard serve`: every decision (allow included) recorded without raw text or
personal data, one chain across a restart, `guard audit verify` passing on it."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.guard_process import REPO, GuardProcess
from tests.fakes.upstream import FakeUpstream
from tests.unit.review.review_e2e import AUDIT_KEY, CARD, chat

EMAIL = "vexilla.quorn@example.org"
MARK = "AUDITMARK5519"


def test_every_decision_is_recorded_without_personal_data_across_a_restart(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    policy = REPO / "policies" / "escalate.yaml"
    args = ["--audit", str(audit)]
    env = {"GUARD_AUDIT_HMAC_KEY": AUDIT_KEY}
    with FakeUpstream() as upstream:
        upstream.script(reply=f"Noted {MARK}, we will write to {EMAIL}.")
        with GuardProcess(upstream.url, policy, tmp_path, extra_args=args, env=env) as guard:
            allowed = chat(guard.url, f"What is the weather like? {MARK}")
            redacted = chat(guard.url, f"Mail {EMAIL} the summary {MARK}")
            refused = chat(guard.url, f"Charge {CARD} {MARK}")  # review without a store: refused
            assert allowed.status_code == 200 and redacted.status_code == 200 and refused.status_code == 400
            logs = guard.logs() + guard.metrics_text()
        with GuardProcess(upstream.url, policy, tmp_path, extra_args=args, env=env) as guard:
            assert chat(guard.url, "hello again").status_code == 200
            logs += guard.logs()
    raw = audit.read_text()
    for secret in (MARK, EMAIL, CARD, CARD.replace(" ", ""), "vexilla"):
        assert secret not in raw and secret not in logs
    records = [json.loads(line) for line in raw.splitlines()]
    assert [r["seq"] for r in records] == list(range(len(records)))
    inputs = [r for r in records if r["direction"] == "input"]
    assert [r["action"] for r in inputs] == ["allow", "redact", "review", "allow"]
    assert [r["enforced"] for r in inputs] == ["allow", "redact", "block", "allow"]
    assert inputs[2]["review"] == {"outcome": "not_configured", "reviewer": ""}
    [card] = [f for f in inputs[2]["findings"] if f["entity_type"] == "CREDIT_CARD"]
    assert card["threshold"] == 0.5 and card["action"] == "review" and card["start"] == len("Charge ")
    assert inputs[0]["detectors"] and inputs[0]["policy_version"] == "2026.11.1"
    expected = hmac.new(AUDIT_KEY.encode(), f"What is the weather like? {MARK}".encode(), hashlib.sha256).hexdigest()
    assert inputs[0]["text_hmac"] == [expected]
    outputs = [r for r in records if r["direction"] == "output"]
    assert outputs and outputs[0]["action"] in ("redact", "allow")
    verified = subprocess.run(
        [sys.executable, "-m", "guard", "audit", "verify", str(audit)], capture_output=True, text=True,
        env={**os.environ, **env},  # the chain is MACed with the guard's key; verify takes the same setting
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"ok: {len(records)} records")
