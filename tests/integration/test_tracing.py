"""OpenTelemetry traces from a running `guard serve` (issue 13), exported over OTLP/HTTP to a real receiver on
loopback: one trace per request with child spans for the codec, each detector, the decision, the review hold
and the upstream call; the caller's `traceparent` is the parent; the trace id is on the decision log line;
and none of the planted personal-data markers is in any span, attribute or log line.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.fakes.guard_process import REPO, GuardProcess
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.fakes.upstream import FakeUpstream

# policies/escalate.yaml: pattern PII only (starts in a second), and a deferred route that holds a card for
# review at once, so the review-hold span is exercised without waiting for a person.
POLICY = REPO / "policies" / "escalate.yaml"
MARKERS = [
    f"{name}{i}@trace-marker.example" for i in range(5) for name in ("alice", "bob")
] + [f"+1 415 555 01{i:02d}" for i in range(10)]
CARD = "4539578763621486"
SERVER, CLIENT = 2, 3  # OTLP SpanKind values


@dataclass(frozen=True)
class Traced:
    receiver: OtlpReceiver
    guard: GuardProcess
    request_ids: list[str]
    openmetrics: str
    plain_metrics: str


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    workdir = tmp_path_factory.mktemp("tracing")
    tokens = workdir / "tokens.yaml"
    digest = hashlib.sha256(b"tracing").hexdigest()
    tokens.write_text(f"- {{name: r, role: reviewer, token_sha256: {digest}}}\n")
    with OtlpReceiver() as receiver, FakeUpstream() as upstream:
        guard = GuardProcess(
            upstream.url, POLICY, workdir,
            extra_args=[
                "--review-store", f"sqlite://{workdir / 'review.db'}", "--tokens", str(tokens), "--log-level", "debug",
            ],
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_SERVICE_NAME": "guard-under-test",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            },
        )
        with guard:
            request_ids = []
            with httpx.Client(timeout=60) as client:
                for i in range(0, len(MARKERS), 2):
                    text = f"Write to {MARKERS[i]} or call {MARKERS[i + 1]} about the invoice."
                    reply = client.post(
                        guard.url + "/v1/chat/completions",
                        json={"model": "m", "messages": [{"role": "user", "content": text}]},
                    )
                    assert reply.status_code == 200, reply.text
                    request_ids.append(reply.headers["x-guard-request-id"])
                held = client.post(
                    guard.url + "/v1/batch/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": f"card {CARD}"}]},
                )
                assert held.status_code == 202, held.text
                request_ids.append(held.headers["x-guard-request-id"])
                parent = client.post(
                    guard.url + "/v1/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
                    headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                )
                assert parent.status_code == 200
                request_ids.append(parent.headers["x-guard-request-id"])
                openmetrics = client.get(
                    guard.admin_url + "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
                ).text
                plain = client.get(guard.admin_url + "/metrics").text
            expected = len(request_ids)
            receiver.wait_for(
                lambda spans: sum(s.name == "guard.exchange" for s in spans) >= expected, timeout_s=20
            )
        yield Traced(receiver, guard, request_ids, openmetrics, plain)


def _traces(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    out: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        out[span.trace_id].append(span)
    return out


def test_one_trace_per_request_with_the_child_spans(traced: Traced) -> None:
    receiver, request_ids = traced.receiver, traced.request_ids
    traces = _traces(receiver.spans)
    roots = [s for s in receiver.spans if s.name == "guard.exchange"]
    assert len(roots) == len(request_ids) == len(traces)
    for trace_id, spans in traces.items():
        (root,) = [s for s in spans if s.name == "guard.exchange"]
        assert root.kind == SERVER and root.resource["service.name"] == "guard-under-test"
        assert root.attributes["guard.route"] in {"chat", "batch"}
        assert root.attributes["gen_ai.operation.name"] == "chat"
        names = {s.name for s in spans}
        assert {"guard.codec.extract", "guard.detector", "guard.decide"} <= names, (trace_id, names)
        for span in spans:
            if span is not root:
                assert span.parent_span_id, f"{span.name} is not inside the exchange"
        if root.attributes["guard.route"] == "chat":
            (upstream,) = [s for s in spans if s.name == "guard.upstream"]
            assert upstream.kind == CLIENT and upstream.attributes["http.response.status_code"] == 200
            assert root.attributes["guard.input.verdict"] == "redact" or root.attributes["guard.input.verdict"] == "allow"
            assert "guard.output.verdict" in root.attributes
        detectors = [s for s in spans if s.name == "guard.detector"]
        assert {s.attributes["guard.detector"] for s in detectors} == {"pii"}


def test_the_review_hold_has_its_span(traced: Traced) -> None:
    receiver = traced.receiver
    (hold,) = [s for s in receiver.spans if s.name == "guard.review.hold"]
    assert hold.attributes["guard.review.outcome"] == "deferred"
    (root,) = [s for s in receiver.spans if s.name == "guard.exchange" and s.trace_id == hold.trace_id]
    assert root.attributes["guard.input.verdict"] == "review"
    assert root.attributes["guard.input.categories"] == "pii"


def test_the_callers_traceparent_is_the_parent(traced: Traced) -> None:
    receiver = traced.receiver
    (root,) = [s for s in receiver.spans if s.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and s.name == "guard.exchange"]
    assert root.parent_span_id == "00f067aa0ba902b7"


def test_decision_log_lines_carry_the_trace_id(traced: Traced) -> None:
    receiver, guard = traced.receiver, traced.guard
    records = [json.loads(line) for line in guard.logs().splitlines() if line.startswith("{")]
    decisions = [r for r in records if r["logger"] == "guard.decisions"]
    assert len(decisions) >= len(_traces(receiver.spans))
    assert {r["trace_id"] for r in decisions} == set(_traces(receiver.spans))


def test_no_marker_in_any_span_attribute_or_log(traced: Traced) -> None:
    receiver, guard = traced.receiver, traced.guard
    exported = b"".join(receiver.raw_bodies)
    logs = guard.logs()
    everything = json.dumps([s.attributes for s in receiver.spans])
    for marker in [*MARKERS, CARD]:
        assert marker.encode() not in exported, marker
        assert marker not in everything and marker not in logs, marker
    # Nor any fragment a path or query string would add.
    assert b"/v1/chat/completions" not in exported


def test_latency_histograms_carry_trace_exemplars_in_openmetrics(traced: Traced) -> None:
    buckets = [
        line for line in traced.openmetrics.splitlines()
        if line.startswith("guard_overhead_seconds_bucket") and "# {" in line
    ]
    assert buckets and 'trace_id="' in buckets[0]
    assert set(_traces(traced.receiver.spans)) >= {b.split('trace_id="')[1].split('"')[0] for b in buckets}
    assert "# {" not in traced.plain_metrics  # the classic text format carries no exemplars
