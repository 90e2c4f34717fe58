"""PolicyHolder: reload on demand, on SIGHUP and on file change; a bad file keeps the running policy."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from guard.errors import ConfigError, DetectorError
from guard.metrics import GuardMetrics
from guard.policy.holder import PolicyHolder
from guard.policy.model import PolicyFile

POLICY = """\
name: t
version: "{version}"
detectors: [{{kind: rules, name: r, rules: [{{name: a, keywords: [x]}}]}}]
default_tier: limited
tiers:
  limited:
    input:
      custom:
        medium: {{min_score: 0.5, action: {action}}}
"""


def _write(path: Path, version: str, action: str = "block") -> None:
    # Write then rename, as editors and ConfigMap updates do: the watcher never reads half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(POLICY.format(version=version, action=action))
    os.replace(tmp, path)


def _reloads(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("guard_policy_reloads_total", {"result": result}) or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    _write(path, "1")
    return path


def test_open_loads_and_reports_the_policy(policy_path: Path, registry: CollectorRegistry) -> None:
    holder = PolicyHolder.open(policy_path, GuardMetrics(registry, "test"))
    assert holder.policy.version == "1"
    assert registry.get_sample_value("guard_policy_info", {"name": "t", "version": "1"}) == 1.0
    assert holder.last_error is None


def test_open_refuses_a_bad_file(tmp_path: Path, registry: CollectorRegistry) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(POLICY.format(version="1", action="redakt"))
    with pytest.raises(ConfigError, match=r"bad.yaml:9: tiers.limited.input.custom.medium.action: 'redakt'"):
        PolicyHolder.open(path, GuardMetrics(registry, "test"))


def test_reload_good_then_bad_keeps_the_good_one(
    policy_path: Path, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    holder = PolicyHolder.open(policy_path, GuardMetrics(registry, "test"))
    seen: list[str] = []

    async def subscriber(policy: PolicyFile) -> None:
        seen.append(policy.version)

    holder.on_change(subscriber)

    async def scenario() -> None:
        _write(policy_path, "2")
        assert await holder.reload() is True
        assert holder.policy.version == "2"
        _write(policy_path, "3", action="redakt")
        assert await holder.reload() is False
        assert holder.policy.version == "2"
        policy_path.unlink()
        assert await holder.reload() is False
        assert holder.policy.version == "2"

    asyncio.run(scenario())
    assert seen == ["2"]
    assert _reloads(registry, "success") == 1.0
    assert _reloads(registry, "failure") == 2.0
    assert registry.get_sample_value("guard_policy_info", {"name": "t", "version": "2"}) == 1.0
    assert holder.last_error is not None and "cannot read the policy file" in holder.last_error
    refused = [r for r in caplog.records if r.getMessage().startswith("policy reload refused")]
    assert len(refused) == 2
    assert getattr(refused[0], "reason") == "tiers.limited.input.custom.medium.action"


def test_a_subscriber_can_veto(policy_path: Path, registry: CollectorRegistry) -> None:
    holder = PolicyHolder.open(policy_path, GuardMetrics(registry, "test"))

    async def refuse(policy: PolicyFile) -> None:
        raise DetectorError("model missing")

    holder.on_change(refuse)
    _write(policy_path, "2")
    assert asyncio.run(holder.reload()) is False
    assert holder.policy.version == "1"
    assert _reloads(registry, "failure") == 1.0


def test_file_change_is_picked_up_by_the_watcher(policy_path: Path, registry: CollectorRegistry) -> None:
    holder = PolicyHolder.open(policy_path, GuardMetrics(registry, "test"), poll_interval_s=0.02)

    async def scenario() -> None:
        changed = asyncio.Event()

        async def subscriber(policy: PolicyFile) -> None:
            changed.set()

        holder.on_change(subscriber)
        holder.start_watching()
        try:
            # Unchanged content (a touch) reloads nothing.
            os.utime(policy_path, None)
            await asyncio.sleep(0.1)
            assert not changed.is_set()
            # A bad edit is refused once, not on every poll.
            _write(policy_path, "2", action="redakt")
            for _ in range(200):
                if _reloads(registry, "failure"):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert _reloads(registry, "failure") == 1.0
            assert holder.policy.version == "1"
            _write(policy_path, "3")
            await asyncio.wait_for(changed.wait(), timeout=5)
            assert holder.policy.version == "3"
        finally:
            await holder.aclose()

    asyncio.run(scenario())
    assert _reloads(registry, "success") == 1.0


def test_sighup_reloads(policy_path: Path, registry: CollectorRegistry) -> None:
    holder = PolicyHolder.open(policy_path, GuardMetrics(registry, "test"))

    async def scenario() -> None:
        changed = asyncio.Event()

        async def subscriber(policy: PolicyFile) -> None:
            changed.set()

        holder.on_change(subscriber)
        holder.install_sighup(asyncio.get_running_loop())
        try:
            _write(policy_path, "2")
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(changed.wait(), timeout=5)
        finally:
            await holder.aclose()
        assert holder.policy.version == "2"

    asyncio.run(scenario())
    assert _reloads(registry, "success") == 1.0


def test_poll_interval_must_be_positive(policy_path: Path, registry: CollectorRegistry) -> None:
    with pytest.raises(ConfigError):
        PolicyHolder.open(policy_path, GuardMetrics(registry, "test"), poll_interval_s=0)


def test_refusals_are_logged_in_a_shape_the_log_filter_keeps(
    policy_path: Path, registry: CollectorRegistry
) -> None:
    import io
    import json
    import logging

    from guard.logging_setup import configure_logging

    holder = PolicyHolder.open(policy_path, GuardMetrics(registry, "test"))
    policy_path.write_text("name: t\nversion: '2'\ndetectors: [{kind: nope, name: r}]\ndefault_tier: x\ntiers: {x: {}}\n")
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access_disabled = logging.getLogger("uvicorn.access").disabled
    try:
        configure_logging("info", stream=stream)
        assert asyncio.run(holder.reload()) is False
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.getLogger("uvicorn.access").disabled = access_disabled
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    (refused,) = [r for r in records if r["message"].startswith("policy reload refused")]
    assert refused["reason"] == "detectors.0.kind"
    assert refused["policy_version"] == "1" and refused["error_type"] == "PolicyFileError"
    # Each problem names where it is: the file, its line and the field path.
    (problem,) = [r for r in records if r["message"].startswith("policy problem")]
    assert problem["source"] == str(policy_path) and problem["line"] == 3 and problem["field"] == "detectors.0.kind"

