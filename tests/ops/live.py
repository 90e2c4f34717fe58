"""The live stack the ops tests share: a real `guard serve --demo` (the in-process echo model as upstream),
a real Prometheus scraping its admin port every second with the shipped alert rules loaded, and a fixed
mix of traffic through the guard that touches every panel of the dashboard.

The policy is `policies/default.yaml` with test-only additions: the tier header trusted from loopback; a `FaultDetector` (tests/fakes) that
raises on texts containing `FAULT_TRIGGER`, so detector errors and both fail modes happen for real; and
card numbers in prompts of the `limited` tier held for review for 2 s, then blocked, so the review metrics
move. Every prompt carries personal-data markers unique to this run; `Traffic.markers` lists them.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import httpx
import yaml

from tests.fakes.guard_process import REPO, free_port

FAULT_TRIGGER = "FAULT-TRIGGER-7731"
REVIEW_TIMEOUT_S = 2.0
CHAT = "/v1/chat/completions"


def ops_policy(path: Path) -> Path:
    policy: dict[str, Any] = yaml.safe_load((REPO / "policies" / "default.yaml").read_text(encoding="utf-8"))
    policy["version"] = "ops-test-1"
    policy["detectors"].append(
        {
            "kind": "plugin",
            "name": "fault",
            "factory": "tests.fakes.detectors:FaultDetector",
            "reports": ["manipulation"],
            "settings": {"mode": "raise", "fault_on": FAULT_TRIGGER},
        }
    )
    # The fault detector only runs where its category has a table row.
    for tier, action in (("limited", "block"), ("minimal", "log")):
        for direction in ("input", "output"):
            policy["tiers"][tier][direction]["manipulation"] = {"high": {"min_score": 0.9, "action": action}}
    limited = policy["tiers"]["limited"]
    limited["review"] = {"timeout_s": REVIEW_TIMEOUT_S, "on_timeout": "block"}
    limited["input"]["pii"]["by_label"]["CREDIT_CARD"] = {"medium": {"min_score": 0.5, "action": "review"}}
    # The traffic picks tiers with the header from loopback; the shipped policy trusts no source.
    policy["tier_header"]["trusted_sources"] = ["127.0.0.1/32"]
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path


class GuardServe:
    """`guard serve --demo` on free loopback ports, logs to files; ready when `/readyz` answers 200."""

    def __init__(self, workdir: Path, policy: Path, log_level: str = "debug") -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = workdir / "guard.log"
        self.args = [
            sys.executable, "-m", "guard", "serve", "--demo",
            "--port", str(self.port), "--admin-port", str(self.admin_port),
            "--policy", str(policy), "--log-level", log_level,
            "--review-store", f"sqlite://{workdir / 'review.db'}",
            "--audit-path", str(workdir / "audit.jsonl"),
            "--tokens-file", str(self._tokens(workdir)),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: BinaryIO | None = None

    @staticmethod
    def _tokens(workdir: Path) -> Path:
        path = workdir / "tokens.yaml"
        digest = hashlib.sha256(b"ops-test-reviewer-token").hexdigest()
        path.write_text(f"- {{name: ops, role: reviewer, token_sha256: {digest}}}\n", encoding="utf-8")
        return path

    def __enter__(self) -> GuardServe:
        self._log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            self.args, cwd=REPO, stdout=self._log_file, stderr=subprocess.STDOUT,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(self.log_path.parent)},
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"guard exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                if httpx.get(self.admin_url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"guard not ready in 180 s:\n{self.logs()[-4000:]}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics_text(self) -> str:
        response = httpx.get(self.admin_url + "/metrics", timeout=5.0)
        response.raise_for_status()
        return response.text


@dataclass
class Traffic:
    """What the test sent and what the guard answered, for checking the metrics against."""

    markers: list[str] = field(default_factory=list)
    # (kind of request, x-guard-decision header) -> count
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    sent: int = 0
    finished_at: float = 0.0


def _chat(content: str, stream: bool = False) -> dict[str, Any]:
    return {"model": "demo", "messages": [{"role": "user", "content": content}], "stream": stream}


def drive(url: str) -> Traffic:
    """Send the fixed traffic mix; every prompt carries fresh personal-data markers."""
    run = uuid.uuid4().hex[:10]
    traffic = Traffic()

    def marker_text() -> str:
        tag = uuid.uuid4().hex[:8]
        email = f"zq{tag}.{run}@example.org"
        name = f"Zorbalina Quexton{tag[:3]}"
        traffic.markers += [email, f"zq{tag}", name]
        return f"My name is {name}, write to {email} about the invoice."

    def send(kind: str, body: dict[str, Any], tier: str | None = None, raw: bytes | None = None) -> httpx.Response:
        headers = {"x-guard-tier": tier} if tier else {}
        if raw is not None:
            response = client.post(CHAT, content=raw, headers={**headers, "content-type": "application/json"})
        else:
            response = client.post(CHAT, json=body, headers=headers)
        traffic.sent += 1
        traffic.statuses[response.status_code] += 1
        traffic.answers[(kind, response.headers.get("x-guard-decision", ""))] += 1
        return response

    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i in range(6):
            send("clean", _chat(f"Write a short poem about the sea, verse {i} of run {run}."))
        for _ in range(6):
            send("pii", _chat(marker_text()))
        repeated = marker_text()
        for _ in range(3):  # the same text again: screening cache hits
            send("repeat", _chat(repeated))
        card = "4111 1111 1111 1111"
        send("card_high", _chat(f"{marker_text()} Card {card}."), tier="high")
        send("minimal", _chat(marker_text()), tier="minimal")  # log only: shadow actions
        send("fail_open", _chat(f"{marker_text()} {FAULT_TRIGGER}"), tier="minimal")
        send("fail_closed", _chat(f"{marker_text()} {FAULT_TRIGGER}"))
        send("review", _chat(f"{marker_text()} Please charge card {card}."))  # held, times out, blocked
        send("malformed", {}, raw=b'{"model": "demo", "messages": [')
        for _ in range(4):
            with client.stream("POST", CHAT, json=_chat(marker_text() + " " + "and more words " * 20, True)) as r:
                body = b"".join(r.iter_bytes())
                traffic.sent += 1
                traffic.statuses[r.status_code] += 1
                traffic.answers[("stream", r.headers.get("x-guard-decision", ""))] += 1
                assert body.rstrip().endswith(b"data: [DONE]"), body[-200:]
    traffic.finished_at = time.time()
    return traffic


def json_log_lines(text: str) -> list[dict[str, Any]]:
    """Every log line parsed as JSON; a line that is not JSON fails the caller's assertion."""
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out
