"""`Guard`: the pipeline's screening as a library call, without HTTP.

    guard = await Guard.from_policy("policies/default.yaml")
    decision = await guard.screen(["Mail jane@example.com"], direction=Direction.INPUT)
    safe = guard.redact(["Mail jane@example.com"], decision)     # ["Mail <EMAIL_ADDRESS>"]
    await guard.aclose()

Same detectors, cache, policy and decision as `guard serve`; metrics go to the `registry` it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from prometheus_client import CollectorRegistry

from guard.actions.redact import redact, spans_to_redact
from guard.errors import ConfigError
from guard.metrics import GuardMetrics
from guard.policy.decide import decide
from guard.policy.load import default_policy_path, load_policy
from guard.policy.model import PolicyFile
from guard.proxy.runtime import GuardRuntime
from guard.settings import default_executor_threads
from guard.types import Action, Decision, Direction, ScanContext


class Guard:
    """A loaded policy and its detectors. Create with `await Guard.from_policy(...)`; close with `aclose()`
    (or `async with`)."""

    def __init__(self, runtime: GuardRuntime, metrics: GuardMetrics) -> None:
        self._runtime = runtime
        self.metrics = metrics

    @classmethod
    async def from_policy(
        cls,
        path: str | Path | None = None,
        *,
        registry: CollectorRegistry | None = None,
        executor_threads: int | None = None,
        cache_size: int = 10_000,
    ) -> Guard:
        """Load the policy at `path` (default: the shipped `policies/default.yaml`) and its detectors."""
        from guard.version import guard_version

        policy = load_policy(path if path is not None else default_policy_path())
        metrics = GuardMetrics(registry if registry is not None else CollectorRegistry(), guard_version())
        runtime = GuardRuntime(
            policy,
            metrics,
            executor_threads=executor_threads or default_executor_threads(),
            torch_threads=1,
            cache_size=cache_size,
        )
        await runtime.start()
        return cls(runtime, metrics)

    @property
    def policy(self) -> PolicyFile:
        active = self._runtime.active
        if active is None:
            raise ConfigError("Guard is closed")
        return active.policy

    async def screen(
        self,
        texts: Sequence[str] | str,
        *,
        direction: Direction = Direction.INPUT,
        tier: str | None = None,
        route: str = "",
    ) -> Decision:
        """The policy's decision for `texts` (one message's texts) in `direction` under `tier` (default:
        the policy's `default_tier`). `ConfigError` for a tier the policy does not have."""
        active = await self._runtime.ensure_active()
        policy = active.policy
        tier_name = tier if tier is not None else policy.default_tier
        if tier_name not in policy.tiers:
            raise ConfigError(f"tier '{tier_name}' is not one of the policy's tiers {sorted(policy.tiers)}")
        batch = [texts] if isinstance(texts, str) else list(texts)
        detectors = active.detectors_for(tier_name, direction)
        result = await self._runtime.screener.screen(
            batch, detectors, ScanContext(direction, tier_name, route), policy.limits.detector_budget_s
        )
        return decide(policy, result, direction, tier_name)

    @staticmethod
    def redact(texts: Sequence[str] | str, decision: Decision) -> list[str]:
        """`texts` with the spans the decision says to redact replaced by `<ENTITY_TYPE>` placeholders.
        Unchanged unless the decision's action is `redact` (a logged-only finding is not redacted)."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        if decision.action is not Action.REDACT:
            return batch
        return [redact(text, spans_to_redact(decision, index)) for index, text in enumerate(batch)]

    async def aclose(self) -> None:
        await self._runtime.aclose()

    async def __aenter__(self) -> Guard:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
