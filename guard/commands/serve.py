"""`guard serve`: the reverse proxy and its admin app, two uvicorn servers on one event loop.

    guard serve --upstream http://model:8000 [--policy FILE] [--host H] [--port 8080] [--admin-port 8081]
    guard serve --demo          # an in-process echo model as the upstream, to try the guard at once

SIGTERM or SIGINT drains: new requests (on open or new connections) get an API-shaped 503, `/readyz`
turns 503, and requests in flight finish within `--drain-timeout`; then both servers stop.
SIGHUP reloads the policy (a bad file keeps the running one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from pydantic import ValidationError
from starlette.types import ASGIApp

from guard.app import Extras, create_app, new_metrics, open_extras
from guard.metrics import GuardMetrics, RejectReason
from guard.proxy.connections import ConnectionLimits, bounded_protocol
from guard.errors import AuditError, ConfigError, DetectorError, ReviewError
from guard.logging_setup import LEVELS, configure_logging
from guard.settings import GuardSettings
from guard.tracing import configure_tracing

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bound:
    """Where the servers listen once started (ports resolved when 0 was asked for)."""

    proxy_port: int
    admin_port: int
    upstream_url: str


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve_guard` and says when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        try:
            await super().startup(sockets)  # type: ignore[arg-type]
        except SystemExit:
            # uvicorn exits the process (SystemExit(3)) when it cannot bind; in a task that escapes as
            # "Task exception was never retrieved". Stop this server instead: `_start` reports it.
            self.should_exit = True
            return
        self.listening.set()

    def port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1])


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _http_impl() -> str:
    # httptools parses faster than h11 (benchmarks/bench_proxy.py); h11 is the portable fallback.
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def connection_limits(settings: GuardSettings) -> ConnectionLimits:
    return ConnectionLimits(
        max_head_bytes=settings.max_head_bytes,
        head_timeout_s=settings.head_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        keepalive_timeout_s=settings.keepalive_timeout_s,
        max_connections=settings.max_client_connections,
    )


def server_config(
    app: ASGIApp, host: str, port: int, graceful_s: float, limits: ConnectionLimits | None = None,
    on_head_too_large: Callable[[], None] | None = None,
) -> uvicorn.Config:
    # With limits (both guard ports): the bounded httptools protocol (guard.proxy.connections); h11, the
    # fallback without httptools, bounds the head itself (max incomplete event) but not its read time.
    http: type[asyncio.Protocol] | str = _http_impl()
    if limits is not None and http == "httptools":
        http = bounded_protocol(limits, on_head_too_large)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http,
        h11_max_incomplete_event_size=None if limits is None else limits.max_head_bytes,
        timeout_keep_alive=5 if limits is None else limits.keepalive_timeout_s,  # type: ignore[arg-type]
        loop="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,
        # The tier header is trusted by TCP peer address: uvicorn's default would let any loopback caller
        # rewrite that address with X-Forwarded-For and so choose its own tier.
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, int(graceful_s)),
    )


async def _start(server: _Server) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(server.serve())
    listening = asyncio.ensure_future(server.listening.wait())
    await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
    if not server.listening.is_set():
        listening.cancel()
        # uvicorn logs the bind error and exits the task; surface it as a config problem.
        with contextlib.suppress(BaseException):
            await task
        raise ConfigError(
            f"cannot listen on {server.config.host}:{server.config.port}: the address is in use or not "
            "available here (see the log line above); choose another with --port / --admin-port"
        )
    return task


async def serve_guard(
    settings: GuardSettings | None,
    *,
    demo: bool = False,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Bound], None] | None = None,
    base_settings: dict[str, object] | None = None,
    extras: Callable[[GuardSettings, GuardMetrics], Awaitable[Extras]] = open_extras,
) -> int:
    """Run until `stop` is set (or SIGTERM/SIGINT in the main thread), then drain and shut down.

    With `demo`, the echo model starts first on a free loopback port and `base_settings` (settings
    fields without `upstream_url`) are completed with its URL. `extras` opens the review gate, audit sink
    and admin routes (default: what the settings name)."""
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    in_main = threading.current_thread() is threading.main_thread()
    tasks: list[asyncio.Task[None]] = []
    demo_server: _Server | None = None
    if demo:
        from guard.demo import create_demo_app

        demo_server = _Server(server_config(create_demo_app(), "127.0.0.1", 0, 1.0))
        tasks.append(await _start(demo_server))
        settings = GuardSettings(**{**(base_settings or {}), "upstream_url": f"http://127.0.0.1:{demo_server.port()}"})
    if settings is None:
        raise ConfigError("serve_guard needs settings or demo=True")
    metrics = new_metrics()
    opened = await extras(settings, metrics)
    try:
        app = create_app(
            settings,
            metrics=metrics,
            review_gate=opened.review_gate,
            audit_sink=opened.audit_sink,
            admin_routes=opened.admin_routes,
            proxy_routes=opened.proxy_routes,
        )
    except BaseException:
        await opened.aclose()
        raise
    limits = connection_limits(settings)
    proxy_server = _Server(server_config(
        app.proxy, settings.host, settings.port, settings.drain_timeout_s, limits,
        lambda: metrics.observe_rejected(RejectReason.HEADERS_TOO_LARGE),
    ))
    admin_server = _Server(server_config(app.admin, settings.admin_host, settings.admin_port, 1.0, limits))
    if in_main:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        app.holder.install_sighup(loop)
    try:
        tasks.append(await _start(admin_server))
        tasks.append(await _start(proxy_server))
        await app.startup()
        bound = Bound(proxy_server.port(), admin_server.port(), str(settings.upstream_url))
        policy = app.holder.policy
        # The one start-up line an operator needs: where it listens and what it enforces.
        log.info(
            "guard listening",
            extra={
                "proxy_url": _url(settings.host, bound.proxy_port),
                "admin_url": _url(settings.admin_host, bound.admin_port),
                "policy": policy.name,
                "policy_version": policy.version,
                "detectors": len(policy.detectors),
                "load_s": round(time.perf_counter() - started, 2),
            },
        )
        if on_ready is not None:
            on_ready(bound)
        await stop.wait()
        log.info("draining", extra={"signal": "stop", "count": app.proxy.in_flight})
        # The listener stays open while draining: a new request, on a new connection too, gets an
        # API-shaped 503 (`shutting_down`) rather than a refused connection, and /readyz says 503 so the
        # load balancer takes the pod out; the listener closes once in-flight requests are done.
        app.proxy.start_draining()
        if not await app.proxy.wait_idle(settings.drain_timeout_s) and opened.review_gate is not None:
            # Callers still held for a reviewer are answered now (their items stay pending), not cut off.
            await opened.review_gate.release()
            await app.proxy.wait_idle(settings.drain_timeout_s)
    finally:
        for server in (proxy_server, admin_server, demo_server):
            if server is not None:
                server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.shutdown()
        await opened.aclose()
        if in_main:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", help="base URL of the model endpoint, e.g. http://127.0.0.1:8000")
    parser.add_argument("--policy", type=Path, help="policy file (default: the shipped policies/default.yaml)")
    parser.add_argument("--host", default="127.0.0.1", help="proxy listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="proxy port (default 8080)")
    parser.add_argument("--admin-host", default="127.0.0.1", help="admin listen address (default 127.0.0.1)")
    parser.add_argument("--admin-port", type=int, default=8081, help="admin port: health, metrics (default 8081)")
    parser.add_argument("--demo", action="store_true", help="start an in-process echo model as the upstream")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="seconds to finish in-flight requests")
    parser.add_argument("--max-connections", type=int, default=256, help="upstream connection pool size")
    parser.add_argument("--executor-threads", type=int, help="detector inference threads")
    parser.add_argument("--upstream-connect-timeout", type=float, help="seconds to connect to the upstream (default 5)")
    parser.add_argument(
        "--upstream-read-timeout", type=float, help="seconds the upstream may stay silent mid-answer (default 120)"
    )
    parser.add_argument("--max-head-bytes", type=int, help="largest request head, per connection (default 65536)")
    parser.add_argument("--head-timeout", type=float, help="seconds to receive a request head (default 10)")
    parser.add_argument("--body-timeout", type=float, help="seconds to receive a request body (default 60)")
    parser.add_argument("--keepalive-timeout", type=float, help="seconds an idle connection stays open (default 5)")
    parser.add_argument("--max-client-connections", type=int, help="open connections per port (default 1024)")
    parser.add_argument("--audit", "--audit-path", dest="audit_path", help="audit log: a JSONL file or postgresql://...")
    parser.add_argument("--audit-anchor", type=Path, help="file for the audit chain's anchor (last seq and hash)")
    parser.add_argument("--audit-anchor-interval", type=float, help="seconds between anchors (default 1)")
    parser.add_argument("--review-store", help="review store URL (carried for the review gate)")
    parser.add_argument("--review-rate", type=float, help="new held items per client per minute (default 30)")
    parser.add_argument("--review-burst", type=int, help="held items a client may add at once (default 10)")
    parser.add_argument("--review-max-pending", type=int, help="pending review items before 503 (default 1000)")
    parser.add_argument(
        "--review-retention", type=float, help="seconds a decided review item is kept (default 604800, 7 days)"
    )
    parser.add_argument("--tokens", "--tokens-file", dest="tokens_file", type=Path, help="reviewer tokens (YAML)")
    parser.add_argument("--log-level", choices=LEVELS, default="info")
    parser.add_argument(
        "--decision-log", action=argparse.BooleanOptionalAction, default=True,
        help="log one line per decision: route, tier, verdict, categories, never text (default on)",
    )


_CONNECTION_FLAGS = (
    ("max_head_bytes", "max_head_bytes"), ("head_timeout", "head_timeout_s"), ("body_timeout", "body_timeout_s"),
    ("keepalive_timeout", "keepalive_timeout_s"), ("max_client_connections", "max_client_connections"),
    ("audit_anchor_interval", "audit_anchor_interval_s"),
    ("review_rate", "review_rate_per_minute"), ("review_burst", "review_burst"),
    ("review_max_pending", "review_max_pending"), ("review_retention", "review_retention_s"),
)


def _settings_fields(args: argparse.Namespace) -> dict[str, object]:
    fields: dict[str, object] = {
        "host": args.host,
        "port": args.port,
        "admin_host": args.admin_host,
        "admin_port": args.admin_port,
        "policy_path": args.policy,
        "drain_timeout_s": args.drain_timeout,
        "upstream_max_connections": args.max_connections,
        "audit_path": args.audit_path,
        "audit_anchor_path": args.audit_anchor,
        "review_store_url": args.review_store,
        "tokens_file": args.tokens_file,
    }
    if args.executor_threads is not None:
        fields["executor_threads"] = args.executor_threads
    if args.upstream_connect_timeout is not None:
        fields["upstream_connect_timeout_s"] = args.upstream_connect_timeout
    if args.upstream_read_timeout is not None:
        fields["upstream_read_timeout_s"] = args.upstream_read_timeout
    for flag, name in _CONNECTION_FLAGS:
        if getattr(args, flag) is not None:
            fields[name] = getattr(args, flag)
    return fields


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    if importlib.util.find_spec("uvloop"):
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(args: argparse.Namespace) -> int:
    # Whatever else the process creates (a library's cache, a temp file) is private too; the files the guard
    # itself writes get explicit modes as well (guard.files), since the library runs under others' umask.
    os.umask(0o077)
    configure_logging(args.log_level)
    logging.getLogger("guard.decisions").disabled = not args.decision_log
    # stderr carries JSON log lines only: transformers would draw a "Loading weights" progress bar there.
    # Read when transformers is first imported, which happens later, when detectors load.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.demo == bool(args.upstream):
        print("guard serve: give exactly one of --upstream URL or --demo", file=sys.stderr)
        return 2
    fields = _settings_fields(args)
    # Traces only when OTEL_* variables ask for them (guard/tracing.py); flushed when the guard stops.
    tracer_provider = configure_tracing(os.environ)
    try:
        settings = None if args.demo else GuardSettings(**{**fields, "upstream_url": args.upstream})
        if args.demo:
            GuardSettings(**{**fields, "upstream_url": "http://127.0.0.1:1"})  # validate the rest up front
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(serve_guard(settings, demo=args.demo, base_settings=fields))
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            print(f"guard serve: {where}: {error['msg']}", file=sys.stderr)
        return 2
    except (ConfigError, AuditError, ReviewError) as exc:
        # A store that cannot be opened stops the start-up with its message, not a traceback.
        print(f"guard serve: {exc}", file=sys.stderr)
        return 2
    except DetectorError as exc:
        # A detector that cannot load: the guard must not serve unscreened. Its message names no text.
        print(f"guard serve: a detector failed to load: {exc}", file=sys.stderr)
        return 1
    finally:
        if tracer_provider is not None:
            tracer_provider.shutdown()
