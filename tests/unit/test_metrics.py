"""GuardMetrics: names follow the conventions, known label sets exist at zero, closed labels stay closed,
and the generated reference page is current."""

from __future__ import annotations

import importlib
import re

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from guard.metrics import LABELS, OTHER, GuardMetrics, RejectReason, status_class
from guard.types import Action, Category, Direction, FailureReason, Verdict


def fresh() -> tuple[CollectorRegistry, GuardMetrics]:
    registry = CollectorRegistry()
    metrics = GuardMetrics(registry, version="1.2.3")
    metrics.prepare([("pii", [Category.PII]), ("inj", [Category.PROMPT_INJECTION])], ["chat", "completions"])
    return registry, metrics


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float:
    return samples(registry)[(metric, tuple(sorted(labels.items())))]


def test_names_follow_the_conventions() -> None:
    registry, _ = fresh()
    units = ("_seconds", "_bytes", "_texts", "_items", "_total", "_info")
    for family in registry.collect():
        exported = family.name + {"counter": "_total", "info": "_info"}.get(family.type, "")
        if exported.startswith(("process_", "python_")):
            continue  # prometheus_client's standard process and platform collectors, named by the library
        assert exported.startswith("guard_"), exported
        if family.type == "gauge" and exported == "guard_ready":
            continue  # a boolean state gauge has no unit
        assert exported.endswith(units), f"{exported} lacks a unit suffix"
        if family.type == "counter":
            assert exported.endswith("_total")


def test_every_known_combination_is_exported_at_zero_before_any_traffic() -> None:
    registry, _ = fresh()
    for direction in Direction:
        for route in ("chat", "completions"):
            for verdict in Verdict:
                assert value(
                    registry, "guard_requests_total", direction=direction.value, route=route, decision=verdict.value
                ) == 0
            for action in Action:
                assert value(
                    registry, "guard_shadow_actions_total", direction=direction.value, route=route,
                    action=action.value,
                ) == 0
    for detector in ("pii", "inj"):
        for reason in FailureReason:
            assert value(registry, "guard_detector_errors_total", detector=detector, reason=reason.value) == 0
        assert value(registry, "guard_detector_duration_seconds_count", detector=detector) == 0
    assert value(registry, "guard_findings_total", detector="pii", category="pii") == 0
    assert value(registry, "guard_fail_mode_total", direction="output", mode="open") == 0
    assert value(registry, "guard_policy_reloads_total", result="failure") == 0
    assert value(registry, "guard_review_outcomes_total", outcome="timeout") == 0
    assert value(registry, "guard_upstream_request_duration_seconds_count", status_class="5xx") == 0
    assert value(registry, "guard_rejected_requests_total", reason=RejectReason.BODY_TOO_LARGE) == 0
    assert value(registry, "guard_build_info", version="1.2.3") == 1


def test_observations_land_on_the_right_series() -> None:
    registry, m = fresh()
    m.observe_decision(Direction.INPUT, "chat", Verdict.BLOCK, None)
    m.observe_decision(Direction.OUTPUT, "chat", Verdict.ALLOW, Action.REDACT)
    m.observe_detector("pii", 0.003, 4)
    m.observe_detector_failure("inj", FailureReason.TIMEOUT)
    m.observe_finding("pii", Category.PII)
    m.observe_cache("pii", hits=3, misses=1)
    m.observe_fail_mode(Direction.INPUT, failed_open=True)
    m.observe_upstream(status_class(503), 0.2)
    m.observe_overhead(Direction.INPUT, -0.001)  # clock skew never makes a negative observation
    m.observe_stream_holdback("chat", 96)
    m.observe_stream_ttft_added("chat", 0.04)
    m.observe_policy_reload(False)
    m.set_policy("default", "2026.11.1")
    m.set_model("inj", "all-MiniLM-L6-v2", "1110a243")
    m.set_review_queue(3, 12.5)
    m.set_review_hold_timeout(30.0)
    m.observe_review_outcome("approve", 4.0)
    m.set_ready(True)
    assert value(registry, "guard_requests_total", direction="input", route="chat", decision="block") == 1
    assert value(registry, "guard_shadow_actions_total", direction="output", route="chat", action="redact") == 1
    assert value(registry, "guard_detector_duration_seconds_bucket", detector="pii", le="0.005") == 1
    assert value(registry, "guard_detector_batch_texts_sum", detector="pii") == 4
    assert value(registry, "guard_detector_errors_total", detector="inj", reason="timeout") == 1
    assert value(registry, "guard_findings_total", detector="pii", category="pii") == 1
    assert value(registry, "guard_cache_lookups_total", detector="pii", result="hit") == 3
    assert value(registry, "guard_fail_mode_total", direction="input", mode="open") == 1
    assert value(registry, "guard_upstream_request_duration_seconds_count", status_class="5xx") == 1
    assert value(registry, "guard_overhead_seconds_sum", direction="input") == 0
    assert value(registry, "guard_stream_holdback_bytes_sum", route="chat") == 96
    assert value(registry, "guard_policy_reloads_total", result="failure") == 1
    assert value(registry, "guard_policy_info", name="default", version="2026.11.1") == 1
    assert value(registry, "guard_model_info", detector="inj", model="all-MiniLM-L6-v2", version="1110a243") == 1
    assert value(registry, "guard_review_queue_items") == 3
    assert value(registry, "guard_review_oldest_age_seconds") == 12.5
    assert value(registry, "guard_review_hold_timeout_seconds") == 30
    assert value(registry, "guard_review_decision_seconds_count", outcome="approve") == 1
    assert value(registry, "guard_ready") == 1


def test_values_outside_closed_sets_are_counted_as_other_not_as_new_series() -> None:
    registry, m = fresh()
    m.observe_rejected("/v1/users/maria@example.org")
    m.observe_upstream("503 Service Unavailable", 0.1)
    m.observe_review_outcome("approved by maria", 1.0)
    text = generate_latest(registry).decode()
    assert "maria" not in text and "Unavailable" not in text
    assert value(registry, "guard_rejected_requests_total", reason=OTHER) == 1
    assert value(registry, "guard_upstream_request_duration_seconds_count", status_class=OTHER) == 1
    assert value(registry, "guard_review_outcomes_total", outcome=OTHER) == 1


def test_reloads_replace_policy_and_model_series() -> None:
    registry, m = fresh()
    m.set_policy("default", "1")
    m.set_policy("default", "2")
    m.set_model("inj", "enc", "a")
    m.clear_models()
    m.set_model("inj", "enc", "b")
    names = {k for k in samples(registry) if k[0] in ("guard_policy_info", "guard_model_info")}
    assert names == {
        ("guard_policy_info", (("name", "default"), ("version", "2"))),
        ("guard_model_info", (("detector", "inj"), ("model", "enc"), ("version", "b"))),
    }


def test_every_label_says_where_its_values_come_from() -> None:
    registry, m = fresh()
    m.set_policy("p", "1")
    m.set_model("inj", "enc", "a")
    for family in registry.collect():
        if family.name.startswith(("process_", "python_")):
            continue  # the library's collectors: labels from the interpreter (python_info's version)
        for s in family.samples:
            for label in s.labels:
                assert label == "le" or label in LABELS, f"{family.name}{{{label}}} missing from LABELS"
    for label, source in LABELS.items():
        assert re.fullmatch(r"[a-z_]+", label)
        assert source, label


def test_metrics_reference_page_is_current() -> None:
    gen = importlib.import_module("scripts.gen_metrics_doc")
    assert gen.DOC.read_text(encoding="utf-8") == gen.render(), (
        "docs/metrics.md is stale: run .venv/bin/python scripts/gen_metrics_doc.py"
    )
    assert gen.main(["--check"]) == 0


def test_process_metrics_are_exported_and_created_series_are_not() -> None:
    registry, _ = fresh()
    exposition = generate_latest(registry).decode()
    names = {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}
    assert "process_resident_memory_bytes" in names
    assert "process_open_fds" in names
    assert "python_info" in names
    assert not [n for n in names if n.endswith("_created")]


def test_tier_actions_are_precreated_per_policy_tier_and_fold_unknown_tiers() -> None:
    registry, metrics = fresh()
    metrics.prepare([], ["chat"], ["limited", "high"])
    assert value(registry, "guard_tier_actions_total", direction="input", tier="high", action="block") == 0
    metrics.observe_tier_action(Direction.INPUT, "high", Action.BLOCK)
    metrics.observe_tier_action(Direction.OUTPUT, "made-up", Action.REDACT)
    assert value(registry, "guard_tier_actions_total", direction="input", tier="high", action="block") == 1
    assert value(registry, "guard_tier_actions_total", direction="output", tier="other", action="redact") == 1
