"""The screen → decide → act flow for one HTTP exchange, shared by `guard serve` and `GuardMiddleware`.

    canonical path (ambiguous forms: 400) → match route (`guard.policy.routes`)
      ─ `pass` route, or no route and `unknown_routes` lets it through: forwarded unscreened, counted, logged
      ─ no route otherwise: API-shaped 404 "not screened"
    read body (bounded) → codec.extract → screen → decide → act (redact | block | review | forward)
    upstream → output: non-streamed: extract → screen → decide → rewrite or refuse_output
                       streamed (SSE, NDJSON): hold-back windows (`guard.proxy.streaming`)
    every decision → audit + metrics; responses carry x-guard-decision and x-guard-request-id

Fast path: when a tier has no detectors for a direction, that direction's body is never parsed, and an
unscreened response is relayed as the upstream sent it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Receive, Scope, Send

from guard.codecs.base import Codec, Extraction, Reply
from guard.codecs.registry import TEXTLESS_OUTPUT
from guard.errors import RequestError, UpstreamError, UpstreamTimeoutError
from guard.metrics import OTHER, GuardMetrics, RejectReason, status_class
from guard.policy.model import PolicyFile
from guard.policy.routes import CanonicalPath, RouteMatch, canonical_path, match_route
from guard.policy.tiers import resolve_tier
from guard.proxy import errors
from guard.proxy.admission import OverloadedError, overload_reply
from guard.proxy.asgi_io import ClientDisconnectedError, forward_path, read_body, send_reply
from guard.proxy.unscreened import has_body, not_screened_reply, unscreened_scope
from guard.logging_setup import set_request_id
from guard.proxy.headers import RawHeaders, header_value, media_type, request_headers_for_upstream, request_id_from
from guard.proxy.output import OutputRelay
from guard.proxy.runtime import ActivePolicy, GuardRuntime
from guard.proxy.screening_step import AuditWriteError, Resolution, ReviewShedError, StepContext, Stepper
from guard.proxy.upstream import Upstream, UpstreamResponse
from guard.tracing import describe_route, exchange_span, inject_trace_context, tracer
from guard.types import Direction, Verdict

log = logging.getLogger(__name__)

# Routes whose bodies must say `application/json`. Not Ollama's: it reads every body as JSON whatever its
# Content-Type (its own docs use `curl -d`, which sends form-encoded), and so does the guard's codec.
_JSON_CODECS = frozenset(
    {"openai_chat", "openai_completions", "json", "openai_responses", "anthropic_messages", "openai_embeddings"}
)
_DECISION = b"x-guard-decision"
_REQUEST_ID = b"x-guard-request-id"
_VERDICT_BYTES = {v: v.value.encode() for v in Verdict}
_JSON = [(b"content-type", b"application/json")]


def reject_reason(exc: RequestError) -> str:
    """A bounded metric label for a refused body. Codecs raise with a generic code, so the status and the
    (text-free) message tell the kinds apart."""
    if exc.status == 413:
        return RejectReason.BODY_TOO_LARGE
    if exc.status == 415:
        return RejectReason.UNSUPPORTED_MEDIA_TYPE
    if exc.code in RejectReason.ALL:
        return exc.code
    message = exc.message.lower()
    if "utf-8" in message:
        return RejectReason.INVALID_UTF8
    if "deep" in message or "depth" in message or "nest" in message:
        return RejectReason.TOO_DEEP
    if "not valid json" in message or "duplicate" in message:
        return RejectReason.MALFORMED_JSON
    return RejectReason.WRONG_SHAPE


def _reply_headers(reply: Reply) -> RawHeaders:
    headers: RawHeaders = [(b"content-type", reply.content_type.encode())]
    headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers)
    return headers


class Pipeline:
    """One request at a time, many concurrently; no per-request state outside `handle`'s frame."""

    def __init__(
        self,
        runtime: GuardRuntime,
        upstream: Upstream,
        stepper: Stepper,
        metrics: GuardMetrics,
        unscreened_app: ASGIApp | None = None,
    ) -> None:
        """`unscreened_app`: where requests to routes the policy does not know go when it lets them pass,
        untouched (the middleware's wrapped app); without it they are forwarded through `upstream`."""
        self._unscreened_app = unscreened_app
        self._runtime = runtime
        self._upstream = upstream
        self._stepper = stepper
        self._metrics = metrics
        self._output = OutputRelay(stepper, metrics)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        with exchange_span(scope["headers"], scope["method"]):
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers: RawHeaders = scope["headers"]
        request_id = request_id_from(headers)
        set_request_id(request_id)
        id_header = (_REQUEST_ID, request_id.encode())
        active = await self._runtime.ensure_active()
        policy = active.policy
        query = scope.get("query_string", b"").decode("latin-1")
        method: str = scope["method"]
        codec: Codec | None = None
        try:
            canonical = canonical_path(forward_path(scope)[0])
            match = match_route(policy, canonical, method)
            if match is None or match.route.pass_:
                await self._unscreened(scope, receive, send, policy, canonical, match, query, id_header)
                return
            route, path = match.route, match.forward_path

            peer = scope.get("client")
            # Header names are only decoded when the policy reads a tier header at all.
            header_map = (
                {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers} if policy.tier_header else {}
            )
            tier = resolve_tier(policy, route, header_map, peer[0] if peer else None)
            describe_route(route.name, tier, route.codec.kind if route.codec is not None else "")
            review_id = header_value(headers, b"x-guard-review-id")
            in_ctx = StepContext(
                request_id, route.name, tier, Direction.INPUT, method, path,
                review_id.decode("latin-1") if review_id is not None else "",
                peer[0] if peer else "",
            )
            codec = active.codecs[route.name]
            codec_kind = route.codec.kind if route.codec is not None else ""
            body = await read_body(receive, policy.limits.max_body_bytes, header_value(headers, b"content-length"))
            out_headers = request_headers_for_upstream(headers)
            # Embedding answers are vectors: no text to screen, relayed as sent (and audited as allow).
            screen_output = bool(active.detectors_for(tier, Direction.OUTPUT)) and codec_kind not in TEXTLESS_OUTPUT
            if screen_output:
                # The guard must read what it screens: ask for an unencoded answer.
                out_headers = [(k, v) for k, v in out_headers if k.lower() != b"accept-encoding"]
                out_headers.append((b"accept-encoding", b"identity"))

            if active.detectors_for(tier, Direction.INPUT):
                resolution, extraction = await self._screen_input(
                    active, codec, codec_kind, headers, body, in_ctx
                )
                if not resolution.forward:
                    await self._refuse_input(send, codec, resolution, id_header)
                    return
                if resolution.replacements:
                    body = codec.rewrite(
                        body, extraction, {extraction.slots[i].index: t for i, t in resolution.replacements.items()}
                    )
                in_verdict = resolution.verdict
            else:
                decision = active.allow[(tier, Direction.INPUT)]
                await self._stepper.audit(active, (), in_ctx, decision)
                self._metrics.observe_decision(Direction.INPUT, route.name, Verdict.ALLOW, None)
                in_verdict = Verdict.ALLOW

            before_upstream = time.perf_counter()
            self._metrics.observe_overhead(Direction.INPUT, before_upstream - started)
            response = await self._call_upstream(method, path, query, out_headers, body, scope)
            out_ctx = StepContext(
                request_id, route.name, tier, Direction.OUTPUT, method, path, client=peer[0] if peer else ""
            )
            await self._output.respond(
                active, codec, response, send, receive, out_ctx, in_verdict, id_header, screen_output, before_upstream
            )
        except OverloadedError as exc:
            # Shed before screening: an API-shaped 429/503 with Retry-After, never a verdict.
            shed = overload_reply(codec, exc)
            await send_reply(send, shed.status, shed.body, [*_reply_headers(shed), id_header])
        except RequestError as exc:
            self._metrics.observe_rejected(reject_reason(exc))
            await send_reply(send, exc.status, errors.error_body(exc.message, exc.code), [*_JSON, id_header])
        except UpstreamError as exc:
            reply = errors.UPSTREAM_TIMEOUT if isinstance(exc, UpstreamTimeoutError) else errors.UPSTREAM_UNAVAILABLE
            await send_reply(send, reply.status, reply.body, [*_JSON, id_header])
        except AuditWriteError:
            await send_reply(send, errors.AUDIT_FAILED.status, errors.AUDIT_FAILED.body, [*_JSON, id_header])
        except ReviewShedError as exc:
            review_shed = exc.shed
            error_type = "rate_limit_error" if review_shed.status == 429 else "server_error"
            retry = (b"retry-after", str(review_shed.retry_after_s).encode())
            await send_reply(
                send, review_shed.status, errors.error_body(review_shed.message, review_shed.code, error_type),
                [*_JSON, retry, id_header],
            )
        except ClientDisconnectedError:
            self._metrics.observe_rejected(RejectReason.CLIENT_DISCONNECT)

    async def _unscreened(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        policy: PolicyFile,
        canonical: CanonicalPath,
        match: RouteMatch | None,
        query: str,
        id_header: tuple[bytes, bytes],
    ) -> None:
        """A `pass` route, or a path no route names: forwarded unscreened (at the canonical path, counted
        and logged without text) when the route or `unknown_routes` allows it, else refused with 404."""
        headers: RawHeaders = scope["headers"]
        method: str = scope["method"]
        if match is None:
            bodiless_read = method in ("GET", "HEAD", "OPTIONS") and not has_body(headers)
            if policy.unknown_routes == "block" or (policy.unknown_routes == "pass_bodiless" and not bodiless_read):
                self._metrics.observe_rejected(RejectReason.UNKNOWN_ROUTE)
                status, body = not_screened_reply(canonical)
                await send_reply(send, status, body, [*_JSON, id_header])
                return
            label, path = OTHER, canonical.encoded()
        else:
            label, path = match.route.name, match.forward_path
        self._metrics.observe_unscreened(label)
        log.info("request passed unscreened", extra={"route": label, "method": method})
        if self._unscreened_app is not None:
            await self._unscreened_app(unscreened_scope(scope, path), receive, send)
            return
        body = await read_body(receive, policy.limits.max_body_bytes, header_value(headers, b"content-length"))
        response = await self._call_upstream(method, path, query, request_headers_for_upstream(headers), body, scope)
        await self._output.relay(response, send, [id_header], receive)

    async def _screen_input(
        self, active: ActivePolicy, codec: Codec, kind: str, headers: RawHeaders, body: bytes, ctx: StepContext
    ) -> tuple[Resolution, Extraction]:
        if kind in _JSON_CODECS:
            mtype = media_type(headers)
            if mtype != "application/json" and not mtype.endswith("+json"):
                raise RequestError(415, "Content-Type must be application/json on this route", "unsupported_media_type")
        encoding = header_value(headers, b"content-encoding")
        if encoding is not None and encoding.strip().lower() not in (b"", b"identity"):
            raise RequestError(415, "compressed request bodies are not accepted on screened routes", "unsupported_media_type")
        with tracer.start_as_current_span("guard.codec.extract") as span:
            extraction = codec.extract(body, Direction.INPUT)
            span.set_attribute("guard.texts", len(extraction.slots))
        texts = [slot.text for slot in extraction.slots]
        decision = await self._stepper.decide(active, texts, ctx, [slot.role for slot in extraction.slots])
        resolution = await self._stepper.resolve(active, texts, ctx, decision, body)
        return resolution, extraction

    async def _refuse_input(
        self, send: Send, codec: Codec, resolution: Resolution, id_header: tuple[bytes, bytes]
    ) -> None:
        if resolution.deferred_id:
            body = errors.deferred_body(resolution.deferred_id)
            await send_reply(send, 202, body, [*_JSON, (_DECISION, b"review"), id_header])
            return
        reply = codec.refuse_input(resolution.decision, resolution.message)
        headers = _reply_headers(reply)
        headers += [(_DECISION, _VERDICT_BYTES[resolution.verdict]), id_header]
        await send_reply(send, reply.status, reply.body, headers)

    async def _call_upstream(
        self, method: str, path: str, query: str, headers: RawHeaders, body: bytes, scope: Scope
    ) -> UpstreamResponse:
        started = time.perf_counter()
        with tracer.start_as_current_span("guard.upstream", kind=SpanKind.CLIENT) as span:
            response = await self._send_upstream(method, path, query, inject_trace_context(headers), body, scope, started)
            span.set_attribute("http.response.status_code", response.status)
        return response

    async def _send_upstream(
        self, method: str, path: str, query: str, headers: RawHeaders, body: bytes, scope: Scope, started: float
    ) -> UpstreamResponse:
        try:
            response = await self._upstream.send(method, path, query, headers, body, scope)
        except UpstreamTimeoutError:
            self._metrics.observe_upstream("timeout", time.perf_counter() - started)
            raise
        except UpstreamError:
            self._metrics.observe_upstream("connect_error", time.perf_counter() - started)
            raise
        self._metrics.observe_upstream(status_class(response.status), time.perf_counter() - started)
        return response
