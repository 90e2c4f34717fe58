"""Fixtures for the reliability battery: start real `guard serve` processes, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fault_policy import write_policy
from tests.fakes.guard_process import GuardProcess

StartGuard = Callable[..., GuardProcess]


@pytest.fixture
def start_guard(tmp_path: Path) -> Iterator[StartGuard]:
    started: list[GuardProcess] = []

    def start(
        upstream: str,
        policy: dict[str, Any] | Path | None,
        extra_args: Sequence[str] = (),
        wait_ready: bool = True,
        **kwargs: Any,
    ) -> GuardProcess:
        path = write_policy(tmp_path / f"policy-{len(started)}.yaml", policy) if isinstance(policy, dict) else policy
        guard = GuardProcess(upstream, path, tmp_path, extra_args=extra_args, **kwargs)
        started.append(guard)
        return guard.start(wait_ready=wait_ready)

    yield start
    for guard in started:
        guard.stop()
