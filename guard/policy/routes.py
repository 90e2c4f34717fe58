"""Which route a request took, on one canonical form of its path, and the path that is forwarded.

Upstreams and front proxies disagree on what a path means: some match `/V1/CHAT/COMPLETIONS` as
`/v1/chat/completions`, strip `;params` or trailing whitespace, decode `%2e` and resolve dot segments. If the
guard matched one form and forwarded another, a screened route could be reached unscreened (issue 15). So:

- forms that some upstream reads differently from others are refused with 400 before anything is matched:
  a `;` (path parameters), an encoded `/` or `\\` (`%2F`, `%5C`) or a raw `\\`, once decoded whitespace at
  the start or end of a segment (a trailing `%20` or `%09`, which some upstreams strip) and control or
  invisible characters anywhere (`%00`, `%0A`, U+200B), a `%` not followed by two hex digits, bytes that do
  not decode as UTF-8;
- every other form is canonicalised: percent-decoded once, empty and dot segments resolved (RFC 3986
  §5.2.4, also when encoded: `%2e%2e`), literal segments compared case-insensitively;
- what goes upstream is the canonical form, never the caller's bytes: a matched route forwards its own
  spelling of the path (its `{param}` segments filled with the values the caller sent), an unmatched path
  its resolved segments. The form forwarded is the form that was matched.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote

from guard.errors import RequestError
from guard.policy.model import PolicyFile, Route

# Characters a segment keeps unencoded when forwarded (RFC 3986 pchar minus ';', which is refused anyway).
_SEGMENT_SAFE = "!$&'()*+,=:@-._~"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_AMBIGUOUS_ESCAPE = re.compile(r"%(2[fF]|5[cC])")
_PARAM = re.compile(r"^\{([a-z][a-z0-9_]*)\}$")
AMBIGUOUS_PATH_CODE = "ambiguous_path"


@dataclass(frozen=True, slots=True)
class CanonicalPath:
    """A request path as the guard reads it: decoded segments, dot and empty segments resolved."""

    segments: tuple[str, ...]
    trailing_slash: bool

    def encoded(self) -> str:
        path = "/" + "/".join(quote(s, safe=_SEGMENT_SAFE) for s in self.segments)
        return path + "/" if self.trailing_slash and self.segments else path


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: Route
    forward_path: str  # percent-encoded, the route's own spelling with the caller's parameter values


def _refuse(reason: str) -> RequestError:
    return RequestError(
        400,
        f"The request path is ambiguous ({reason}); upstreams read such paths differently, so the guard "
        "refuses it. Send the plain path, e.g. /v1/chat/completions.",
        AMBIGUOUS_PATH_CODE,
    )


def canonical_path(encoded: str) -> CanonicalPath:
    """The canonical form of a percent-encoded path (query string already removed); `RequestError` 400
    for a form upstreams disagree on."""
    if ";" in encoded:
        raise _refuse("path parameters after ';'")
    if "\\" in encoded or _AMBIGUOUS_ESCAPE.search(encoded):
        raise _refuse("an encoded '/' or a backslash")
    if _BAD_PERCENT.search(encoded):
        raise _refuse("a '%' that is not a percent-encoded byte")
    try:
        decoded = unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise _refuse("bytes that are not UTF-8") from None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in decoded):
        raise _refuse("control or invisible characters")
    segments: list[str] = []
    raw_segments = decoded.split("/")
    for segment in raw_segments:
        if segment != segment.strip():
            raise _refuse("whitespace at the start or end of a segment")
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    trailing = raw_segments[-1] in ("", ".", "..") and len(raw_segments) > 1
    return CanonicalPath(tuple(segments), trailing)


def _pattern(route: Route) -> tuple[str, ...]:
    return tuple(s for s in route.path.split("/") if s)


def _fill(pattern: tuple[str, ...], segments: tuple[str, ...]) -> str | None:
    """The route's spelling of `segments` if they match `pattern`, else None."""
    if len(pattern) != len(segments):
        return None
    out: list[str] = []
    for want, got in zip(pattern, segments, strict=True):
        if _PARAM.match(want):
            out.append(quote(got, safe=_SEGMENT_SAFE))
        elif want.lower() == got.lower():
            out.append(want)  # already in the pattern's allowed characters
        else:
            return None
    return "/" + "/".join(out)


def match_route(policy: PolicyFile, path: CanonicalPath, method: str) -> RouteMatch | None:
    """The first route whose path matches and whose `methods` (if any) include `method`. A trailing
    slash is tolerated and not forwarded."""
    for route in policy.routes:
        if route.methods is not None and method.upper() not in route.methods:
            continue
        forward = _fill(_pattern(route), path.segments)
        if forward is not None:
            return RouteMatch(route, forward)
    return None
