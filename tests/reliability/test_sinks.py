"""The guard's own stores failing, against a real `guard serve`: the audit log unwritable or full, the review
store unreachable (at start-up, and broken while running), and held reviews across a SIGTERM.

- Audit: a decision that cannot be recorded is not acted on: the caller gets 503 `audit_unavailable`,
  `guard_audit_write_failures_total` counts it, and the upstream never sees a prompt whose decision was
  not recorded. What was written before the disk filled still verifies (`guard audit verify`).
- Review store: unreachable at start-up, the guard refuses to start with a message that names the store;
  cut off while running (PostgreSQL behind a relay that is cut), a message that needs review is refused
  (never forwarded unreviewed) and counted in `guard_review_outcomes_total{outcome="error"}`.
- SIGTERM with a review held: the held caller is answered (not cut off), the item stays pending in the
  store, and a restarted guard still lists it.
"""

from __future__ import annotations

import hashlib
import json
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy, write_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode, closed_port
from tests.fakes.guard_process import REPO, GuardProcess, leaked_internals
from tests.fakes.guard_process import StartGuard

TOKEN = "reviewer-token-for-the-reliability-battery"
AUDIT_LIMIT_BYTES = 24 * 1024


def _tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    path.write_text(f"- {{name: rel, role: reviewer, token_sha256: {digest}}}\n")
    return path


def _limit_file_size() -> None:
    # A full disk, for real: writes past the limit fail with EFBIG (the signal that would kill the
    # process instead is ignored, as a service manager's limit would be handled).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (AUDIT_LIMIT_BYTES, AUDIT_LIMIT_BYTES))


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "guard", "audit", "verify", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )


def test_audit_log_filling_up_refuses_unrecorded_requests(start_guard: StartGuard, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(upstream.url, fault_policy(), ("--audit", str(audit)), preexec=_limit_file_size)
        statuses = []
        for n in range(200):
            response = httpx.post(
                guard.url + CHAT, json=chat(f"audited-{n} {MARKER}"), headers={"x-request-id": f"rel-{n}"}, timeout=10
            )
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "audit_unavailable"
                assert not leaked_internals(response.text, MARKER)
            if statuses.count(503) >= 5:
                break
        assert 200 in statuses and 503 in statuses, statuses
        assert set(statuses) <= {200, 503}, statuses
        assert guard.metric("guard_audit_write_failures_total") >= 5
        assert httpx.get(guard.admin_url + "/healthz", timeout=5).status_code == 200
    guard.stop()
    # Every prompt the upstream saw had its input decision recorded first; every 200 was recorded both ways.
    records = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
    recorded = {(r["request_id"], r["direction"]) for r in records if r.get("kind") == "decision"}
    for request in upstream.recorded():
        n = json.loads(request.body)["messages"][0]["content"].split()[0].removeprefix("audited-")
        assert (f"rel-{n}", "input") in recorded, n
    for n, status in enumerate(statuses):
        if status == 200:
            assert {(f"rel-{n}", "input"), (f"rel-{n}", "output")} <= recorded, n
    result = _verify(audit)
    assert result.returncode == 0, result.stdout + result.stderr
    assert MARKER not in audit.read_text(errors="replace")


def test_audit_log_in_an_unwritable_place_stops_the_start(start_guard: StartGuard, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the audit directory should be")
    guard = start_guard(f"http://127.0.0.1:{closed_port()}", fault_policy(),
                        ("--audit", str(blocker / "audit.jsonl")), wait_ready=False)
    code = guard.wait_exit(60)
    assert code != 0
    assert "audit" in guard.logs().lower()
    assert "Traceback" not in guard.logs()


def test_audit_log_on_a_device_that_is_always_full(start_guard: StartGuard) -> None:
    """/dev/full: opening succeeds, every write fails with ENOSPC. The guard must neither hang nor act
    unrecorded: it refuses to start, or it starts and refuses every request with 503."""
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(upstream.url, fault_policy(), ("--audit", "/dev/full"), wait_ready=False)
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and guard.proc is not None and guard.proc.poll() is None:
            try:
                ready = httpx.get(guard.admin_url + "/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                pass
            if ready:
                break
            time.sleep(0.2)
        if not ready:
            assert guard.wait_exit(5) != 0, "the guard neither started nor exited"
            return
        response = httpx.post(guard.url + CHAT, json=chat("hello"), timeout=10)
        assert response.status_code == 503
        assert upstream.recorded() == []


def test_review_store_unreachable_at_start_stops_the_start(start_guard: StartGuard, tmp_path: Path) -> None:
    store = f"postgresql://guard@127.0.0.1:{closed_port()}/guard"
    guard = start_guard(
        f"http://127.0.0.1:{closed_port()}", fault_policy(),
        ("--review-store", store, "--tokens", str(_tokens(tmp_path))), wait_ready=False,
    )
    code = guard.wait_exit(90)
    assert code != 0
    assert "review" in guard.logs().lower()
    assert "Traceback" not in guard.logs()


REVIEW_POLICY = {"timeout_s": 30, "on_timeout": "block"}


def test_held_reviews_survive_sigterm(start_guard: StartGuard, tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    args = ("--review-store", f"sqlite://{db}", "--tokens", str(_tokens(tmp_path)), "--drain-timeout", "2")
    policy = write_policy(tmp_path / "review.yaml", fault_policy(default_tier="review", review=REVIEW_POLICY))
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(upstream.url, policy, args)
        answer: dict[str, httpx.Response] = {}
        held = threading.Thread(
            target=lambda: answer.setdefault("r", httpx.post(guard.url + CHAT, json=chat(f"hold {MARKER}"), timeout=40))
        )
        held.start()
        headers = {"authorization": f"Bearer {TOKEN}"}

        def pending() -> list[dict[str, object]]:
            items = httpx.get(guard.admin_url + "/v1/reviews", headers=headers, timeout=5).json()["items"]
            return [i for i in items if i.get("status") == "pending"]

        deadline = time.monotonic() + 20
        while not pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        before = pending()
        assert len(before) == 1
        guard.signal(signal.SIGTERM)
        held.join(30)
        assert guard.wait_exit(20) == 0
        # Answered (not cut off): refused as a review that could not complete, never forwarded.
        assert answer["r"].status_code == 400, answer["r"].text
        assert answer["r"].json()["error"]["code"] == "content_filter"
        assert upstream.recorded() == []

        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        again = start_guard(upstream.url, policy, args)
        items = httpx.get(again.admin_url + "/v1/reviews", headers=headers, timeout=5).json()["items"]
        assert [i["id"] for i in items if i.get("status") == "pending"] == [before[0]["id"]]


@pytest.mark.postgres
def test_review_store_cut_off_while_running_fails_closed(start_guard: StartGuard, tmp_path: Path) -> None:
    import os

    from tests.fakes.faults import TcpRelay

    dsn = os.environ["GUARD_TEST_POSTGRES_DSN"]
    host_port = dsn.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    with FaultServer(Behaviour(Mode.OK)) as upstream, TcpRelay((host, int(port))) as relay:
        relayed = dsn.replace(host_port, f"127.0.0.1:{relay.port}")
        policy = fault_policy(default_tier="review", review=REVIEW_POLICY)
        guard = start_guard(
            upstream.url, policy, ("--review-store", relayed, "--tokens", str(_tokens(tmp_path)))
        )
        relay.cut()
        response = httpx.post(guard.url + CHAT, json=chat(f"hold {MARKER}"), timeout=60)
        assert response.status_code == 400, response.text
        assert response.headers["x-guard-decision"] == "block"
        assert upstream.recorded() == []
        assert guard.metric("guard_review_outcomes_total", outcome="error") == 1
