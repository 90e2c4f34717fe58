"""OpenTelemetry traces: a span per exchange, with child spans for the codec, each detector, the decision, the
review hold and the upstream call. Off unless the standard `OTEL_*` variables configure an exporter.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 OTEL_SERVICE_NAME=guard guard serve ...

What a span may carry is as strict as a log line (STYLE §5): route and tier names, the verdict, action and
categories (closed sets), detector names, counts and durations, and the GenAI semantic-convention
attributes that describe the operation (`gen_ai.operation.name`, `gen_ai.system`). Never text, never a
path or query string (a query can hold personal data), never an exception message.

The code that makes spans uses OpenTelemetry's API only (`tracer` below): with no SDK configured every span
is a no-op that costs a few hundred nanoseconds. `configure_tracing` (called once by `guard serve`, as
logging is) installs the SDK's provider with a batching OTLP/HTTP exporter; the exporter reads its endpoint,
headers, timeout and compression from the `OTEL_EXPORTER_OTLP_*` variables itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from typing import TYPE_CHECKING

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

tracer = trace.get_tracer("guard")

# The variables that ask for traces. Without any of them the SDK is not even imported.
_ENABLING = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")

# gen_ai.operation.name per codec kind (OpenTelemetry GenAI semantic conventions).
_OPERATIONS = {
    "openai_chat": "chat",
    "openai_completions": "text_completion",
    "openai_responses": "chat",
    "anthropic_messages": "chat",
    "ollama_chat": "chat",
    "ollama_generate": "text_completion",
    "openai_embeddings": "embeddings",
}
_SYSTEMS = {"anthropic_messages": "anthropic", "ollama_chat": "ollama", "ollama_generate": "ollama"}


def tracing_requested(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(name) for name in _ENABLING)


def configure_tracing(environ: Mapping[str, str]) -> TracerProvider | None:
    """Install the SDK's tracer provider with an OTLP/HTTP exporter when the environment asks for traces.

    Returns the provider (call `shutdown()` on it to flush at exit), or None when tracing stays off."""
    if not tracing_requested(environ):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from guard.version import guard_version

    # Defaults only: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win (Resource.create lets explicit
    # attributes override the environment's, so the service name is set here only when none is given).
    defaults = {"service.version": guard_version()}
    if not environ.get("OTEL_SERVICE_NAME"):
        defaults["service.name"] = "guard"
    resource = Resource.create(defaults)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


@contextlib.contextmanager
def exchange_span(headers: Sequence[tuple[bytes, bytes]], method: str) -> Iterator[Span]:
    """The root span of one exchange, a child of the caller's `traceparent` when it sent one."""
    carrier = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers if k.lower() in _PROPAGATED}
    parent = propagate.extract(carrier) if carrier else None
    with tracer.start_as_current_span(
        "guard.exchange", context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
    ) as span:
        yield span


_PROPAGATED = frozenset({b"traceparent", b"tracestate"})


def describe_route(route: str, tier: str, codec_kind: str) -> None:
    """Route, tier and the GenAI operation on the current (exchange) span, once the route is known."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("guard.route", route)
    span.set_attribute("guard.tier", tier)
    operation = _OPERATIONS.get(codec_kind)
    if operation is not None:
        span.set_attribute("gen_ai.operation.name", operation)
        span.set_attribute("gen_ai.system", _SYSTEMS.get(codec_kind, "openai"))


def inject_trace_context(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream request's headers with `traceparent` naming the current (upstream-call) span, so the
    model server's own spans join the trace. Unchanged when tracing is off."""
    if not trace.get_current_span().get_span_context().is_valid:
        return headers
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context.get_current())
    if not carrier:
        return headers
    kept = [(k, v) for k, v in headers if k.lower() not in _PROPAGATED]
    return kept + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in carrier.items()]


def current_trace_id() -> str | None:
    """The current span's trace id as 32 hex digits (for log lines and exemplars), or None outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")


def trace_exemplar() -> dict[str, str] | None:
    """An exemplar for a latency histogram: the trace that took this long (OpenMetrics exposition only)."""
    trace_id = current_trace_id()
    return {"trace_id": trace_id} if trace_id is not None else None
