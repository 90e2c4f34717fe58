"""Every Prometheus metric the guard exports, in one class that receives its registry.

Label values come only from configuration (detector names, route names, tier names) or closed enums, never
from callers: no text, paths, users, tenants or exception messages. Known label combinations are created up
front (`prepare`) so dashboards show zeros rather than gaps. A value outside a closed set is counted under
`other` rather than minting a new series, so a bug cannot blow up the label cardinality.

`LABELS` says where every label's values come from; `guard/commands/metrics_doc.py` turns it and the metric
objects into `docs/metrics.md`, and a test keeps that page current.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from guard.tracing import trace_exemplar
from guard.types import Action, Category, Direction, FailureReason, Verdict

# Latency buckets from 0.5 ms to 10 s: detector calls on CPU sit between 1 ms and a few hundred ms.
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
_REVIEW_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
_BYTES_BUCKETS = (0, 16, 64, 256, 1024, 4096, 16384, 65536)


class RejectReason:
    """Closed set of reasons a request is refused before screening (label values)."""

    BODY_TOO_LARGE = "body_too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_UTF8 = "invalid_utf8"
    TOO_DEEP = "too_deep"
    WRONG_SHAPE = "wrong_shape"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNKNOWN_ROUTE = "unknown_route"
    SHUTTING_DOWN = "shutting_down"
    CLIENT_DISCONNECT = "client_disconnect"
    HEADERS_TOO_LARGE = "headers_too_large"
    AMBIGUOUS_PATH = "ambiguous_path"
    TOKEN_INPUT = "token_input"

    ALL = (
        BODY_TOO_LARGE, MALFORMED_JSON, INVALID_UTF8, TOO_DEEP, WRONG_SHAPE, UNSUPPORTED_MEDIA_TYPE,
        UNKNOWN_ROUTE, SHUTTING_DOWN, CLIENT_DISCONNECT, HEADERS_TOO_LARGE,
        AMBIGUOUS_PATH, TOKEN_INPUT,
    )


UPSTREAM_STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "connect_error", "timeout", "reset")
FAIL_MODES = ("open", "closed")
REVIEW_OUTCOMES = ("approve", "deny", "edit", "timeout", "error")
RELOAD_RESULTS = ("success", "failure")
CACHE_RESULTS = ("hit", "miss")
SHED_REASONS = ("queue_full", "queue_timeout")  # guard.proxy.admission
ANSWER_CAPS = ("bytes", "duration", "held_chars")  # guard.proxy.answer_caps
OTHER = "other"

# Where each label's values come from: a closed tuple, or a sentence naming the configuration they come from.
LABELS: dict[str, tuple[str, ...] | str] = {
    "direction": tuple(d.value for d in Direction),
    "route": "the policy's route names (`routes[].name`); `guard_unscreened_requests_total` also `other` "
    "(a path no route names)",
    "tier": "the policy's tier names (`tiers`), else `other`",
    "decision": tuple(v.value for v in Verdict),
    "action": tuple(a.value for a in Action),
    "reason": "`guard_rejected_requests_total`: " + ", ".join(RejectReason.ALL)
    + "; `guard_detector_errors_total`: " + ", ".join(r.value for r in FailureReason)
    + "; `guard_shed_requests_total`: " + ", ".join(SHED_REASONS),
    "cap": ANSWER_CAPS,
    "detector": "the policy's detector names (`detectors[].name`)",
    "category": tuple(c.value for c in Category),
    "result": "`guard_cache_lookups_total`: " + ", ".join(CACHE_RESULTS)
    + "; `guard_policy_reloads_total`: " + ", ".join(RELOAD_RESULTS),
    "mode": FAIL_MODES,
    "status_class": UPSTREAM_STATUS_CLASSES,
    "outcome": REVIEW_OUTCOMES,
    "model": "the detector's configured model id or directory",
    "version": "versions of the guard, its policy and its models",
    "name": "the policy's `name`",
}


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def _closed(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


class GuardMetrics:
    """Owns every metric object; callers use the `observe_*` methods, never the objects directly."""

    def __init__(self, registry: CollectorRegistry, version: str) -> None:
        # `*_created` series double the series count (173 of 821) and no dashboard or alert reads them.
        # prometheus_client's switch is process-wide; it is set before any metric here is made.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        self.registry = registry
        self._tiers: frozenset[str] = frozenset()
        # CPU, memory and file descriptors of the guard itself (process_*, python_info): what a sizing
        # decision or a leak alert needs, on the same scrape.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.build_info = Info("guard_build", "Version of the running guard.", registry=registry)
        self.build_info.info({"version": version})
        self.requests = Counter(
            "guard_requests_total",
            "Screened messages by direction, route and the verdict the caller saw.",
            ["direction", "route", "decision"],
            registry=registry,
        )
        self.unscreened = Counter(
            "guard_unscreened_requests_total",
            "Requests forwarded without screening: `pass` routes by name, paths no route names as `other`.",
            ["route"],
            registry=registry,
        )
        self.shadow_actions = Counter(
            "guard_shadow_actions_total",
            "Actions a policy would have taken but only logged (shadow mode or `log` rows).",
            ["direction", "route", "action"],
            registry=registry,
        )
        # By tier, not by route: the action each risk tier took (bounded: tiers x directions x actions).
        self.tier_actions = Counter(
            "guard_tier_actions_total",
            "Decisions by risk tier, direction and the action the policy took (log rows count as log).",
            ["direction", "tier", "action"],
            registry=registry,
        )
        self.rejected = Counter(
            "guard_rejected_requests_total",
            "Requests refused before screening, by reason.",
            ["reason"],
            registry=registry,
        )
        self.findings = Counter(
            "guard_findings_total",
            "Findings by detector and category (before policy thresholds).",
            ["detector", "category"],
            registry=registry,
        )
        self.detector_duration = Histogram(
            "guard_detector_duration_seconds",
            "Time one detector call took (one batch).",
            ["detector"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.detector_batch = Histogram(
            "guard_detector_batch_texts",
            "Texts per detector call: micro-batch sizes.",
            ["detector"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.detector_failures = Counter(
            "guard_detector_errors_total",
            "Detector calls that failed or ran past their budget.",
            ["detector", "reason"],
            registry=registry,
        )
        self.fail_mode = Counter(
            "guard_fail_mode_total",
            "Messages decided by the policy's on_detector_error because a detector failed: open (let "
            "through) or closed (blocked or held).",
            ["direction", "mode"],
            registry=registry,
        )
        self.cache_lookups = Counter(
            "guard_cache_lookups_total",
            "Screening cache lookups by detector and result.",
            ["detector", "result"],
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "guard_upstream_request_duration_seconds",
            "Upstream time to response headers, by status class.",
            ["status_class"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "guard_overhead_seconds",
            "Time the guard added to a request: total time minus time waiting on the upstream.",
            ["direction"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.stream_holdback = Histogram(
            "guard_stream_holdback_bytes",
            "Bytes of model output held back, unreleased, at each screening step of a stream.",
            ["route"],
            buckets=_BYTES_BUCKETS,
            registry=registry,
        )
        self.stream_ttft_added = Histogram(
            "guard_stream_added_ttft_seconds",
            "Time between the upstream's first token and the guard releasing the first token.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.policy_reloads = Counter(
            "guard_policy_reloads_total",
            "Policy reload attempts by result; a failed reload keeps the running policy.",
            ["result"],
            registry=registry,
        )
        self.policy_info = Info(
            "guard_policy", "The loaded policy's name and version.", registry=registry
        )
        self.model_info = Gauge(
            "guard_model_info",
            "Models loaded by detectors (value 1), with their versions.",
            ["detector", "model", "version"],
            registry=registry,
        )
        self.review_hold_timeout = Gauge(
            "guard_review_hold_timeout_seconds",
            "The longest review hold timeout among the loaded policy's tiers: a pending item older than "
            "this is overdue.",
            registry=registry,
        )
        self.ready = Gauge("guard_ready", "1 once every detector is loaded and warm.", registry=registry)
        self.review_pending = Gauge(
            "guard_review_queue_items", "Review items waiting for a decision.", registry=registry
        )
        self.review_oldest_age = Gauge(
            "guard_review_oldest_age_seconds",
            "Age of the oldest pending review item (0 when the queue is empty).",
            registry=registry,
        )
        self.review_decision_time = Histogram(
            "guard_review_decision_seconds",
            "Time from enqueue to decision (or timeout).",
            ["outcome"],
            buckets=_REVIEW_BUCKETS,
            registry=registry,
        )
        self.review_outcomes = Counter(
            "guard_review_outcomes_total",
            "Review items closed, by outcome (timeout included).",
            ["outcome"],
            registry=registry,
        )
        self.audit_write_failures = Counter(
            "guard_audit_write_failures_total",
            "Audit records that could not be written (the request is then refused).",
            registry=registry,
        )
        self.unhandled = Counter(
            "guard_unhandled_errors_total",
            "Exceptions caught at the outermost ASGI boundary.",
            registry=registry,
        )
        # --- admission and answer caps (guard.proxy.admission, guard.proxy.answer_caps) ---
        self.shed = Counter(
            "guard_shed_requests_total",
            "Requests refused for overload (429/503 with Retry-After), never screened, by reason.",
            ["reason"],
            registry=registry,
        )
        self.admission_wait = Histogram(
            "guard_admission_wait_seconds",
            "Time a screening call waited for admission (not part of the detector budget).",
            ["direction"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.admission_in_flight = Gauge(
            "guard_admission_in_flight_items", "Screening calls admitted and running now.", registry=registry
        )
        self.admission_queued = Gauge(
            "guard_admission_queued_items", "Screening calls waiting for admission now.", registry=registry
        )
        self.answer_caps = Counter(
            "guard_answer_caps_total",
            "Streamed answers ended at a cap of their tier (size, duration, or held text for review).",
            ["cap"],
            registry=registry,
        )
        self.upstream_pool_in_use = Gauge(
            "guard_upstream_pool_in_use_items", "Upstream connections held by requests now.", registry=registry
        )
        for reason in SHED_REASONS:
            self.shed.labels(reason)
        for direction in Direction:
            self.admission_wait.labels(direction.value)
        for cap in ANSWER_CAPS:
            self.answer_caps.labels(cap)

    def prepare(
        self,
        detectors: Iterable[tuple[str, Iterable[Category]]],
        routes: Iterable[str],
        tiers: Iterable[str] = (),
    ) -> None:
        """Create every known label combination at zero so dashboards show zeros, not gaps."""
        routes = list(routes)
        self._tiers = frozenset(tiers)
        for tier in self._tiers:
            for direction in Direction:
                for action in Action:
                    self.tier_actions.labels(direction.value, tier, action.value)
        for direction in Direction:
            for route in routes:
                for verdict in Verdict:
                    self.requests.labels(direction.value, route, verdict.value)
                for action in Action:
                    self.shadow_actions.labels(direction.value, route, action.value)
            for mode in FAIL_MODES:
                self.fail_mode.labels(direction.value, mode)
            self.overhead.labels(direction.value)
        self.unscreened.labels(OTHER)
        for route in routes:
            self.stream_holdback.labels(route)
            self.stream_ttft_added.labels(route)
        for name, categories in detectors:
            self.detector_duration.labels(name)
            self.detector_batch.labels(name)
            for failure in FailureReason:
                self.detector_failures.labels(name, failure.value)
            for category in categories:
                self.findings.labels(name, category.value)
            for result in CACHE_RESULTS:
                self.cache_lookups.labels(name, result)
        for reject in RejectReason.ALL:
            self.rejected.labels(reject)
        for klass in UPSTREAM_STATUS_CLASSES:
            self.upstream_duration.labels(klass)
        for result in RELOAD_RESULTS:
            self.policy_reloads.labels(result)
        for outcome in REVIEW_OUTCOMES:
            self.review_outcomes.labels(outcome)
            self.review_decision_time.labels(outcome)

    # --- screening -------------------------------------------------------------------------------
    def observe_detector(self, detector: str, seconds: float, batch_size: int) -> None:
        self.detector_duration.labels(detector).observe(seconds, trace_exemplar())
        self.detector_batch.labels(detector).observe(batch_size)

    def observe_detector_failure(self, detector: str, reason: FailureReason) -> None:
        self.detector_failures.labels(detector, reason.value).inc()

    def observe_finding(self, detector: str, category: Category) -> None:
        self.findings.labels(detector, category.value).inc()

    def observe_cache(self, detector: str, hits: int, misses: int) -> None:
        if hits:
            self.cache_lookups.labels(detector, "hit").inc(hits)
        if misses:
            self.cache_lookups.labels(detector, "miss").inc(misses)

    def observe_fail_mode(self, direction: Direction, failed_open: bool) -> None:
        self.fail_mode.labels(direction.value, "open" if failed_open else "closed").inc()

    # --- requests --------------------------------------------------------------------------------
    def observe_decision(
        self, direction: Direction, route: str, verdict: Verdict, would_have_been: Action | None
    ) -> None:
        self.requests.labels(direction.value, route, verdict.value).inc()
        if would_have_been is not None:
            self.shadow_actions.labels(direction.value, route, would_have_been.value).inc()

    def observe_tier_action(self, direction: Direction, tier: str, action: Action) -> None:
        self.tier_actions.labels(direction.value, tier if tier in self._tiers else "other", action.value).inc()

    def prepare_unscreened(self, pass_routes: Iterable[str]) -> None:
        """Create `guard_unscreened_requests_total` at zero for each `pass` route (and `other`)."""
        for route in (*pass_routes, OTHER):
            self.unscreened.labels(route)

    def observe_unscreened(self, route: str) -> None:
        """`route`: a `pass` route's name, or `OTHER` for a path no route names."""
        self.unscreened.labels(route).inc()

    def observe_rejected(self, reason: str) -> None:
        self.rejected.labels(_closed(reason, RejectReason.ALL)).inc()

    def observe_upstream(self, status_class_: str, seconds: float) -> None:
        self.upstream_duration.labels(_closed(status_class_, UPSTREAM_STATUS_CLASSES)).observe(
            seconds, trace_exemplar()
        )

    def observe_overhead(self, direction: Direction, seconds: float) -> None:
        # The exemplar links a slow bucket to its trace (served in the OpenMetrics format only).
        self.overhead.labels(direction.value).observe(max(seconds, 0.0), trace_exemplar())

    def observe_stream_holdback(self, route: str, held_bytes: int) -> None:
        self.stream_holdback.labels(route).observe(held_bytes)

    def observe_stream_ttft_added(self, route: str, seconds: float) -> None:
        self.stream_ttft_added.labels(route).observe(max(seconds, 0.0))

    # --- policy and models -----------------------------------------------------------------------
    def observe_policy_reload(self, ok: bool) -> None:
        self.policy_reloads.labels("success" if ok else "failure").inc()

    def set_policy(self, name: str, version: str) -> None:
        self.policy_info.info({"name": name, "version": version})

    def set_model(self, detector: str, model: str, version: str) -> None:
        self.model_info.labels(detector, model, version).set(1)

    def clear_models(self) -> None:
        """Forget the loaded models' series (call before `set_model` after a reload swaps detectors)."""
        self.model_info.clear()

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    # --- review ----------------------------------------------------------------------------------
    def set_review_queue(self, pending: int, oldest_age_s: float) -> None:
        self.review_pending.set(pending)
        self.review_oldest_age.set(oldest_age_s)

    def set_review_hold_timeout(self, seconds: float) -> None:
        self.review_hold_timeout.set(seconds)

    def observe_review_outcome(self, outcome: str, seconds: float) -> None:
        outcome = _closed(outcome, REVIEW_OUTCOMES)
        self.review_outcomes.labels(outcome).inc()
        self.review_decision_time.labels(outcome).observe(max(seconds, 0.0))

    def observe_audit_failure(self) -> None:
        self.audit_write_failures.inc()

    def observe_unhandled(self) -> None:
        self.unhandled.inc()

    # --- admission and answer caps ---------------------------------------------------------------
    def observe_shed(self, reason: str) -> None:
        self.shed.labels(_closed(reason, SHED_REASONS)).inc()

    def observe_admission(self, direction: Direction, waited_s: float, in_flight: int, queued: int) -> None:
        self.admission_wait.labels(direction.value).observe(max(waited_s, 0.0))
        self.set_admission(in_flight, queued)

    def set_admission(self, in_flight: int, queued: int) -> None:
        self.admission_in_flight.set(in_flight)
        self.admission_queued.set(queued)

    def observe_answer_cap(self, cap: str) -> None:
        self.answer_caps.labels(_closed(cap, ANSWER_CAPS)).inc()

    def set_upstream_pool_in_use(self, connections: int) -> None:
        self.upstream_pool_in_use.set(connections)
