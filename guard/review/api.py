"""The reviewer API and console on the admin port: `review_routes(store, tokens, audit, ...)`.

    GET  /v1/reviews?status=pending&limit=100   queue, oldest first (reviewer, admin, auditor)
    GET  /v1/reviews/{id}[?unmask=true]          one item, PII masked; only `admin` may unmask (audited)
    POST /v1/reviews/{id}/decision               {"outcome": "approve"|"deny"|"edit", "text", "index", "note"}
    GET  /console/                               the console page (static; it holds no data and calls the API)

Every API route needs `Authorization: Bearer <token>` (401 without, 403 for a role that may not).
A second decision on one item is 409. Decisions and unmasking are appended to the audit log with the
reviewer's name; if that record cannot be written the unmasked item is not shown (503).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from guard.audit.base import ReviewActionEvent, ReviewAuditSink
from guard.errors import AlreadyDecidedError, AuditError, ReviewError
from guard.metrics import GuardMetrics
from guard.review.gate import StoreReviewGate
from guard.review.items import ItemFinding, ItemStatus, ReviewerOutcome
from guard.review.store import ItemNotFoundError, ReviewStore
from guard.review.tokens import Principal, TokenSet
from guard.review.console_headers import ConsoleHeaders
from guard.review.views import detail, summary

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"
MAX_LIMIT = 500
MAX_TEXT_CHARS = 1_000_000
MAX_NOTE_CHARS = 2000
_BEARER = "bearer "


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: ReviewerOutcome
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] | None = None
    index: Annotated[int, Field(ge=0)] | None = None
    note: Annotated[str, Field(max_length=MAX_NOTE_CHARS)] = ""


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "code": code}}, status_code=status, headers=headers)


Handler = Callable[[Request, Principal], Awaitable[Response]]


class ReviewApi:
    """Handlers for the routes above. Lends everything it is given; owns nothing."""

    def __init__(
        self, store: ReviewStore, tokens: TokenSet, audit: ReviewAuditSink | None, metrics: GuardMetrics,
        gate: StoreReviewGate | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._audit = audit
        self._metrics = metrics
        self._gate = gate
        self._clock = clock

    def authed(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            principal = None
            if header[: len(_BEARER)].lower() == _BEARER:
                principal = self._tokens.authenticate(header[len(_BEARER):].strip())
            if principal is None:
                return _error(401, "a valid bearer token is required", "unauthorized", {"WWW-Authenticate": "Bearer"})
            try:
                return await handler(request, principal)
            except ItemNotFoundError:
                return _error(404, "no review item with this id", "not_found")
            except AlreadyDecidedError as exc:
                return _error(409, str(exc), "already_decided")
            except ReviewError as exc:
                log.error("review store failed", extra={"error_type": type(exc).__name__})
                return _error(503, "the review store is unavailable", "review_store_unavailable")

        return endpoint

    async def list_items(self, request: Request, principal: Principal) -> Response:
        raw_status = request.query_params.get("status", "pending")
        status: ItemStatus | None = None
        if raw_status != "all":
            try:
                status = ItemStatus(raw_status)
            except ValueError:
                allowed = ", ".join([s.value for s in ItemStatus] + ["all"])
                return _error(400, f"status must be one of: {allowed}", "invalid_status")
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return _error(400, "limit must be an integer", "invalid_limit")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"limit must be between 1 and {MAX_LIMIT}", "invalid_limit")
        now = self._clock()
        items = await self._store.list_items(status, limit)
        return JSONResponse({"items": [summary(i, now) for i in items], "now": now})

    async def get_item(self, request: Request, principal: Principal) -> Response:
        unmask = request.query_params.get("unmask", "false").lower() in ("1", "true", "yes")
        if unmask and not principal.role.can_unmask:
            return _error(403, "only the admin role may unmask personal data", "forbidden")
        item = await self._store.get(request.path_params["item_id"])
        if unmask:
            try:
                await self._record(ReviewActionEvent(
                    time=self._clock(), review_id=item.id, request_id=item.item.request_id, action="unmask",
                    reviewer=principal.name, role=principal.role.value,
                ))
            except AuditError:
                return _error(503, "the unmasking could not be audited, so it was refused", "audit_unavailable")
        return JSONResponse(detail(item, self._clock(), mask=not unmask))

    async def decide(self, request: Request, principal: Principal) -> Response:
        if not principal.role.can_decide:
            return _error(403, f"the {principal.role.value} role may not decide", "forbidden")
        try:
            body = DecisionBody.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            return _error(
                400,
                f"{field}: {first['msg']}; expected {{\"outcome\": \"approve\"|\"deny\"|\"edit\", "
                "\"text\": \"...\" (edit only), \"index\": 0, \"note\": \"...\"}",
                "invalid_decision",
            )
        item_id = request.path_params["item_id"]
        edited: dict[int, str] | None = None
        if body.outcome is ReviewerOutcome.EDIT:
            current = await self._store.get(item_id)
            if body.text is None:
                return _error(400, "text: an edit needs the replacement text", "invalid_decision")
            index = body.index if body.index is not None else _first_triggered(current.item.findings)
            if index >= len(current.item.texts):
                return _error(400, f"index: the item has {len(current.item.texts)} text(s)", "invalid_decision")
            edited = {index: body.text}
        elif body.text is not None:
            return _error(400, "text: only an edit takes text", "invalid_decision")
        now = self._clock()
        item = await self._store.decide(item_id, body.outcome, principal.name, body.note, edited, now)
        self._metrics.observe_review_outcome(body.outcome.value, now - item.item.created_at)
        log.info("review decided", extra={"item_id": item.id, "outcome": body.outcome.value, "role": principal.role.value})
        if self._gate is not None:
            self._gate.wake(item.id)
            await self._gate.refresh_queue()
        audited = True
        try:
            await self._record(ReviewActionEvent(
                time=now, review_id=item.id, request_id=item.item.request_id, action="decide",
                reviewer=principal.name, role=principal.role.value, outcome=body.outcome.value,
            ))
        except AuditError:
            audited = False
        return JSONResponse({"id": item.id, "status": item.status.value, "audited": audited})

    async def _record(self, event: ReviewActionEvent) -> None:
        if self._audit is None:
            return
        try:
            await self._audit.append_review_action(event)
        except AuditError:
            self._metrics.observe_audit_failure()
            log.error("review action not audited", extra={"item_id": event.review_id, "action": event.action})
            raise


def _first_triggered(findings: tuple[ItemFinding, ...]) -> int:
    """The text an edit replaces when the reviewer names none: the first one that escalated."""
    for finding in findings:
        if finding.action and finding.text_index >= 0:
            return finding.text_index
    return 0


async def _console_redirect_app(scope: Scope, receive: Receive, send: Send) -> None:
    await RedirectResponse("/console/", status_code=307)(scope, receive, send)


def review_routes(
    store: ReviewStore, tokens: TokenSet, audit: ReviewAuditSink | None, metrics: GuardMetrics,
    gate: StoreReviewGate | None = None, clock: Callable[[], float] = time.time,
) -> list[BaseRoute]:
    """The API and console routes for the admin app (`create_app(..., extra_routes=...)`)."""
    api = ReviewApi(store, tokens, audit, metrics, gate, clock)
    return [
        Route("/v1/reviews", api.authed(api.list_items), methods=["GET"]),
        Route("/v1/reviews/{item_id}", api.authed(api.get_item), methods=["GET"]),
        Route("/v1/reviews/{item_id}/decision", api.authed(api.decide), methods=["POST"]),
        Route("/console", ConsoleHeaders(_console_redirect_app), methods=["GET"]),
        Mount("/console", app=ConsoleHeaders(StaticFiles(directory=CONSOLE_DIR, html=True)), name="console"),
    ]
