"""Which route a request took and which risk tier it belongs to.

A tier comes from, in order: the matched route's `tier`; the policy's tier header, but only when the TCP
peer is one of `tier_header.trusted_sources` (the platform's ingress, or the pod's own loopback) and the
value names a tier of the policy; otherwise `default_tier`. A caller cannot lower its own tier by sending
the header: from an untrusted peer it is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from guard.policy.model import PolicyFile, Route


def _normalise(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0]
    # Empty and dot segments are resolved (RFC 3986 §5.2.4) the way many upstreams and front proxies
    # resolve them; otherwise `//v1/chat/completions` or `/v1/x/../chat/completions` would miss the
    # screened route and, with `unknown_routes: pass`, reach the same upstream handler unscreened.
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


def match_route(policy: PolicyFile, path: str) -> Route | None:
    """The route whose path equals `path` (query string ignored, a trailing slash tolerated)."""
    wanted = _normalise(path)
    for route in policy.routes:
        if _normalise(route.path) == wanted:
            return route
    return None


def peer_is_trusted(policy: PolicyFile, peer_ip: str | None) -> bool:
    """Whether `peer_ip` lies in the tier header's trusted sources (False when there is no header)."""
    if policy.tier_header is None or not peer_ip:
        return False
    try:
        address = ipaddress.ip_address(peer_ip.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # "::ffff:127.0.0.1" from a dual-stack socket
    for source in policy.tier_header.trusted_sources:
        network = ipaddress.ip_network(source, strict=False)
        if address.version == network.version and address in network:
            return True
    return False


def resolve_tier(
    policy: PolicyFile, route: Route | None, headers: Mapping[str, str], peer_ip: str | None
) -> str:
    """The request's tier. `headers` has lower-case names."""
    if route is not None and route.tier is not None:
        return route.tier
    header = policy.tier_header
    if header is not None and peer_is_trusted(policy, peer_ip):
        value = headers.get(header.name, "").strip()
        if value in policy.tiers:
            return value
    return policy.default_tier
