"""`GuardMiddleware`: the same pipeline as `guard serve`, as pure ASGI middleware around an app.

    app = GuardMiddleware(app, policy="policies/default.yaml")

The "upstream" is the wrapped app, called in-process (`AsgiUpstream`). Detectors load on the ASGI
lifespan startup, before the server takes traffic; a server that sends no lifespan gets them loaded on
the first request instead. Requests to paths the policy does not know go straight to the app (at their
canonical path) when the policy lets them pass: under the default `unknown_routes: pass_bodiless` only
bodiless GET/HEAD/OPTIONS do, so an app's own POST endpoints need `pass: true` routes (or
`unknown_routes: pass`); websockets are not screened and go straight through.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.version import guard_version
from guard.audit.base import AuditSink
from guard.metrics import GuardMetrics
from guard.policy.holder import PolicyHolder
from guard.policy.load import default_policy_path
from guard.proxy import errors
from guard.proxy.admin import create_admin_app
from guard.proxy.asgi import send_error_if_possible
from guard.proxy.asgi_upstream import AsgiUpstream
from guard.proxy.pipeline import Pipeline
from guard.proxy.runtime import GuardRuntime
from guard.proxy.screening_step import Stepper
from guard.review.base import ReviewGate
from guard.settings import default_executor_threads

log = logging.getLogger(__name__)


class GuardMiddleware:
    """Screens every HTTP request to `app` and its answer under `policy` (default: the shipped
    `policies/default.yaml`). Metrics go to `registry` (a fresh one if not given); serve them with
    `admin_app()`. Construction reads and validates the policy file (`ConfigError` if bad) and nothing
    else; detectors load at lifespan startup."""

    def __init__(
        self,
        app: ASGIApp,
        policy: str | Path | None = None,
        *,
        registry: CollectorRegistry | None = None,
        review_gate: ReviewGate | None = None,
        audit_sink: AuditSink | None = None,
        executor_threads: int | None = None,
        torch_threads: int = 1,
        cache_size: int = 10_000,
        watch_policy: bool = False,
    ) -> None:
        self.app = app
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.metrics = GuardMetrics(self.registry, guard_version())
        self.holder = PolicyHolder.open(policy if policy is not None else default_policy_path(), self.metrics)
        self.runtime = GuardRuntime(
            self.holder.policy,
            self.metrics,
            executor_threads=executor_threads or default_executor_threads(),
            torch_threads=torch_threads,
            cache_size=cache_size,
        )
        self.holder.on_change(self.runtime.apply)
        self._watch_policy = watch_policy
        stepper = Stepper(self.runtime.screener, self.metrics, review_gate, audit_sink)
        self._pipeline = Pipeline(self.runtime, AsgiUpstream(app), stepper, self.metrics, unscreened_app=app)

    def admin_app(self, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
        """`/healthz`, `/readyz`, `/metrics` for this middleware, to mount or serve on another port."""
        return create_admin_app(self.registry, lambda: self.runtime.ready, extra_routes)

    async def startup(self) -> None:
        await self.runtime.start()
        if self._watch_policy:
            self.holder.start_watching()

    async def shutdown(self) -> None:
        await self.holder.aclose()
        await self.runtime.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        started = [False]

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self._pipeline.handle(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the outermost boundary: answer, count, log the type only
            self.metrics.observe_unhandled()
            log.error("unhandled error", extra={"error_type": type(exc).__name__}, exc_info=True)
            await send_error_if_possible(send, started, errors.INTERNAL.status, errors.INTERNAL.body)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Load detectors when the server starts (before the app's own startup), release them at shutdown."""

        async def guarded_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
            return message

        await self.app(scope, guarded_receive, send)
