"""The review queue under attack, on a real `guard serve` (issue 15, delivers 4, 6 and 8).

- A flood of deferred requests from one address gets 429 + Retry-After after the per-client burst; once the
  pending cap is reached any client gets 503 + Retry-After; nothing reaches the upstream.
- A decided item is purged after the retention time: gone from the API, its held text gone from the SQLite
  file and its WAL, the purge recorded in the audit chain.
- An approved synchronous review cannot be replayed with `x-guard-review-id`.
- The console answers with CSP (frame-ancestors 'none'), nosniff, X-Frame-Options and Referrer-Policy.
- Every file and directory the guard creates (audit log, anchor, review store with -wal/-shm) is 0600/0700.
"""

from __future__ import annotations

import json
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import StartGuard
from tests.unit.review.review_e2e import auth, decide, wait_pending, write_tokens


def _client(address: str) -> httpx.Client:
    """A client whose TCP peer address is `address` (any of 127.0.0.0/8 on Linux loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_review_flood_is_shed_and_decided_items_are_purged(start_guard: StartGuard, tmp_path: Path) -> None:
    store = tmp_path / "store" / "r.db"
    audit = tmp_path / "audit.jsonl"
    args = [
        "--review-store", f"sqlite:///{store}", "--tokens", str(write_tokens(tmp_path / "tokens.yaml")),
        "--audit", str(audit), "--review-rate", "6", "--review-burst", "5", "--review-max-pending", "8",
        "--review-retention", "1",
    ]
    policy = fault_policy(default_tier="review", review={"timeout_s": 600, "deferred": True})
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(upstream.url, policy, args)
        with _client("127.0.0.3") as flooder:
            answers = [flooder.post(guard.url + CHAT, json=chat(f"{MARKER} flood-{i}")) for i in range(20)]
        assert [a.status_code for a in answers] == [202] * 5 + [429] * 15
        shed = answers[-1]
        assert int(shed.headers["retry-after"]) >= 1
        assert shed.json()["error"]["code"] == "review_rate_limited"
        assert "x-guard-decision" not in shed.headers  # shed, not a verdict
        with _client("127.0.0.4") as other:
            more = [other.post(guard.url + CHAT, json=chat(f"{MARKER} second-{i}")) for i in range(5)]
        assert [a.status_code for a in more] == [202] * 3 + [503] * 2
        assert more[-1].json()["error"]["code"] == "review_queue_full" and "retry-after" in more[-1].headers
        assert upstream.recorded() == []
        items = wait_pending(guard.admin_url, 8)
        assert len(items) == 8

        # Retention: a decided item is deleted (text included) after --review-retention, and audited.
        first = answers[0].json()["id"]
        assert decide(guard.admin_url, first, "deny").status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            gone = httpx.get(f"{guard.admin_url}/v1/reviews/{first}", headers=auth("reviewer"), timeout=5)
            if gone.status_code == 404:
                break
            time.sleep(0.2)
        assert gone.status_code == 404
        assert httpx.get(f"{guard.url}/guard/reviews/{first}", timeout=5).status_code == 404
        # The pending ones stay (retention starts at the decision).
        assert len(wait_pending(guard.admin_url, 7)) == 7
        held = b"".join(p.read_bytes() for p in store.parent.iterdir() if p.name.startswith("r.db"))
        assert b"flood-0" not in held
        assert b"flood-1" in held  # still pending: still held
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        purges = [r for r in records if r.get("kind") == "review_action" and r.get("action") == "purge"]
        assert [p["review_id"] for p in purges] == [first]


def test_an_approved_held_review_cannot_be_replayed(start_guard: StartGuard, tmp_path: Path) -> None:
    policy = fault_policy(default_tier="review", review={"timeout_s": 60})
    tokens = write_tokens(tmp_path / "tokens.yaml")
    state = tmp_path / "state"  # created by the guard: its modes are the guard's
    args = [
        "--review-store", f"sqlite:///{state}/review/r.db", "--tokens", str(tokens),
        "--audit", str(state / "audit" / "audit.jsonl"), "--audit-anchor", str(state / "audit" / "anchor.json"),
    ]
    with FaultServer(Behaviour(Mode.OK)) as upstream, ThreadPoolExecutor(1) as pool:
        guard = start_guard(upstream.url, policy, args)
        body = chat(f"{MARKER} approve me")
        waiting = pool.submit(httpx.post, guard.url + CHAT, json=body, timeout=30)
        [item] = wait_pending(guard.admin_url)
        assert decide(guard.admin_url, item["id"], "approve").status_code == 200
        assert waiting.result().status_code == 200
        assert len(upstream.recorded()) == 1
        replay = httpx.post(guard.url + CHAT, json=body, headers={"x-guard-review-id": str(item["id"])}, timeout=30)
        assert replay.status_code == 400 and "review could not be completed" in replay.json()["error"]["message"]
        assert len(upstream.recorded()) == 1  # forwarded once only

        console = httpx.get(guard.admin_url + "/console/", timeout=5)
        assert console.status_code == 200
        csp = console.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "default-src 'none'" in csp
        assert console.headers["x-content-type-options"] == "nosniff"
        assert console.headers["x-frame-options"] == "DENY"
        assert console.headers["referrer-policy"] == "no-referrer"
        script = httpx.get(guard.admin_url + "/console/app.js", timeout=5)
        assert script.headers["x-content-type-options"] == "nosniff"
        redirect = httpx.get(guard.admin_url + "/console", timeout=5)
        assert redirect.status_code == 307 and "frame-ancestors 'none'" in redirect.headers["content-security-policy"]

        # Private files: everything the guard created, with -wal and -shm while the store is open.
        store = state / "review"
        for directory in (state, store, state / "audit"):
            assert _mode(directory) == 0o700, directory
        created = [store / "r.db", store / "r.db-wal", store / "r.db-shm", state / "audit" / "audit.jsonl",
                   state / "audit" / "anchor.json"]
        for path in created:
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
    assert sorted(p.name for p in (state / "audit").iterdir()) == ["anchor.json", "audit.jsonl"]

