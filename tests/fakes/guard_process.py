"""A real `guard serve` subprocess on free loopback ports, for tests that need the whole guard: its signals,
its exit code, its logs, its resident memory and file descriptors.

    with GuardProcess(upstream=server.url, policy=path, workdir=tmp_path) as guard:
        httpx.post(guard.url + "/v1/chat/completions", json=...)
        guard.metric("guard_fail_mode_total", direction="input", mode="closed")

It is ready once `/readyz` on the admin port answers 200 (polled; the process reporting ready is the
signal, not a sleep). Logs go to files in `workdir` so tests can search them for planted markers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class GuardProcess:
    """Owns one `guard serve` process; stops it (SIGTERM, then SIGKILL) on exit."""

    def __init__(
        self,
        upstream: str,
        policy: Path | None,
        workdir: Path,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.port = free_port()
        self.admin_port = free_port()
        self.workdir = workdir
        self.stdout_path = workdir / f"guard-{self.port}.out"
        self.stderr_path = workdir / f"guard-{self.port}.err"
        self.args = [
            sys.executable, "-m", "guard", "serve",
            "--upstream", upstream,
            "--port", str(self.port),
            "--admin-port", str(self.admin_port),
            *(["--policy", str(policy)] if policy is not None else []),
            *extra_args,
        ]
        self._env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self._preexec = preexec
        self._ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("guard not started")
        return self.proc.pid

    def start(self, wait_ready: bool = True) -> GuardProcess:
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                self.args,
                cwd=REPO,
                env=self._env,
                stdout=out,
                stderr=err,
                preexec_fn=self._preexec,  # noqa: PLW1509 - only resource limits, set before exec
            )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self._ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"guard exited with {self.proc.returncode} before ready:\n{self.logs()[-4000:]}")
            try:
                if httpx.get(self.admin_url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"guard not ready in {self._ready_timeout_s}s:\n{self.logs()[-4000:]}")

    def wait_exit(self, timeout_s: float) -> int:
        if self.proc is None:
            raise RuntimeError("guard not started")
        return self.proc.wait(timeout=timeout_s)

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def __enter__(self) -> GuardProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what tests inspect ----------------------------------------------------------------------
    def logs(self) -> str:
        out = self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""
        err = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return out + err

    def metrics_text(self) -> str:
        return httpx.get(self.admin_url + "/metrics", timeout=5.0).text

    def metric(self, name: str, **labels: str) -> float:
        """The sum of samples called `name` whose labels include `labels` (0 when none match)."""
        total = 0.0
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


# Words that only appear in exception text or tracebacks: a guard answer carrying any of them leaks internals.
INTERNAL_WORDS = (
    "Traceback", "Errno", "errno", "Exception", "aiohttp", "httpx", "uvicorn", "Connection refused",
    "ClientConnector", "File \"", "KeyError", "ValueError", "RuntimeError", "site-packages",
)


def leaked_internals(text: str, *secrets: str) -> list[str]:
    """Which internal words or planted secrets appear in `text` (an answer body or a log)."""
    return [word for word in (*INTERNAL_WORDS, *secrets) if word and word in text]


# What the `start_guard` fixture (tests/conftest.py) yields: start(upstream, policy, extra_args=(), ...).
StartGuard = Callable[..., GuardProcess]
