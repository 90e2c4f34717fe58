"""Deferred review results, on the proxy port: `GET /guard/reviews/{id}` (the `result_url` of a 202).

Deferred mode serves callers that cannot hold a connection while a person looks: the guard answers 202
at once with the review id and this URL. Polling it gives the item's state, never its text:

    {"id": ..., "object": "guard.review", "status": "pending" | "approved" | "edited" | "denied" | "timed_out",
     "action": "wait" | "resubmit" | "refused" | "used"}

`resubmit`: send the same request again with `x-guard-review-id: <id>`; the guard forwards it once (edited
if the reviewer edited it) and the answer is the model's. `refused`: denied, or timed out under a `block`
timeout action. The id is 128 random bits, so the URL itself is the capability; it shows no personal data.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from guard.errors import ReviewError
from guard.review.gate import REVIEW_ID_HEADER
from guard.review.items import ItemStatus, ReviewItem
from guard.review.store import ItemNotFoundError, ReviewStore
from guard.types import Action

RESULT_PREFIX = "/guard/reviews/"


def result_url(review_id: str) -> str:
    return f"{RESULT_PREFIX}{review_id}"


def _action(item: ReviewItem) -> str:
    if item.status is ItemStatus.PENDING:
        return "wait"
    if item.status in (ItemStatus.APPROVED, ItemStatus.EDITED):
        return "used" if item.consumed_at is not None else "resubmit"
    if item.status is ItemStatus.TIMED_OUT and item.item.on_timeout is Action.ALLOW:
        return "resubmit"  # the timeout action lets it through; nothing to use up
    return "refused"


def result_routes(store: ReviewStore, clock: Callable[[], float] = time.time) -> list[BaseRoute]:
    async def result(request: Request) -> Response:
        try:
            item = await store.get(request.path_params["item_id"])
        except ItemNotFoundError:
            return JSONResponse({"error": {"message": "no review with this id", "code": "not_found"}}, 404)
        except ReviewError:
            return JSONResponse(
                {"error": {"message": "the review store is unavailable", "code": "review_store_unavailable"}}, 503
            )
        body = {
            "id": item.id,
            "object": "guard.review",
            "status": item.status.value,
            "action": _action(item),
            "time_left_s": max(0.0, item.item.deadline - clock()) if item.status is ItemStatus.PENDING else 0.0,
            "resubmit_header": REVIEW_ID_HEADER,
        }
        return JSONResponse(body, status_code=202 if item.status is ItemStatus.PENDING else 200)

    return [Route(RESULT_PREFIX + "{item_id}", result, methods=["GET"])]
