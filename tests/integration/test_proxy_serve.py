"""`guard serve` as a real process: SIGTERM drains (the listener closes, requests on open connections get
503, the request in flight finishes, exit 0), and `--demo` gives a working guard with one command."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.fakes.guard_process import REPO, GuardProcess, free_port
from tests.fakes.upstream import FakeUpstream, fake_upstream  # noqa: F401 - fixture
from tests.integration.proxy_harness import PASSTHROUGH_POLICY, chat_body

CHAT = "/v1/chat/completions"


def test_sigterm_drains_in_flight_and_answers_new_with_503(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    with GuardProcess(fake_upstream.url, PASSTHROUGH_POLICY, tmp_path, extra_args=["--drain-timeout", "20"]) as guard:
        with httpx.Client(base_url=guard.url, timeout=30) as idle_client:
            assert idle_client.post(CHAT, json=chat_body("warm")).status_code == 200  # an open keep-alive connection
            fake_upstream.script(delay_s=2.0, reply="slow but complete")
            fake_upstream.arrived.clear()
            result: dict[str, httpx.Response] = {}
            slow = threading.Thread(target=lambda: result.setdefault("r", httpx.post(guard.url + CHAT, json=chat_body("slow"), timeout=30)))
            slow.start()
            assert fake_upstream.arrived.wait(10)  # the slow request is in flight
            guard.signal(signal.SIGTERM)
            # Draining: readiness fails first, so the platform stops routing here.
            while httpx.get(guard.admin_url + "/readyz").status_code == 200:
                pass
            refused = idle_client.post(CHAT, json=chat_body("too late"))
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
            fresh = httpx.post(guard.url + CHAT, json=chat_body("new connection"), timeout=5)
            assert fresh.status_code == 503  # a new connection too: the listener stays open while draining
            assert fresh.json()["error"]["code"] == "shutting_down"
            slow.join(30)
            assert result["r"].status_code == 200
            assert result["r"].json()["choices"][0]["message"]["content"] == "slow but complete"
        assert guard.wait_exit(30) == 0


@pytest.mark.model
def test_demo_serves_with_one_command(tmp_path: Path) -> None:
    port, admin_port = free_port(), free_port()
    log = (tmp_path / "demo.err").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "guard", "serve", "--demo", "--port", str(port), "--admin-port", str(admin_port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        guard = GuardProcess("unused", None, tmp_path)
        guard.port, guard.admin_port, guard.proc = port, admin_port, proc  # reuse its readiness polling
        guard.wait_ready()
        response = httpx.post(
            f"http://127.0.0.1:{port}{CHAT}", json=chat_body("Mail jane.doe@example.com please"), timeout=30
        )
        assert response.status_code == 200
        assert response.headers["x-guard-decision"] == "redact"
        assert response.json()["choices"][0]["message"]["content"] == "You said: Mail <EMAIL_ADDRESS> please"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_a_detector_that_cannot_be_built_stops_the_start(tmp_path: Path) -> None:
    import yaml

    from tests.integration.proxy_harness import marker_policy

    path = marker_policy(tmp_path)
    policy = yaml.safe_load(path.read_text())
    policy["detectors"][0]["factory"] = "tests.fakes.nowhere:Nothing"
    path.write_text(yaml.safe_dump(policy))
    result = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "guard", "serve", "--upstream", "http://127.0.0.1:9", "--policy", str(path),
         "--port", str(free_port()), "--admin-port", str(free_port())],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "tests.fakes.nowhere:Nothing" in result.stderr
    assert "Traceback" not in result.stderr
