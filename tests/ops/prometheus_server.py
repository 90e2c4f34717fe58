"""A real Prometheus (Debian's `prometheus` binary) for tests: a temp config that scrapes given loopback
targets every second, optional rule files, TSDB in a temp folder, queried over its HTTP API.

    with PrometheusServer(tmp_path, targets=["127.0.0.1:8081"], rule_files=[ALERTS]) as prom:
        prom.wait_for_scrapes(2)
        prom.query('sum(guard_requests_total)')
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import httpx
import yaml

from tests.fakes.guard_process import free_port
from tests.ops.tools import tool

Vector = list[tuple[dict[str, str], float]]


class PrometheusServer:
    """Owns one prometheus process on 127.0.0.1:<free port>; stops it on exit."""

    def __init__(
        self,
        workdir: Path,
        targets: list[str],
        rule_files: list[Path] | None = None,
        job: str = "guard",
        ready_timeout_s: float = 60.0,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.job = job
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(p.resolve()) for p in (rule_files or [])],
            "scrape_configs": [
                {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": targets}]}
            ],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log_path = workdir / "prometheus.log"
        self._ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: BinaryIO | None = None

    def start(self) -> PrometheusServer:
        check = subprocess.run(
            [tool("promtool"), "check", "config", str(self.config_path)],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(f"promtool rejects the test config:\n{check.stdout}{check.stderr}")
        self._log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                tool("prometheus"),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--web.enable-lifecycle",
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self._ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/-/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready in {self._ready_timeout_s}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- HTTP API ---------------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(self.url + "/api/v1/" + path, params=params, timeout=10.0)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> Vector:
        """An instant query's vector result as (labels, value) pairs; NaN values included."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        if len(result) != 1:
            raise AssertionError(f"{expr}: expected one series, got {result}")
        return result[0][1]

    def targets_up(self) -> list[dict[str, Any]]:
        return [t for t in self.api("targets")["activeTargets"] if t["health"] == "up"]

    def wait_scraped_after(self, unix_time: float, timeout_s: float = 30.0) -> None:
        """Wait until every target was scraped successfully after `unix_time` (so the data includes
        everything the test did before it)."""
        self.wait_until(f'min(timestamp(up{{job="{self.job}"}} == 1))', lambda v: v > unix_time, timeout_s)
        self.wait_until(f'min(up{{job="{self.job}"}})', lambda v: v == 1, timeout_s)

    def wait_until(self, expr: str, predicate: Any, timeout_s: float = 30.0) -> float:
        """Poll an instant query that yields one value until `predicate(value)` holds; return the value."""
        deadline = time.monotonic() + timeout_s
        last: Vector = []
        while time.monotonic() < deadline:
            last = self.query(expr)
            if len(last) == 1 and not math.isnan(last[0][1]) and predicate(last[0][1]):
                return last[0][1]
            time.sleep(0.25)
        raise AssertionError(f"{expr} never satisfied the condition in {timeout_s}s; last result {last}")
