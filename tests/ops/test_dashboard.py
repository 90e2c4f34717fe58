"""The Grafana dashboard: provisioning-ready JSON that queries only guard metrics and covers what the
issue asks for, and every panel's PromQL returns data from the test Prometheus after the traffic."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
import yaml

from tests.ops.conftest import LiveStack
from tests.ops.tools import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "guard-dashboard.json"
# What Grafana would put in for the template variables; `$__rate_interval` is at least four scrape
# intervals, and 5m keeps the traffic of this test in the window.
VARIABLES = {"$job": ".+", "$__rate_interval": "5m", "$__range": "10m"}


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return board


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expand(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unexpanded variable in {expr}"
    return expr


def test_dashboard_is_provisioning_ready() -> None:
    board = dashboard()
    assert board["uid"] == "guard-overview" and board["title"]
    assert "id" not in board, "a provisioned dashboard must not carry a database id"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
    # Panels do not overlap on the grid.
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        assert g["x"] + g["w"] <= 24
        cells |= mine
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "guard.yaml").read_text())
    assert provider["apiVersion"] == 1 and provider["providers"][0]["type"] == "file"


def test_panels_query_only_guard_metrics() -> None:
    for panel in panels():
        for target in panel["targets"]:
            # Every selector is written `name{job=~"$job", ...}`, so the job filter applies to all of them.
            names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{", target["expr"]))
            assert names and all(n.startswith("guard_") for n in names), (panel["title"], names)
            assert target["expr"].count("{") == target["expr"].count('{job=~"$job"'), target["expr"]


def test_dashboard_covers_what_operators_need() -> None:
    titles = " | ".join(p["title"].lower() for p in panels())
    for needed in (
        "decision", "category", "detector latency p50 / p95 / p99", "overhead vs upstream", "detector errors",
        "fail-open", "hold-back", "time to first token", "review queue depth", "oldest pending",
        "loaded policy", "loaded models",
    ):
        assert needed in titles, needed


@pytest.mark.prometheus
@pytest.mark.parametrize("title", [p["title"] for p in panels()])
def test_every_panel_query_returns_data_after_traffic(live: LiveStack, title: str) -> None:
    (panel,) = [p for p in panels() if p["title"] == title]
    finite = []
    for target in panel["targets"]:
        result = live.prometheus.query(expand(target["expr"]))
        assert result, f"{title}: {target['expr']} returned no series"
        finite += [v for _, v in result if not math.isnan(v)]
    assert finite, f"{title}: every series is NaN (no observations behind it)"


@pytest.mark.prometheus
def test_panel_values_match_the_traffic(live: LiveStack) -> None:
    prom = live.prometheus
    blocked = prom.query(expand('sum by (decision) (increase(guard_requests_total{job=~"$job",decision="block"}[$__range]))'))
    assert len(blocked) == 1 and round(blocked[0][1]) >= 3
    by_mode = {m["mode"] + "/" + m["direction"]: v for m, v in prom.query(expand(
        'sum by (direction, mode) (increase(guard_fail_mode_total{job=~"$job"}[$__range]))'
    ))}
    assert round(by_mode["open/input"]) >= 1 and round(by_mode["closed/input"]) >= 1
    versions = prom.query(expand('max by (name, version) (guard_policy_info{job=~"$job"})'))
    assert versions == [({"name": "default", "version": "ops-test-1"}, 1.0)]
