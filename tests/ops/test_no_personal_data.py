"""Personal data planted in the traffic (names, emails, tokens unique to this run) appears nowhere in what
operators see: not in `/metrics`, not in any label Prometheus stored, not in the guard's logs. The logs are
JSON, one object per line, and say which request they are about without saying what it contained."""

from __future__ import annotations

import pytest

from tests.ops.conftest import LiveStack
from tests.ops.live import FAULT_TRIGGER, json_log_lines

pytestmark = pytest.mark.prometheus

# The fault detector's exception message (tests/fakes/detectors.py): internal text that must not leak.
SECRET = "internal-detail"


def planted(live: LiveStack) -> list[str]:
    markers = live.traffic.markers
    assert len(markers) >= 45, "the traffic should have planted markers"
    return [*markers, SECRET, FAULT_TRIGGER]


def test_markers_are_not_in_metrics(live: LiveStack) -> None:
    text = live.guard.metrics_text()
    leaked = [m for m in planted(live) if m in text]
    assert not leaked, leaked


def test_markers_are_not_in_any_label_prometheus_stored(live: LiveStack) -> None:
    prom = live.prometheus
    values: list[str] = []
    for label in prom.api("labels"):
        values += prom.api(f"label/{label}/values")
    blob = "\n".join(values)
    assert "guard_requests_total" in blob
    leaked = [m for m in planted(live) if m in blob]
    assert not leaked, leaked


def test_markers_are_not_in_the_logs_and_every_line_is_json(live: LiveStack) -> None:
    text = live.guard.logs()
    records = json_log_lines(text)  # raises on a line that is not JSON
    assert len(records) > 20
    # The guard ran at debug level, the chattiest there is, and still logged none of the markers.
    assert any(r["level"] == "debug" for r in records)
    leaked = [m for m in planted(live) if m in text]
    assert not leaked, leaked
    for record in records:
        assert {"time", "level", "logger", "message", "request_id"} <= set(record), record


def test_request_level_logs_carry_the_request_id(live: LiveStack) -> None:
    records = json_log_lines(live.guard.logs())
    failures = [r for r in records if r["message"] == "detector failed"]
    assert failures, "the fault detector's failures should be logged"
    for record in failures:
        assert record["detector"] == "fault" and record["error_type"] == "RuntimeError"
        assert len(str(record["request_id"])) >= 16


def test_markers_are_not_in_the_audit_log(live: LiveStack) -> None:
    audit = live.guard.log_path.parent / "audit.jsonl"
    text = audit.read_text(encoding="utf-8")
    assert len(text.splitlines()) >= live.traffic.sent - 1, "every screened request is audited"
    leaked = [m for m in planted(live) if m in text]
    assert not leaked, leaked
