"""The guard's own HTTP answers: fixed, OpenAI-shaped JSON error bodies that never carry exception text,
prompt text or upstream detail. Built once per (status, message, code) where they are constant."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorReply:
    status: int
    body: bytes


def error_body(message: str, code: str, error_type: str = "invalid_request_error") -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}},
        separators=(",", ":"),
    ).encode()


def error_reply(status: int, message: str, code: str, error_type: str = "invalid_request_error") -> ErrorReply:
    return ErrorReply(status, error_body(message, code, error_type))


UPSTREAM_UNAVAILABLE = error_reply(
    502, "The model endpoint could not be reached.", "upstream_unavailable", "upstream_error"
)
UPSTREAM_TIMEOUT = error_reply(
    504, "The model endpoint did not answer in time.", "upstream_timeout", "upstream_error"
)
UPSTREAM_INVALID = error_reply(
    502,
    "The model endpoint's answer could not be screened, so it was withheld.",
    "upstream_invalid_response",
    "upstream_error",
)
SHUTTING_DOWN = error_reply(503, "The guard is shutting down; retry on another replica.", "shutting_down", "server_error")
NOT_READY = error_reply(503, "The guard is still loading its detectors; retry shortly.", "not_ready", "server_error")
AUDIT_FAILED = error_reply(
    503, "The decision could not be recorded, so the request was not served.", "audit_unavailable", "server_error"
)
INTERNAL = error_reply(500, "The guard failed to handle this request.", "internal_error", "server_error")


def deferred_body(review_id: str) -> bytes:
    """A deferred review's immediate answer (202): where to look for the result later."""
    return json.dumps(
        {"id": review_id, "object": "guard.review", "status": "pending", "result_url": f"/guard/reviews/{review_id}"},
        separators=(",", ":"),
    ).encode()
