"""The loaded state the pipeline reads: the policy, its detectors (loaded once), a codec per route, and
which detectors each tier runs in each direction. Swapped whole on reload, never mutated in place.

On reload, `guard.policy.holder.PolicyHolder` calls `apply(new_policy)` before the new policy becomes
current: the new state (new detectors built and loaded, unchanged ones reused) is built off the request
path and swapped in only when complete, so requests never wait on a model load and never see half a
policy. A load failure raises `DetectorError`, which vetoes the reload and keeps the running policy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from guard.codecs.base import BodyLimits, Codec
from guard.detectors.base import Detector, DetectorResources
from guard.detectors.registry import DetectorConfig, build_detector
from guard.errors import DetectorError, GuardError
from guard.metrics import GuardMetrics
from guard.policy.model import PolicyFile
from guard.screening import Screener, ScreeningCache
from guard.types import Action, Decision, Direction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActivePolicy:
    policy: PolicyFile
    detectors: Mapping[str, Detector]
    configs: tuple[DetectorConfig, ...]
    codecs: Mapping[str, Codec]  # by route name
    limits: BodyLimits
    plan: Mapping[tuple[str, Direction], tuple[Detector, ...]]
    detector_versions: tuple[tuple[str, str], ...]
    # A detector-free allow per (tier, direction): the passthrough path allocates no Decision.
    allow: Mapping[tuple[str, Direction], Decision] = field(default_factory=dict)

    def detectors_for(self, tier: str, direction: Direction) -> tuple[Detector, ...]:
        return self.plan.get((tier, direction), ())


def _build_codecs(policy: PolicyFile, limits: BodyLimits) -> dict[str, Codec]:
    from guard.codecs.registry import build_codec  # the codec room's modules load with the first policy

    return {route.name: build_codec(route.codec, limits) for route in policy.routes if route.codec is not None}


def detector_plan(policy: PolicyFile, detectors: Mapping[str, Detector]) -> dict[tuple[str, Direction], tuple[Detector, ...]]:
    """Which detectors each (tier, direction) runs: those that find a category of its table. `guard eval`
    uses this too, so its figures come from the detectors `guard serve` would run."""
    plan: dict[tuple[str, Direction], tuple[Detector, ...]] = {}
    for tier_name, tier in policy.tiers.items():
        for direction in Direction:
            wanted = set(tier.table(direction))
            plan[(tier_name, direction)] = tuple(d for d in detectors.values() if d.categories & wanted)
    return plan


class GuardRuntime:
    """Owns the detectors' executor and the active state; `Screener` and metrics are shared with the
    pipeline. Start once (`start`), then read `active`; `aclose` releases detectors and threads."""

    def __init__(
        self,
        policy: PolicyFile,
        metrics: GuardMetrics,
        *,
        executor_threads: int,
        torch_threads: int,
        cache_size: int,
    ) -> None:
        self._initial = policy
        self.metrics = metrics
        self.screener = Screener(ScreeningCache(cache_size), metrics)
        self._executor_threads = executor_threads
        self._torch_threads = torch_threads
        self._executor: ThreadPoolExecutor | None = None
        self._active: ActivePolicy | None = None
        self._start_lock = asyncio.Lock()
        self._closed = False

    @property
    def ready(self) -> bool:
        return self._active is not None

    async def start(self) -> None:
        """Build and load everything the current policy names. Idempotent; concurrent callers wait."""
        async with self._start_lock:
            if self._active is not None:
                return
            self._executor = ThreadPoolExecutor(self._executor_threads, thread_name_prefix="guard-detect")
            self._active = await self._build(self._initial, previous=None)
            self.metrics.set_ready(True)

    async def ensure_active(self) -> ActivePolicy:
        """The active state, starting the runtime first if nobody has (middleware without lifespan)."""
        active = self._active
        if active is None:
            await self.start()
            active = self._active
            if active is None:  # pragma: no cover - start() either sets it or raises
                raise RuntimeError("runtime failed to start")
        return active

    @property
    def active(self) -> ActivePolicy | None:
        return self._active

    async def apply(self, policy: PolicyFile) -> None:
        """Make `policy` the running one once its detectors are loaded (a `PolicyHolder.on_change`
        subscriber). Raises `DetectorError`, vetoing the reload, when a detector cannot be built or loaded."""
        previous = self._active
        if previous is None:
            self._initial = policy  # not started yet: start() builds this one
            return
        if self._closed:
            raise DetectorError("the guard is shutting down")
        try:
            fresh = await self._build(policy, previous=previous)
        except GuardError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure vetoes the reload; the old policy stays
            log.error(
                "policy reload failed to load detectors; keeping the running policy",
                extra={"error_type": type(exc).__name__, "policy_version": policy.version},
            )
            raise DetectorError("a detector of the new policy failed to load") from None
        self._active = fresh
        # Detectors only the old policy used are closed; in-flight requests that still hold them fail
        # closed (a DetectorFailure), which is the safe side of a reload race.
        kept = {id(d) for d in fresh.detectors.values()}
        for detector in previous.detectors.values():
            if id(detector) not in kept:
                await detector.aclose()

    async def _build(self, policy: PolicyFile, previous: ActivePolicy | None) -> ActivePolicy:
        if self._executor is None:
            raise RuntimeError("runtime not started")
        resources = DetectorResources(executor=self._executor, torch_threads=self._torch_threads)
        detectors: dict[str, Detector] = {}
        loaded_here: list[Detector] = []
        try:
            for config in policy.detectors:
                reuse = None
                if previous is not None:
                    for old_config in previous.configs:
                        if old_config == config:
                            reuse = previous.detectors[old_config.name]
                            break
                if reuse is None:
                    reuse = build_detector(config)
                    await reuse.load(resources)
                    loaded_here.append(reuse)
                detectors[config.name] = reuse
        except BaseException:
            for detector in loaded_here:
                await detector.aclose()
            raise
        limits = BodyLimits(
            max_body_bytes=policy.limits.max_body_bytes,
            max_json_depth=policy.limits.max_json_depth,
            max_texts=policy.limits.max_texts,
        )
        self.metrics.prepare(
            ((d.name, d.categories) for d in detectors.values()),
            (r.name for r in policy.routes if not r.pass_),
            policy.tiers,
        )
        self.metrics.prepare_unscreened(r.name for r in policy.routes if r.pass_)
        self.metrics.set_policy(policy.name, policy.version)
        # For the review-backlog alert (items older than this are overdue) and the versions panel.
        self.metrics.set_review_hold_timeout(max(t.review.timeout_s for t in policy.tiers.values()))
        self.metrics.clear_models()
        for config in policy.detectors:
            self.metrics.set_model(config.name, config.kind, detectors[config.name].version)
        allow = {
            (tier, direction): Decision(Action.ALLOW, direction, tier, policy.version)
            for tier in policy.tiers
            for direction in Direction
        }
        return ActivePolicy(
            policy=policy,
            detectors=detectors,
            configs=tuple(policy.detectors),
            codecs=_build_codecs(policy, limits),
            limits=limits,
            plan=detector_plan(policy, detectors),
            detector_versions=tuple((d.name, d.version) for d in detectors.values()),
            allow=allow,
        )

    async def aclose(self) -> None:
        self._closed = True
        active, self._active = self._active, None
        self.metrics.set_ready(False)
        if active is not None:
            for detector in active.detectors.values():
                await detector.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
