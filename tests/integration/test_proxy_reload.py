"""Policy reload in a running `guard serve`: a new file that names a new detector has it built and loaded
before the swap, and takes effect without a restart; a file whose detector cannot be built is refused and
the running policy keeps serving."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import yaml

from tests.fakes.upstream import FakeUpstream, fake_upstream  # noqa: F401 - fixture
from tests.integration.proxy_harness import MARKER, GuardThread, chat_body, marker_policy

CHAT = "/v1/chat/completions"
SECOND = "OTHER-MARKER-5512"


def _wait_for(guard: GuardThread, result: str, count: float, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while guard.metric("guard_policy_reloads_total", result=result) < count:
        assert time.monotonic() < deadline, f"no reload {result} within {timeout_s}s"
        time.sleep(0.1)


def test_reload_loads_new_detectors_then_swaps(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    path = marker_policy(tmp_path)
    with GuardThread(fake_upstream.url, path) as guard:
        assert httpx.post(guard.url + CHAT, json=chat_body(SECOND)).headers["x-guard-decision"] == "allow"

        policy = yaml.safe_load(path.read_text())
        second = dict(policy["detectors"][0], name="second")
        second["settings"] = dict(second["settings"], marker=SECOND)
        policy["detectors"].append(second)
        policy["version"] = "2"
        path.write_text(yaml.safe_dump(policy, sort_keys=False))
        _wait_for(guard, "success", 1)

        response = httpx.post(guard.url + CHAT, json=chat_body(f"{SECOND} and {MARKER}"))
        assert response.headers["x-guard-decision"] == "redact"
        assert fake_upstream.received[-1].json()["messages"][0]["content"] == "<MARKER> and <MARKER>"  # type: ignore[index]
        assert 'version="2"' in guard.metrics_text()

        # A detector that cannot be built vetoes the reload: version 2 keeps serving.
        policy["detectors"].append(dict(second, name="broken", factory="tests.fakes.nowhere:Nothing"))
        policy["version"] = "3"
        path.write_text(yaml.safe_dump(policy, sort_keys=False))
        _wait_for(guard, "failure", 1)
        response = httpx.post(guard.url + CHAT, json=chat_body(f"{SECOND}!"))
        assert response.headers["x-guard-decision"] == "redact"
        assert 'version="2"' in guard.metrics_text()
