"""The response direction: relay an unscreened answer as is, or screen a buffered or streamed one.

On a screened route, 2xx answers are screened; a 4xx answer keeps its status and its JSON body's strings
are screened and redacted in place (an error message can echo the prompt), and a 4xx body that cannot be
screened is withheld; a 5xx answer keeps its status but its body is withheld (it was never screened). The
`x-guard-decision` of a buffered answer is the stronger of the input and output verdicts; a streamed
answer's headers leave before its output is screened, so they carry the input verdict, and a blocked
stream says so in-band (`finish_reason: "content_filter"`). A stream whose tier can escalate output to
review is held whole: a reviewer decides on the complete answer before any of it is released.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable

from starlette.types import Receive, Send

from guard.actions.redact import redact, spans_to_redact
from guard.codecs.base import Codec
from guard.codecs.error_body import extract_error
from guard.codecs.jsonsplice import rewrite_slots
from guard.errors import RequestError, UpstreamError
from guard.metrics import GuardMetrics, RejectReason
from guard.policy.model import SPAN_CATEGORIES, TierPolicy
from guard.proxy import errors
from guard.proxy.answer_caps import CAP_MESSAGES, AnswerRecord, StreamCaps
from guard.proxy.asgi_io import send_reply, watch_disconnect
from guard.proxy.headers import RawHeaders, header_value, media_type, response_headers_for_client
from guard.proxy.runtime import ActivePolicy
from guard.proxy.screening_step import AuditWriteError, StepContext, Stepper
from guard.proxy.streaming import StepOutcome, StreamScreen
from guard.proxy.upstream import ResponseTooLargeError, UpstreamResponse
from guard.types import Action, Decision, Direction, Verdict

log = logging.getLogger(__name__)

_DECISION = b"x-guard-decision"
_VERDICT_BYTES = {v: v.value.encode() for v in Verdict}
_STRENGTH = {Verdict.ALLOW: 0, Verdict.REDACT: 1, Verdict.REVIEW: 2, Verdict.BLOCK: 3}
_JSON = [(b"content-type", b"application/json")]
# Answers up to this size are read whole and sent in one message with their Content-Length.
_SMALL_BODY = 1 << 20
# Streamed answers: SSE (OpenAI), NDJSON (Ollama); the route's codec reads its own format.
_STREAM_TYPES = frozenset({"text/event-stream", "application/x-ndjson"})
_UPSTREAM_FAILED = errors.error_body("The model endpoint failed to answer.", "upstream_error", "upstream_error")
_ERROR_WITHHELD = errors.error_body(
    "The model endpoint refused the request; its error message could not be screened, so it was withheld.",
    "upstream_error",
    "upstream_error",
)


def stream_window(tier: TierPolicy) -> int:
    """The tier's hold-back window; unbounded where the output can escalate to review, because a
    reviewer must see (and may refuse) the whole answer before any of it leaves."""
    can_review = tier.on_detector_error is Action.REVIEW or any(
        Action.REVIEW in table.all_actions() for table in tier.table(Direction.OUTPUT).values()
    )
    return sys.maxsize if can_review else tier.stream.window_chars


def stronger(a: Verdict, b: Verdict) -> Verdict:
    return a if _STRENGTH[a] >= _STRENGTH[b] else b


class OutputRelay:
    def __init__(self, stepper: Stepper, metrics: GuardMetrics) -> None:
        self._stepper = stepper
        self._metrics = metrics

    async def relay(self, response: UpstreamResponse, send: Send, extra: RawHeaders, receive: Receive) -> float:
        """Send the upstream's answer unchanged (hop-by-hop headers aside); the seconds spent waiting on it."""
        headers = response_headers_for_client(response.headers)
        headers.extend(extra)
        length = header_value(response.headers, b"content-length")
        waited = 0.0
        try:
            if length is not None and length.isdigit() and int(length) <= _SMALL_BODY:
                started = time.perf_counter()
                body = await response.read(_SMALL_BODY)
                waited = time.perf_counter() - started
                await send_reply(send, response.status, body, headers)
                return waited
            await send({"type": "http.response.start", "status": response.status, "headers": headers})

            async def forward(chunk: bytes | None) -> bool:
                if chunk is not None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                return chunk is None

            return await self._pump(response, send, receive, forward)
        finally:
            await response.aclose()

    async def _pump(
        self,
        response: UpstreamResponse,
        send: Send,
        receive: Receive,
        step: Callable[[bytes | None], Awaitable[bool]],
    ) -> float:
        """Feed the upstream's body chunks (then None at its end) to `step`, which sends what may go and
        says when to stop; end the body cleanly. An upstream that breaks off ends the body where it broke
        (nothing unscreened was released); a client that disconnects stops the pump and is counted.
        Returns the seconds spent waiting on the upstream."""
        watcher, state = watch_disconnect(receive, asyncio.current_task())
        waited = 0.0
        try:
            chunks = response.chunks()
            while True:
                started = time.perf_counter()
                chunk = await anext(chunks, None)
                waited += time.perf_counter() - started
                if await step(chunk):
                    break
            state[1] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except UpstreamError:
            self._metrics.observe_upstream("reset", 0.0)
            state[1] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state[0]:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            self._metrics.observe_rejected(RejectReason.CLIENT_DISCONNECT)
        finally:
            watcher.cancel()
        return waited

    async def respond(
        self,
        active: ActivePolicy,
        codec: Codec,
        response: UpstreamResponse,
        send: Send,
        receive: Receive,
        ctx: StepContext,
        in_verdict: Verdict,
        id_header: tuple[bytes, bytes],
        screen_output: bool,
        before_upstream: float,
    ) -> None:
        extra = [(_DECISION, _VERDICT_BYTES[in_verdict]), id_header]
        if screen_output and response.status >= 500:
            # A failing upstream's body is nobody's screened text (it may echo the prompt or hold model
            # output): keep its status (and Retry-After), withhold its body.
            retry = header_value(response.headers, b"retry-after")
            await response.aclose()
            headers = [*_JSON, *extra] + ([(b"retry-after", retry)] if retry is not None else [])
            await send_reply(send, response.status, _UPSTREAM_FAILED, headers)
            self._metrics.observe_overhead(Direction.OUTPUT, time.perf_counter() - before_upstream)
            return
        if screen_output and 400 <= response.status < 500:
            waited = await self._error_answer(active, response, send, ctx, in_verdict, id_header)
        elif not screen_output or not 200 <= response.status < 300:
            if not screen_output:
                await self._stepper.audit(active, (), ctx, active.allow[(ctx.tier, ctx.direction)])
                self._metrics.observe_decision(Direction.OUTPUT, ctx.route, Verdict.ALLOW, None)
            waited = await self.relay(response, send, extra, receive)
        else:
            encoding = header_value(response.headers, b"content-encoding")
            if encoding is not None and encoding.strip().lower() not in (b"", b"identity"):
                await response.aclose()
                await send_reply(send, errors.UPSTREAM_INVALID.status, errors.UPSTREAM_INVALID.body, [*_JSON, id_header])
                return
            if media_type(response.headers) in _STREAM_TYPES:
                waited = await self._stream(active, codec, response, send, receive, ctx, extra)
            else:
                waited = await self._buffered(active, codec, response, send, ctx, in_verdict, id_header)
        # Guard time on the way back: everything since the upstream call that was not spent waiting on it.
        self._metrics.observe_overhead(Direction.OUTPUT, time.perf_counter() - before_upstream - waited)

    async def _error_answer(
        self,
        active: ActivePolicy,
        response: UpstreamResponse,
        send: Send,
        ctx: StepContext,
        in_verdict: Verdict,
        id_header: tuple[bytes, bytes],
    ) -> float:
        """A 4xx answer keeps its status, its strings screened and redacted in place (it may echo the
        prompt); a body that is not JSON, or that the policy would block or hold, is withheld."""
        started = time.perf_counter()
        limits = active.limits
        try:
            body: bytes | None = await response.read(limits.max_body_bytes)
        except ResponseTooLargeError:
            body = None
        finally:
            await response.aclose()
        waited = time.perf_counter() - started
        extraction = extract_error(body, limits.max_json_depth, limits.max_texts) if body is not None else None
        verdict = Verdict.BLOCK
        if extraction is not None and body is not None:
            texts = [slot.text for slot in extraction.slots]
            decision = await self._stepper.decide(active, texts, ctx)
            await self._stepper.audit(active, texts, ctx, decision)
            if decision.action is Action.REDACT:
                verdict = Verdict.REDACT
                edits = {i: redact(t, spans) for i, t in enumerate(texts) if (spans := spans_to_redact(decision, i))}
                body = rewrite_slots(body, extraction, edits)
            elif decision.action not in (Action.BLOCK, Action.REVIEW):
                verdict = Verdict.ALLOW
            self._metrics.observe_decision(Direction.OUTPUT, ctx.route, verdict, decision.would_have_been)
        headers = response_headers_for_client(response.headers)
        if verdict is Verdict.BLOCK:
            body = _ERROR_WITHHELD
            headers = [(k, v) for k, v in headers if k.lower() != b"content-type"] + _JSON
        headers += [(_DECISION, _VERDICT_BYTES[stronger(in_verdict, verdict)]), id_header]
        await send_reply(send, response.status, body or b"", headers)
        return waited

    async def _buffered(
        self,
        active: ActivePolicy,
        codec: Codec,
        response: UpstreamResponse,
        send: Send,
        ctx: StepContext,
        in_verdict: Verdict,
        id_header: tuple[bytes, bytes],
    ) -> float:
        started = time.perf_counter()
        try:
            body = await response.read(active.limits.max_body_bytes)
        except ResponseTooLargeError:
            await send_reply(send, errors.UPSTREAM_INVALID.status, errors.UPSTREAM_INVALID.body, [*_JSON, id_header])
            return time.perf_counter() - started
        finally:
            await response.aclose()
        waited = time.perf_counter() - started
        try:
            extraction = codec.extract(body, Direction.OUTPUT)
        except RequestError:
            # The upstream's answer is not what the route's codec reads: withhold rather than pass unscreened.
            await send_reply(send, errors.UPSTREAM_INVALID.status, errors.UPSTREAM_INVALID.body, [*_JSON, id_header])
            return waited
        texts = [slot.text for slot in extraction.slots]
        decision = await self._stepper.decide(active, texts, ctx)
        resolution = await self._stepper.resolve(active, texts, ctx, decision)
        if resolution.forward:
            if resolution.replacements:
                body = codec.rewrite(
                    body, extraction, {extraction.slots[i].index: t for i, t in resolution.replacements.items()}
                )
        else:
            body = codec.refuse_output(body, extraction, active.policy.refusal_text)
        headers = response_headers_for_client(response.headers)
        headers += [(_DECISION, _VERDICT_BYTES[stronger(in_verdict, resolution.verdict)]), id_header]
        await send_reply(send, response.status, body, headers)
        return waited

    async def _stream(
        self,
        active: ActivePolicy,
        codec: Codec,
        response: UpstreamResponse,
        send: Send,
        receive: Receive,
        ctx: StepContext,
        extra: RawHeaders,
    ) -> float:
        reader = codec.stream_reader()
        if reader is None:
            await response.aclose()
            await send_reply(send, errors.UPSTREAM_INVALID.status, errors.UPSTREAM_INVALID.body, [*_JSON, extra[-1]])
            return 0.0
        tier = active.policy.tiers[ctx.tier]
        worst: list[Decision] = []
        verdict = [Verdict.ALLOW]
        review_meta = ["", ""]

        async def check(choice: int, text: str) -> StepOutcome:
            decision = await self._stepper.decide(active, (text,), ctx)
            if not worst or decision.action.strength > worst[0].action.strength:
                worst[:] = [decision]
            # Only spans that could be redacted must stay whole across a cut; a classifier's window span
            # (a finding's "where") must not hold the stream back.
            spans = [f.span for f in decision.findings if f.span is not None and f.category in SPAN_CATEGORIES]
            if decision.action is Action.BLOCK:
                verdict[0] = Verdict.BLOCK
                return StepOutcome(block=True)
            if decision.action is Action.REVIEW:
                resolution, review_meta[0], review_meta[1] = await self._stepper.hold((text,), ctx, decision, b"")
                verdict[0] = stronger(verdict[0], resolution.verdict)
                if not resolution.forward:
                    return StepOutcome(block=True)
                return StepOutcome(spans=spans, replaced=resolution.replacements.get(0))
            if decision.action is Action.REDACT:
                verdict[0] = stronger(verdict[0], Verdict.REDACT)
                return StepOutcome(spans=spans, redact=spans_to_redact(decision, 0))
            return StepOutcome(spans=spans)

        window = stream_window(tier)
        record = AnswerRecord(self._stepper.text_digest_factory())
        caps = StreamCaps(tier.answer, holds_whole=window == sys.maxsize)
        screen = StreamScreen(
            reader, check, redact, active.policy.refusal_text, window, tier.stream.overlap_chars, record.add
        )
        headers = response_headers_for_client(response.headers)
        headers.extend(extra)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        first_release: list[float] = []

        async def screened(chunk: bytes | None) -> bool:
            cap = caps.exceeded(chunk) if chunk is not None else None
            if cap:
                out = screen.refuse(CAP_MESSAGES[cap])
            else:
                out = await screen.feed(chunk) if chunk is not None else await screen.finish()
            if not cap and not out.blocked:
                cap = caps.held_exceeded(screen.held_chars())
                if cap:
                    out.chunks.extend(screen.refuse(CAP_MESSAGES[cap]).chunks)
                    out.blocked = True
            if cap:
                self._metrics.observe_answer_cap(cap)
            for piece in out.chunks:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            if out.released_text and not first_release and screen.first_text_at is not None:
                first_release.append(time.perf_counter())
                self._metrics.observe_stream_ttft_added(ctx.route, first_release[0] - screen.first_text_at)
            self._metrics.observe_stream_holdback(ctx.route, screen.held_bytes())
            return out.blocked or chunk is None

        try:
            waited = await self._pump(response, send, receive, screened)
        finally:
            await response.aclose()
        decision = worst[0] if worst else active.allow[(ctx.tier, ctx.direction)]
        try:
            await self._stepper.audit(
                active, record.texts(), ctx, decision, review_meta[0], review_meta[1], text_hmacs=record.hmacs()
            )
        except AuditWriteError:
            # The answer has already left; the failure is counted (guard_audit_write_failures_total).
            log.error("audit append failed after a stream ended", extra={"route": ctx.route})
        self._metrics.observe_decision(Direction.OUTPUT, ctx.route, verdict[0], decision.would_have_been)
        return waited
