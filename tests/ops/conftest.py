"""The live stack for the ops tests, started once per session: `guard serve --demo` with the ops policy,
a real Prometheus scraping it (shipped alert rules loaded), the traffic mix driven through it, and one
refused policy reload (SIGHUP with a broken file). Tests only read from it."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ops.live import GuardServe, Traffic, drive, ops_policy
from tests.ops.prometheus_server import PrometheusServer
from tests.ops.tools import DEPLOY, tool


@dataclass(frozen=True)
class LiveStack:
    guard: GuardServe
    prometheus: PrometheusServer
    traffic: Traffic


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    tool("prometheus")  # fail early, with the install hint, before starting the guard
    workdir = tmp_path_factory.mktemp("live")
    policy = ops_policy(workdir / "policy.yaml")
    with GuardServe(workdir, policy) as guard:
        with PrometheusServer(
            workdir, targets=[f"127.0.0.1:{guard.admin_port}"], rule_files=[DEPLOY / "prometheus" / "alerts.yaml"]
        ) as prometheus:
            # Scrapes before any traffic, so rates see every counter start from zero.
            prometheus.wait_scraped_after(time.time())
            traffic = drive(guard.url)
            # A broken policy file and SIGHUP: the reload is refused and counted; the old policy stays.
            good = policy.read_text(encoding="utf-8")
            shutil.copyfile(policy, workdir / "policy.good.yaml")
            policy.write_text(good + "\nnot_a_policy_key: true\n", encoding="utf-8")
            assert guard.proc is not None
            guard.proc.send_signal(signal.SIGHUP)
            prometheus.wait_until(
                'sum(guard_policy_reloads_total{result="failure"})', lambda v: v >= 1, timeout_s=30
            )
            policy.write_text(good, encoding="utf-8")
            prometheus.wait_scraped_after(time.time())
            yield LiveStack(guard, prometheus, traffic)
