"""Tier resolution: the tier header from trusted peers only, a route's tier as a floor, then the default."""

from __future__ import annotations

import pytest

from guard.errors import ConfigError
from guard.policy.load import parse_policy
from guard.policy.model import PolicyFile, Route
from guard.policy.routes import canonical_path, match_route
from guard.policy.tiers import peer_is_trusted, resolve_tier

POLICY = """\
name: t
version: "1"
detectors: [{kind: rules, name: r, rules: [{name: a, keywords: [x]}]}]
default_tier: limited
tier_header: {name: x-guard-tier, trusted_sources: [127.0.0.1/32, "::1/128", 10.0.0.0/8]}
routes:
  - {name: chat, path: /v1/chat/completions, codec: {kind: openai_chat}}
  - {name: hr, path: /v1/hr/, codec: {kind: text}, tier: high}
  - {name: search, path: /v1/search, codec: {kind: text}, tier: limited}
tiers:
  limited: {}
  high: {}
  minimal: {}
"""


@pytest.fixture
def policy() -> PolicyFile:
    return parse_policy(POLICY, "t.yaml")


def _route(policy: PolicyFile, path: str) -> Route | None:
    match = match_route(policy, canonical_path(path), "POST")
    return None if match is None else match.route


def test_route_tier_is_a_floor_a_trusted_header_cannot_lower(policy: PolicyFile) -> None:
    hr = _route(policy, "/v1/hr")
    assert resolve_tier(policy, hr, {"x-guard-tier": "minimal"}, "127.0.0.1") == "high"
    assert resolve_tier(policy, hr, {"x-guard-tier": "limited"}, "10.1.1.1") == "high"
    search = _route(policy, "/v1/search")
    # ...but may raise it.
    assert resolve_tier(policy, search, {"x-guard-tier": "high"}, "127.0.0.1") == "high"
    assert resolve_tier(policy, search, {"x-guard-tier": "minimal"}, "127.0.0.1") == "limited"
    assert resolve_tier(policy, search, {"x-guard-tier": "high"}, "192.168.0.1") == "limited"


def test_explicit_tier_order_decides_the_floor() -> None:
    text = POLICY + "tier_order: [high, limited, minimal]\n"  # an odd order, but the policy's own
    policy = parse_policy(text, "t.yaml")
    hr = _route(policy, "/v1/hr")
    assert resolve_tier(policy, hr, {"x-guard-tier": "limited"}, "127.0.0.1") == "limited"
    assert resolve_tier(policy, hr, {"x-guard-tier": "high"}, "127.0.0.1") == "high"


def test_tier_order_must_name_every_tier_once() -> None:
    with pytest.raises(ConfigError, match=r"t.yaml:\d+: tier_order: must list every tier exactly once"):
        parse_policy(POLICY + "tier_order: [minimal, limited]\n", "t.yaml")
    with pytest.raises(ConfigError, match="tier_order: must list every tier exactly once"):
        parse_policy(POLICY + "tier_order: [minimal, limited, high, high]\n", "t.yaml")


def test_tiers_outside_the_default_order_need_tier_order() -> None:
    text = POLICY.replace("  minimal: {}", "  batch: {}")
    with pytest.raises(ConfigError, match=r"tiers: \['batch'\] have no place in the default order"):
        parse_policy(text, "t.yaml")
    parse_policy(text + "tier_order: [batch, limited, high]\n", "t.yaml")
    parse_policy(text.replace("tier_header:", "# tier_header:"), "t.yaml")  # no header: no order needed


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "10.2.3.4", "::ffff:127.0.0.1"])
def test_header_from_a_trusted_peer_is_honoured(policy: PolicyFile, peer: str) -> None:
    chat = _route(policy, "/v1/chat/completions")
    assert resolve_tier(policy, chat, {"x-guard-tier": "high"}, peer) == "high"


@pytest.mark.parametrize("peer", ["192.168.1.5", "11.0.0.1", None, "", "not-an-ip", "::2"])
def test_header_from_an_untrusted_peer_is_ignored(policy: PolicyFile, peer: str | None) -> None:
    assert resolve_tier(policy, None, {"x-guard-tier": "minimal"}, peer) == "limited"


def test_unknown_tier_value_falls_back_to_default(policy: PolicyFile) -> None:
    assert resolve_tier(policy, None, {"x-guard-tier": "root"}, "127.0.0.1") == "limited"
    assert resolve_tier(policy, None, {"x-guard-tier": " high "}, "127.0.0.1") == "high"
    assert resolve_tier(policy, None, {}, "127.0.0.1") == "limited"


def test_no_tier_header_configured_means_no_trust() -> None:
    policy = parse_policy(POLICY.replace("tier_header:", "# tier_header:"), "t.yaml")
    assert not peer_is_trusted(policy, "127.0.0.1")
    assert resolve_tier(policy, None, {"x-guard-tier": "high"}, "127.0.0.1") == "limited"


def test_empty_trusted_sources_trust_nobody_not_even_loopback() -> None:
    policy = parse_policy(POLICY.replace('[127.0.0.1/32, "::1/128", 10.0.0.0/8]', "[]"), "t.yaml")
    for peer in ("127.0.0.1", "::1", "10.0.0.1"):
        assert not peer_is_trusted(policy, peer)
        assert resolve_tier(policy, None, {"x-guard-tier": "minimal"}, peer) == "limited"


def test_invalid_trusted_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"t.yaml:5: tier_header.trusted_sources: '10.0.0.0/33' is not an address"):
        parse_policy(POLICY.replace("10.0.0.0/8", "10.0.0.0/33"), "t.yaml")
