"""Alert rules: promtool accepts them, their unit tests pass, and every alert carries a summary, a runbook
that exists in docs/runbooks/, and test cases that both fire it and keep it quiet."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.tools import DEPLOY, REPO, tool

pytestmark = pytest.mark.prometheus

RULES = DEPLOY / "prometheus" / "alerts.yaml"
TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yaml"))
RUNBOOK_PREFIX = '{{ or $externalLabels.guard_runbook_base "docs/runbooks" }}/'


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules_is_clean() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "WARNING" not in (result.stdout + result.stderr).upper()


def test_promtool_rule_unit_tests_pass() -> None:
    assert TESTS, "no promtool unit tests in deploy/prometheus/tests/"
    result = promtool("test", "rules", *TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_summary_runbook_and_a_firing_and_a_quiet_case() -> None:
    cases: dict[str, list[list[object]]] = {}
    for path in TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    names = []
    for rule in alerts():
        name = str(rule["alert"])
        names.append(name)
        annotations = rule.get("annotations")
        assert isinstance(annotations, dict), name
        assert annotations.get("summary"), f"{name} has no summary"
        runbook = str(annotations.get("runbook_url", ""))
        assert runbook.startswith(RUNBOOK_PREFIX), f"{name}: runbook_url must start with {RUNBOOK_PREFIX}"
        page = REPO / "docs" / "runbooks" / runbook.removeprefix(RUNBOOK_PREFIX)
        assert page.is_file(), f"{name}: runbook {page} does not exist"
        assert name in page.read_text(encoding="utf-8"), f"{page} does not name {name}"
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), name
        assert any(cases.get(name, [])), f"{name} has no promtool case where it fires"
        assert any(not c for c in cases.get(name, [])), f"{name} has no promtool case where it stays quiet"
    assert len(names) == len(set(names))
    # The list: detector errors or fail-open, block-rate anomaly, review backlog beyond the hold
    # timeout, upstream error rate, added-latency SLO burn, policy reload failures.
    for required in (
        "GuardFailOpen", "GuardDetectorErrors", "GuardBlockRateAnomaly", "GuardReviewBacklogOverdue",
        "GuardUpstreamErrorRate", "GuardAddedLatencySLOFastBurn", "GuardPolicyReloadFailed",
    ):
        assert required in names


def test_rules_query_only_guard_metrics() -> None:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            expr = str(rule["expr"])
            # `up{job=~"guard.*"}`: Prometheus's own scrape health for guard jobs (GuardReplicaDown).
            assert "guard_" in expr or "guard:" in expr or 'up{job=~"guard' in expr, rule


def test_operators_page_lists_every_alert() -> None:
    page = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [str(rule["alert"]) for rule in alerts() if str(rule["alert"]).split("SLO")[0] not in page]
    assert not missing, f"docs/operations.md does not mention {missing}"
