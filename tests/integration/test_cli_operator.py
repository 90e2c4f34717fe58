"""The CLI as an operator meets it (issue 13): version, settings from the environment, quiet start-up with the
listening addresses, one decision line per request, clear one-line errors and exit codes, strict JSON.

Every case runs the real `guard` in a subprocess; each failed on the code before this change.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.guard_process import free_port
from tests.fakes.upstream import FakeUpstream

REPO = Path(__file__).resolve().parents[2]

# A policy with one regex detector: starts in well under a second, so these tests pay for no model.
RULES_POLICY = """\
name: rules_only
version: "1"
detectors:
  - kind: rules
    name: words
    rules:
      - name: forbidden
        patterns: ['\\bforbidden\\b']
routes:
  - name: chat
    path: /v1/chat/completions
    codec: {kind: openai_chat}
default_tier: limited
tiers:
  limited:
    input:
      custom:
        high: {min_score: 0.5, action: block}
"""


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARD_")}
    return {**base, "PYTHONPATH": str(REPO), **extra}


def _guard(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guard", *args], input=stdin, capture_output=True, text=True, cwd=REPO,
        timeout=240, check=False, env=env or _env(),
    )


@pytest.fixture
def rules_policy(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_POLICY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream()
    with server:
        yield server


def _wait_ready(proc: subprocess.Popen[str], admin_port: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"guard exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{admin_port}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("guard not ready in time")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    return err


def test_version_flag_prints_the_version() -> None:
    done = _guard("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("guard ") and len(done.stdout.split()) == 2


def test_schema_into_a_closed_pipe_is_not_a_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "policy", "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=REPO, env=_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    # `| head -1` that has already left: the reader's end is closed before the schema is written (it is
    # smaller than a pipe buffer, so closing after reading a line would race the writer).
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_scan_fail_on_gates_the_exit_status(rules_policy: Path) -> None:
    blocked = _guard("scan", "--policy", str(rules_policy), "--fail-on", "block", stdin="this is forbidden")
    assert blocked.returncode == 3, blocked.stderr
    assert json.loads(blocked.stdout)["action"] == "block"
    clean = _guard("scan", "--policy", str(rules_policy), "--fail-on", "block", stdin="all fine")
    assert clean.returncode == 0, clean.stderr
    ungated = _guard("scan", "--policy", str(rules_policy), stdin="this is forbidden")
    assert ungated.returncode == 0


def test_eval_json_is_strict_json_when_a_rate_has_no_trials(rules_policy: Path, tmp_path: Path) -> None:
    rows = tmp_path / "benign.jsonl"
    # Only benign rows: recall and precision have no trials, which used to print the bare token NaN.
    rows.write_text(
        "\n".join(json.dumps({"text": t, "label": 0, "category": "benign"}) for t in ("hello", "thanks")) + "\n"
    )
    done = _guard("eval", "--dataset", str(rows), "--policy", str(rules_policy), "--json")
    assert done.returncode == 0, done.stderr

    def refuse(token: str) -> object:
        raise AssertionError(f"non-standard JSON token {token}")

    json.loads(done.stdout, parse_constant=refuse)


def test_port_in_use_is_one_clear_line_and_exit_2(rules_policy: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _guard(
            "serve", "--upstream", "http://127.0.0.1:9", "--policy", str(rules_policy),
            "--port", str(port), "--admin-port", "0",
        )
    assert done.returncode == 2
    assert f"guard serve: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Task exception was never retrieved" not in done.stderr and "Traceback" not in done.stderr


def test_a_bad_environment_value_names_its_variable(rules_policy: Path) -> None:
    done = _guard("serve", env=_env(GUARD_UPSTREAM="http://127.0.0.1:9", GUARD_PORT="80x"))
    assert done.returncode == 2
    assert "GUARD_PORT='80x'" in done.stderr


def test_serve_takes_every_setting_from_the_environment(
    rules_policy: Path, upstream: FakeUpstream, tmp_path: Path
) -> None:
    port, admin_port = free_port(), free_port()
    (tmp_path / "upstream.txt").write_text(upstream.url + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "serve"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
        env=_env(
            GUARD_UPSTREAM_FILE=str(tmp_path / "upstream.txt"),  # *_FILE: the value from a mounted file
            GUARD_POLICY=str(rules_policy), GUARD_PORT=str(port), GUARD_ADMIN_PORT=str(admin_port),
        ),
    )
    try:
        _wait_ready(proc, admin_port)
        chat = {"model": "m", "messages": [{"role": "user", "content": "this is forbidden"}]}
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat, timeout=30)
        assert reply.status_code == 400  # GUARD_POLICY's rule, not the shipped default
    finally:
        err = _stop(proc)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    listening = [line for line in lines if line["message"] == "guard listening"]
    assert listening and listening[0]["proxy_url"] == f"http://127.0.0.1:{port}"
    assert listening[0]["admin_url"] == f"http://127.0.0.1:{admin_port}"
    decisions = [line for line in lines if line["logger"] == "guard.decisions"]
    assert decisions and decisions[0]["verdict"] == "block" and decisions[0]["route"] == "chat"
    assert "forbidden" not in err  # the decision line names categories, never text


@pytest.mark.model
def test_demo_start_up_is_short_and_numbers_add_no_warnings(tmp_path: Path) -> None:
    """The shipped default policy (presidio, spaCy, the classifier heads): at most 10 start-up lines, one of
    them with the listening addresses, and no library warnings for texts with numbers."""
    port, admin_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guard", "serve", "--no-decision-log"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env=_env(GUARD_DEMO="1", GUARD_PORT=str(port), GUARD_ADMIN_PORT=str(admin_port)),
    )
    try:
        _wait_ready(proc, admin_port)
        with httpx.Client(timeout=60) as client:
            for i in range(100):
                text = f"I bought {i + 3} apples for {i * 7} dollars on 2024-0{i % 9 + 1}-1{i % 10} at 10:{i % 60:02d}"
                chat = {"model": "m", "messages": [{"role": "user", "content": text}]}
                assert client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat).status_code == 200
    finally:
        err = _stop(proc)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    start_up = lines[: next(i for i, line in enumerate(lines) if line["message"] == "guard listening") + 1]
    assert len(start_up) <= 10, [line["message"] for line in start_up]
    warnings = [line["message"] for line in lines if line["level"] in {"warning", "error"}]
    assert warnings == []
