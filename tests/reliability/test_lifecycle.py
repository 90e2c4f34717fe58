"""Process lifecycle faults against a real `guard serve`: SIGTERM with requests in flight, and policy reloads
(SIGHUP) with a broken file.

- SIGTERM: requests in flight finish (200) within the drain timeout; requests that arrive while draining
  get 503 `shutting_down`, on open and new connections alike; the process exits 0; nothing is lost or sent twice
  to the upstream.
- Reload: a broken file (bad YAML, unknown key, a detector that cannot load) keeps the running policy in
  force, is counted in `guard_policy_reloads_total{result="failure"}` and logged without its content; a
  good file then replaces it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy, write_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import GuardProcess
from tests.fakes.guard_process import StartGuard

IN_FLIGHT = 8
UPSTREAM_DELAY_S = 2.0
DRAIN_TIMEOUT_S = 10.0


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_drains_in_flight_requests_and_refuses_new_ones(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.SLOW, delay_s=UPSTREAM_DELAY_S)) as upstream:
        guard = start_guard(upstream.url, fault_policy(), ("--drain-timeout", str(DRAIN_TIMEOUT_S)))
        results: dict[int, int | str] = {}

        def call(n: int) -> None:
            try:
                response = httpx.post(guard.url + CHAT, json=chat(f"inflight-{n}"), timeout=30)
                results[n] = response.status_code
            except httpx.HTTPError as exc:
                results[n] = type(exc).__name__

        # A caller with an open keep-alive connection (opened by a request the guard refuses at once).
        keep_alive = httpx.Client(timeout=5)
        assert keep_alive.post(guard.url + CHAT, content=b"{", headers={"content-type": "application/json"}).status_code == 400
        threads = [threading.Thread(target=call, args=(n,)) for n in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        _wait_for(lambda: len(upstream.recorded()) == IN_FLIGHT, 10, "requests to reach the upstream")
        signalled = time.monotonic()
        guard.signal(signal.SIGTERM)

        # On the open connection and on new ones, a new request gets an API-shaped 503 while draining.
        _wait_for(lambda: _draining(guard), 5, "/readyz to report draining")
        response = keep_alive.post(guard.url + CHAT, json=chat("late"))
        keep_alive.close()
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "shutting_down"
        assert guard.metric("guard_rejected_requests_total", reason="shutting_down") == 1
        late: list[int | str] = []
        while time.monotonic() - signalled < UPSTREAM_DELAY_S / 2:
            try:
                late.append(httpx.post(guard.url + CHAT, json=chat("late"), timeout=5).status_code)
            except httpx.ConnectError:
                late.append("refused")
            time.sleep(0.05)
        for thread in threads:
            thread.join(30)
        code = guard.wait_exit(DRAIN_TIMEOUT_S + 5)
        elapsed = time.monotonic() - signalled

    assert results == {n: 200 for n in range(IN_FLIGHT)}, results
    assert late and set(late) == {503}, late
    assert code == 0, guard.logs()[-2000:]
    assert elapsed < DRAIN_TIMEOUT_S + 3
    bodies = [r.body for r in upstream.recorded()]
    for n in range(IN_FLIGHT):
        assert sum(f"inflight-{n}\"".encode() in b for b in bodies) == 1  # exactly once upstream
    assert not any(b"late" in b for b in bodies)  # refused while draining means never forwarded


def _draining(guard: GuardProcess) -> bool:
    try:
        return httpx.get(guard.admin_url + "/readyz", timeout=1).status_code == 503
    except httpx.TransportError:
        return False


def test_sigterm_past_the_drain_timeout_still_exits(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.BLACKHOLE)) as upstream:
        guard = start_guard(upstream.url, fault_policy(), ("--drain-timeout", "1"))
        thread = threading.Thread(
            target=lambda: httpx.post(guard.url + CHAT, json=chat("stuck"), timeout=30), daemon=True
        )
        thread.start()
        _wait_for(lambda: len(upstream.recorded()) == 1, 10, "the request to reach the upstream")
        signalled = time.monotonic()
        guard.signal(signal.SIGTERM)
        guard.wait_exit(15)
        assert time.monotonic() - signalled < 8


def _reloads(guard: GuardProcess, result: str) -> float:
    return guard.metric("guard_policy_reloads_total", result=result)


def _policy_version(guard: GuardProcess) -> str:
    for line in guard.metrics_text().splitlines():
        if line.startswith("guard_policy_info{"):
            return line.split('version="', 1)[1].split('"', 1)[0]
    raise AssertionError("no guard_policy_info")


def _broken(kind: str) -> str:
    if kind == "bad_yaml":
        return "name: faults\nversion: '2'\ntiers: [unclosed\n"
    policy = fault_policy(version="2", limited_output_action="block")
    if kind == "unknown_key":
        policy["tiers"]["limited"]["surprise"] = True
    else:
        policy["detectors"][0]["factory"] = "tests.fakes.no_such_module:Nothing"
    return str(yaml.safe_dump(policy, sort_keys=False))


@pytest.mark.parametrize("kind", ["bad_yaml", "unknown_key", "unloadable_detector"])
def test_a_broken_policy_reload_keeps_the_running_policy(start_guard: StartGuard, tmp_path: Path, kind: str) -> None:
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        path = write_policy(tmp_path / "live.yaml", fault_policy(version="1"))
        guard = start_guard(upstream.url, path)
        assert _policy_version(guard) == "1"

        path.write_text(_broken(kind))
        guard.signal(signal.SIGHUP)
        _wait_for(lambda: _reloads(guard, "failure") >= 1, 20, "the failed reload to be counted")
        assert _policy_version(guard) == "1"
        response = httpx.post(guard.url + CHAT, json=chat(f"say {MARKER}"), timeout=10)
        assert response.status_code == 200 and response.headers["x-guard-decision"] == "redact"
        assert all(MARKER.encode() not in r.body for r in upstream.recorded())
        assert "unclosed" not in guard.logs()  # the file's content is not logged
        assert httpx.get(guard.admin_url + "/readyz", timeout=5).status_code == 200

        # A good file then takes over: version 2 blocks what version 1 redacted on input.
        good = fault_policy(version="2")
        good["tiers"]["limited"]["input"]["pii"]["medium"]["action"] = "block"
        write_policy(path, good)
        guard.signal(signal.SIGHUP)
        _wait_for(lambda: _policy_version(guard) == "2", 20, "the good reload")
        assert _reloads(guard, "success") >= 1
        response = httpx.post(guard.url + CHAT, json=chat(f"say {MARKER}"), timeout=10)
        assert response.status_code == 400 and response.headers["x-guard-decision"] == "block"
