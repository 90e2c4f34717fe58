"""Tier resolution: route first, then the tier header from trusted peers only, then the default."""

from __future__ import annotations

import pytest

from guard.policy.load import parse_policy
from guard.policy.model import PolicyFile
from guard.policy.tiers import match_route, peer_is_trusted, resolve_tier

POLICY = """\
name: t
version: "1"
detectors: [{kind: rules, name: r, rules: [{name: a, keywords: [x]}]}]
default_tier: limited
tier_header: {name: x-guard-tier, trusted_sources: [127.0.0.1/32, "::1/128", 10.0.0.0/8]}
routes:
  - {name: chat, path: /v1/chat/completions, codec: {kind: openai_chat}}
  - {name: hr, path: /v1/hr/, codec: {kind: text}, tier: high}
tiers:
  limited: {}
  high: {}
  minimal: {}
"""


@pytest.fixture
def policy() -> PolicyFile:
    return parse_policy(POLICY, "t.yaml")


def test_match_route_exact_ignoring_query_and_trailing_slash(policy: PolicyFile) -> None:
    assert match_route(policy, "/v1/chat/completions") is not None
    assert match_route(policy, "/v1/chat/completions/") is not None
    assert match_route(policy, "/v1/chat/completions?stream=true") is not None
    # Doubled slashes and dot segments resolve to the route they reach upstream.
    for variant in ("//v1/chat/completions", "/v1//chat/completions", "/v1/./chat/completions",
                    "/v1/x/../chat/completions", "/v1/chat/completions/.", "/../v1/chat/completions"):
        assert match_route(policy, variant) is not None, variant
    hr = match_route(policy, "/v1/hr")
    assert hr is not None and hr.name == "hr"
    assert match_route(policy, "/v1/chat/completions/extra") is None
    assert match_route(policy, "/v1/chat") is None
    assert match_route(policy, "/V1/chat/completions") is None


def test_route_tier_wins_over_header(policy: PolicyFile) -> None:
    hr = match_route(policy, "/v1/hr")
    assert resolve_tier(policy, hr, {"x-guard-tier": "minimal"}, "127.0.0.1") == "high"


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "10.2.3.4", "::ffff:127.0.0.1"])
def test_header_from_a_trusted_peer_is_honoured(policy: PolicyFile, peer: str) -> None:
    chat = match_route(policy, "/v1/chat/completions")
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


def test_invalid_trusted_source_is_a_config_error() -> None:
    from guard.errors import ConfigError

    with pytest.raises(ConfigError, match=r"t.yaml:5: tier_header.trusted_sources: '10.0.0.0/33' is not an address"):
        parse_policy(POLICY.replace("10.0.0.0/8", "10.0.0.0/33"), "t.yaml")
