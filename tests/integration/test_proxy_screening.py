"""The pipeline's actions over real HTTP, with a deterministic planted detector (`FaultDetector` finding
MARKER) so every outcome is exact: redact, block and review (not configured → fail closed) on the way in,
redact and refuse on the way out, audit records for every decision and a 503 when the audit sink fails."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from guard.app import Extras
from guard.audit.base import DecisionEvent
from guard.audit.jsonl import JsonlAuditSink
from guard.errors import AuditError
from guard.metrics import GuardMetrics
from guard.settings import GuardSettings
from tests.fakes.upstream import FakeUpstream, fake_upstream  # noqa: F401 - fixture
from tests.integration.proxy_harness import MARKER, GuardThread, chat_body, marker_policy

CHAT = "/v1/chat/completions"


def test_input_redact_reaches_upstream_as_placeholder(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    with GuardThread(fake_upstream.url, marker_policy(tmp_path)) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body(f"say {MARKER} twice: {MARKER}!"))
        assert response.status_code == 200
        assert response.headers["x-guard-decision"] == "redact"
        sent = fake_upstream.received[-1].json()
        assert sent["messages"][0]["content"] == "say <MARKER> twice: <MARKER>!"
        assert MARKER.encode() not in fake_upstream.received[-1].body
        assert guard.metric("guard_requests_total", direction="input", route="chat", decision="redact") == 1


def test_input_block_is_api_shaped_and_never_forwarded(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    with GuardThread(fake_upstream.url, marker_policy(tmp_path, input_action="block")) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body(f"x {MARKER}"))
        assert response.status_code == 400
        assert response.headers["x-guard-decision"] == "block"
        error = response.json()["error"]
        assert error["code"] == "content_filter"
        assert MARKER not in response.text
        assert fake_upstream.received == []


def test_review_without_a_gate_fails_closed(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    with GuardThread(fake_upstream.url, marker_policy(tmp_path, input_action="review")) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body(f"x {MARKER}"))
        assert response.status_code == 400
        assert response.headers["x-guard-decision"] == "block"
        assert "review is not configured" in response.json()["error"]["message"]
        assert fake_upstream.received == []


def test_output_redact_and_refusal(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    fake_upstream.script(reply=f"the answer is {MARKER}.")
    with GuardThread(fake_upstream.url, marker_policy(tmp_path)) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body("hello"))
        assert response.status_code == 200
        assert response.headers["x-guard-decision"] == "redact"
        assert response.json()["choices"][0]["message"]["content"] == "the answer is <MARKER>."
        assert response.headers["content-length"] == str(len(response.content))
    with GuardThread(fake_upstream.url, marker_policy(tmp_path, output_action="block")) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body("hello"))
        assert response.status_code == 200
        assert response.headers["x-guard-decision"] == "block"
        choice = response.json()["choices"][0]
        assert choice["message"]["content"] == "Refused by the test policy."
        assert choice["finish_reason"] == "content_filter"


def test_unknown_routes_block_or_pass(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    with GuardThread(fake_upstream.url, marker_policy(tmp_path, unknown_routes="block")) as guard:
        response = httpx.post(guard.url + "/v1/embeddings", json={"input": MARKER})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_route"
        assert guard.metric("guard_rejected_requests_total", reason="unknown_route") == 1
        assert fake_upstream.received == []
    with GuardThread(fake_upstream.url, marker_policy(tmp_path, unknown_routes="pass")) as guard:
        response = httpx.post(guard.url + "/v1/embeddings", json={"input": "x"})
        assert response.status_code == 200
        assert "x-guard-decision" not in response.headers  # not screened, and says so by omission
        assert fake_upstream.received[-1].path == "/v1/embeddings"


def test_detector_failure_fails_closed(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    with GuardThread(fake_upstream.url, marker_policy(tmp_path, mode="raise")) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body("anything"))
        assert response.status_code == 400
        assert response.headers["x-guard-decision"] == "block"
        assert "exploded" not in response.text
        assert guard.metric("guard_fail_mode_total", direction="input", mode="closed") == 1


def _audit_extras(path: Path) -> object:
    async def open_audit(settings: GuardSettings, metrics: GuardMetrics) -> Extras:
        sink = JsonlAuditSink(path, b"k" * 32, fsync=False)
        await sink.open()
        return Extras(audit_sink=sink, closers=[sink.aclose])

    return open_audit


def test_every_decision_is_audited(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    log = tmp_path / "audit.jsonl"
    with GuardThread(fake_upstream.url, marker_policy(tmp_path), extras=_audit_extras(log)) as guard:  # type: ignore[arg-type]
        response = httpx.post(guard.url + CHAT, json=chat_body(f"x {MARKER}"))
        assert response.status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2  # input (redact) and output (allow)
    assert MARKER not in log.read_text()


class _AppendingSink:
    """A minimal real `AuditSink`: one line per decision, appended to a file it reopens each time, raising
    `AuditError` (as the real sinks do) when the write fails."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def append(self, event: DecisionEvent) -> None:
        try:
            with self.path.open("a") as handle:
                handle.write(event.decision.action.value + "\n")
        except OSError as exc:
            raise AuditError("audit write failed") from exc

    async def aclose(self) -> None:
        return None


def test_audit_failure_refuses_with_503(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    log = tmp_path / "audit.log"
    sink = _AppendingSink(log)

    async def extras(settings: GuardSettings, metrics: GuardMetrics) -> Extras:
        return Extras(audit_sink=sink)

    with GuardThread(fake_upstream.url, marker_policy(tmp_path), extras=extras) as guard:
        assert httpx.post(guard.url + CHAT, json=chat_body("hello")).status_code == 200
        assert log.read_text().splitlines() == ["allow", "allow"]
        log.unlink()
        log.mkdir()  # the next append fails with a real filesystem error
        response = httpx.post(guard.url + CHAT, json=chat_body("hello"))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "audit_unavailable"
        assert guard.metric("guard_audit_write_failures_total") == 1
        assert len(fake_upstream.received) == 1  # the refused request never reached the upstream
        log.rmdir()
        assert httpx.post(guard.url + CHAT, json=chat_body("hello")).status_code == 200


class _BrokenGate:
    """A `ReviewGate` that breaks its contract (it must never raise): what reaches the outermost boundary."""

    async def hold(self, request: object) -> object:
        raise RuntimeError("gate bug quoting secret-value-123")


def test_unhandled_error_is_a_fixed_500_and_counted(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    async def extras(settings: GuardSettings, metrics: GuardMetrics) -> Extras:
        return Extras(review_gate=_BrokenGate())  # type: ignore[arg-type]

    with GuardThread(fake_upstream.url, marker_policy(tmp_path, input_action="review"), extras=extras) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body(f"x {MARKER}"))
        assert response.status_code == 500
        assert response.json() == {
            "error": {"message": "The guard failed to handle this request.", "type": "server_error",
                      "param": None, "code": "internal_error"}
        }
        assert "secret-value" not in response.text
        assert guard.metric("guard_unhandled_errors_total") == 1
        assert fake_upstream.received == []
        ok = httpx.post(guard.url + CHAT, json=chat_body("no marker"))
        assert ok.status_code == 200


def test_tool_call_arguments_in_a_prompt_are_screened(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    # An earlier assistant turn's tool call re-sent by the client: its arguments are model-written text
    # that can carry personal data, so they are redacted like content, in place.
    body = chat_body("send it")
    body["messages"].append({
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "send", "arguments": json.dumps({"note": f"to {MARKER}"})}}],
    })
    with GuardThread(fake_upstream.url, marker_policy(tmp_path)) as guard:
        response = httpx.post(guard.url + CHAT, json=body)
        assert response.status_code == 200
        assert response.headers["x-guard-decision"] == "redact"
        sent = fake_upstream.received[-1].json()
        arguments = json.loads(sent["messages"][-1]["tool_calls"][0]["function"]["arguments"])
        assert arguments == {"note": "to <MARKER>"}
        assert MARKER.encode() not in fake_upstream.received[-1].body
