"""Requests the guard forwards without screening, and the refusal of those it will not.

A path no route names is refused (404, in the API's own error shape, saying the path is not screened)
unless the policy's `unknown_routes` lets it through; only bodiless reads (`GET`, `HEAD`, `OPTIONS` without
`Content-Length` > 0 or `Transfer-Encoding`) pass under the default `pass_bodiless`, because a body is
where a prompt rides. Ollama's paths (`/api/...`) get Ollama's error shape (`{"error": "..."}`), every
other path OpenAI's.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

from starlette.types import Scope

from guard.policy.routes import CanonicalPath
from guard.proxy import errors
from guard.proxy.headers import RawHeaders

_NOT_SCREENED = (
    "This path is not screened by the guard's policy, so the request was refused. Ask the operator to add "
    "a route for it (screened with a codec, or `pass: true`)."
)
_OPENAI_404 = errors.error_body(_NOT_SCREENED, "unknown_route")
_OLLAMA_404 = json.dumps({"error": _NOT_SCREENED}).encode()


def has_body(headers: RawHeaders) -> bool:
    """Whether the request declares a body: a non-zero Content-Length or any Transfer-Encoding."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return True
        if lowered == b"content-length" and value.strip() not in (b"", b"0"):
            return True
    return False


def not_screened_reply(path: CanonicalPath) -> tuple[int, bytes]:
    """The 404 for a path no route names, shaped like the API the path belongs to."""
    if path.segments[:1] == ("api",):
        return 404, _OLLAMA_404
    return 404, _OPENAI_404


def unscreened_scope(scope: Scope, encoded_path: str) -> Scope:
    """The caller's scope with its path replaced by the canonical one, for an in-process app."""
    return {**scope, "path": unquote(encoded_path), "raw_path": encoded_path.encode("latin-1")}
