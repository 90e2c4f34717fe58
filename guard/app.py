"""`create_app(settings)`: every part of `guard serve` wired in one place, and nothing at import time.

    policy file ─► PolicyHolder ─(on_change)─► GuardRuntime (detectors, codecs, screener)
                                                    │
    caller ─► GuardASGI (proxy port) ─► Pipeline ─► AiohttpUpstream ─► model endpoint
    operator ─► admin app (admin port): /healthz /readyz /metrics + extra routes

`create_app` only validates and constructs (the policy file is read, so a bad file stops the start-up);
`GuardApp.startup()` opens the upstream pool and loads the detectors; `shutdown()` releases them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from guard.audit.base import AuditSink
from guard.metrics import GuardMetrics
from guard.policy.holder import PolicyHolder
from guard.policy.load import default_policy_path
from guard.proxy.admin import create_admin_app
from guard.proxy.admission import Admission
from guard.proxy.asgi import GuardASGI
from guard.proxy.pipeline import Pipeline
from guard.proxy.runtime import GuardRuntime
from guard.proxy.screening_step import Stepper
from guard.proxy.upstream import AiohttpUpstream, PooledUpstream, Upstream, UpstreamTimeouts
from guard.review.base import ReviewGate
from guard.settings import GuardSettings
from guard.version import guard_version


@dataclass
class GuardApp:
    """The wired guard: `proxy` and `admin` are ASGI apps for two servers on one loop."""

    settings: GuardSettings
    registry: CollectorRegistry
    metrics: GuardMetrics
    holder: PolicyHolder
    runtime: GuardRuntime
    upstream: Upstream
    proxy: GuardASGI
    admin: Starlette

    def is_ready(self) -> bool:
        return self.runtime.ready and not self.proxy.draining

    async def startup(self, watch_policy: bool = True) -> None:
        """Open the upstream pool, load and warm every detector, start watching the policy file."""
        await self.upstream.start()
        await self.runtime.start()
        if watch_policy:
            self.holder.start_watching()

    async def shutdown(self) -> None:
        await self.holder.aclose()
        await self.upstream.aclose()
        await self.runtime.aclose()


def new_metrics() -> GuardMetrics:
    """Metrics on a fresh registry: one per app, never the global one."""
    return GuardMetrics(CollectorRegistry(auto_describe=True), guard_version())


@dataclass
class Extras:
    """What the review and audit rooms open for `guard serve`, and how to close it."""

    review_gate: ReviewGate | None = None
    audit_sink: AuditSink | None = None
    admin_routes: Sequence[BaseRoute] = ()
    proxy_routes: Sequence[BaseRoute] = ()  # under /guard/ on the proxy port (deferred review results)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()


async def open_extras(settings: GuardSettings, metrics: GuardMetrics) -> Extras:
    """The review store, gate, reviewer API and audit sink that `settings` name (`guard.review.wiring`).
    `ConfigError` for half a configuration, so nothing starts unreviewed by mistake."""
    if settings.review_store_url is None and settings.tokens_file is None and settings.audit_path is None:
        return Extras()
    from guard.review.wiring import open_rooms

    rooms = await open_rooms(settings, metrics)
    return Extras(rooms.review_gate, rooms.audit_sink, rooms.admin_routes, rooms.proxy_routes, [rooms.aclose])


def create_app(
    settings: GuardSettings,
    *,
    review_gate: ReviewGate | None = None,
    audit_sink: AuditSink | None = None,
    admin_routes: Sequence[BaseRoute] = (),
    proxy_routes: Sequence[BaseRoute] = (),
    upstream: Upstream | None = None,
    metrics: GuardMetrics | None = None,
) -> GuardApp:
    """Build the guard for `settings`. Raises `ConfigError` for a bad policy file. The review gate, audit
    sink and admin routes are opened by their rooms (`open_extras`) and passed in, with the `metrics` they
    were opened with; the guard closes none of them."""
    if metrics is None:
        metrics = new_metrics()
    registry = metrics.registry
    holder = PolicyHolder.open(settings.policy_path or default_policy_path(), metrics)
    runtime = GuardRuntime(
        holder.policy,
        metrics,
        executor_threads=settings.executor_threads,
        torch_threads=settings.torch_threads,
        cache_size=settings.cache_size,
    )
    holder.on_change(runtime.apply)
    if upstream is None:
        upstream = AiohttpUpstream(
            str(settings.upstream_url),
            UpstreamTimeouts(
                connect_s=settings.upstream_connect_timeout_s,
                read_s=settings.upstream_read_timeout_s,
                write_s=settings.upstream_write_timeout_s,
                pool_s=settings.upstream_pool_timeout_s,
            ),
            settings.upstream_max_connections,
            metrics.set_upstream_pool_in_use,
        )
    stepper = Stepper(runtime.screener, metrics, review_gate, audit_sink, Admission(metrics))
    proxy = GuardASGI(Pipeline(runtime, upstream, stepper, metrics), metrics, side_routes=proxy_routes)
    pooled = upstream if isinstance(upstream, PooledUpstream) else None
    # Not ready while the upstream pool is saturated: the load balancer sends new callers elsewhere.
    admin = create_admin_app(
        registry,
        lambda: runtime.ready and not proxy.draining and not (pooled is not None and pooled.saturated()),
        admin_routes,
    )
    return GuardApp(settings, registry, metrics, holder, runtime, upstream, proxy, admin)
