"""Header hygiene between caller and upstream: hop-by-hop headers never cross the proxy (RFC 9110 §7.6.1),
Host is the upstream's, and Content-Length is recomputed because the guard may rewrite the body. An
upstream's own `x-guard-*` headers never reach the caller: only the guard says what the guard decided
(issue 15: an upstream's `x-guard-decision: allow` arrived ahead of the guard's)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Besides hop-by-hop: the client's Host and framing headers are recomputed for the upstream, and `Expect`
# was answered by the guard's own server (the guard holds the whole body before it forwards anything).
_REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"expect"}
_RESPONSE_DROP = HOP_BY_HOP | {b"content-length"}
_GUARD_PREFIX = b"x-guard-"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _named_in_connection(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return frozenset(named)


def _filter(headers: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes]) -> RawHeaders:
    headers = list(headers)
    extra = _named_in_connection(headers)
    if extra:
        drop = drop | extra
    return [(name, value) for name, value in headers if name.lower() not in drop]


def request_headers_for_upstream(headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The caller's headers minus hop-by-hop, Host and Content-Length (the client recomputes both)."""
    return _filter(headers, _REQUEST_DROP)


def response_headers_for_client(headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The upstream's headers minus hop-by-hop, Content-Length (set again for the body we send) and any
    `x-guard-*` (the guard's own headers are added after)."""
    return [(k, v) for k, v in _filter(headers, _RESPONSE_DROP) if not k.lower().startswith(_GUARD_PREFIX)]


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """A valid incoming `x-request-id` is echoed so traces join up; anything else gets a fresh uuid4."""
    incoming = header_value(headers, b"x-request-id")
    if incoming is not None and _REQUEST_ID.match(incoming):
        return incoming.decode("ascii")
    return uuid.uuid4().hex


def media_type(headers: Iterable[tuple[bytes, bytes]]) -> str:
    value = header_value(headers, b"content-type")
    if value is None:
        return ""
    return value.split(b";", 1)[0].strip().lower().decode("latin-1")
