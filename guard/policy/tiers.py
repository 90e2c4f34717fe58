"""Which risk tier a request belongs to (route matching is `guard.policy.routes`).

The policy's tier header counts only when the TCP peer is one of `tier_header.trusted_sources` (the
platform's ingress, which sets the header and drops the caller's; the shipped policies trust no source, so
not even a process on the pod's loopback, the application itself in a sidecar, can pick its tier) and the
value names a tier of the policy. Then:

- a route with a `tier`: that tier is a floor; a trusted header may raise it (by `PolicyFile.tier_rank`),
  never lower it;
- a route without one: the trusted header's tier, else `default_tier`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from guard.policy.model import PolicyFile, Route


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
    floor = route.tier if route is not None else None
    header = policy.tier_header
    if header is not None and peer_is_trusted(policy, peer_ip):
        value = headers.get(header.name, "").strip()
        if value in policy.tiers:
            if floor is not None and policy.tier_rank(value) < policy.tier_rank(floor):
                return floor
            return value
    return floor if floor is not None else policy.default_tier
