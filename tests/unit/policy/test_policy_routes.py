"""Route matching on one canonical path form (issue 15), path parameters and methods, `pass` routes, and
`unknown_routes` parsing (issue 9)."""

from __future__ import annotations

import pytest

from guard.errors import ConfigError, RequestError
from guard.policy.load import parse_policy
from guard.policy.model import PolicyFile
from guard.policy.routes import canonical_path, match_route

POLICY = """\
name: t
version: "1"
detectors: [{kind: rules, name: r, rules: [{name: a, keywords: [x]}]}]
default_tier: limited
routes:
  - {name: chat, path: /v1/chat/completions, codec: {kind: openai_chat}}
  - {name: azure_chat, path: "/openai/deployments/{deployment}/chat/completions", codec: {kind: openai_chat}}
  - {name: models, path: /v1/models, methods: [GET], pass: true}
  - {name: hr, path: /v1/hr/, codec: {kind: text}}
tiers:
  limited: {}
"""


@pytest.fixture
def policy() -> PolicyFile:
    return parse_policy(POLICY, "t.yaml")


def _forward(policy: PolicyFile, path: str, method: str = "POST") -> tuple[str, str] | None:
    match = match_route(policy, canonical_path(path), method)
    return None if match is None else (match.route.name, match.forward_path)


@pytest.mark.parametrize(
    "variant",
    [
        "/v1/chat/completions", "/v1/chat/completions/", "//v1/chat/completions", "/v1//chat/completions",
        "/v1/./chat/completions", "/v1/x/../chat/completions", "/v1/./chat/../chat/completions",
        "/v1/chat/completions/.", "/../v1/chat/completions", "/V1/CHAT/COMPLETIONS", "/v1/Chat/Completions",
        "/v1/%2e/chat/completions", "/v1/x/%2E%2E/chat/completions", "/%76%31/chat/completions",
    ],
)
def test_every_spelling_of_a_route_matches_it_and_forwards_its_canonical_form(policy: PolicyFile, variant: str) -> None:
    assert _forward(policy, variant) == ("chat", "/v1/chat/completions")


@pytest.mark.parametrize(
    "ambiguous",
    [
        "/v1/chat/completions;x", "/v1;v=2/chat/completions", "/v1/chat/completions%20", "/v1/chat/completions%09",
        "/v1/chat/completions%00", "/v1/chat%2Fcompletions", "/v1/chat%2fcompletions", "/v1/chat%5Ccompletions",
        "/v1\\chat/completions", "/v1/chat/completions%zz", "/v1/chat/completions%", "/v1/chat/completions%ff",
        "/v1/chat/completions%E2%80%83", "/v1/chat/compl%0aetions", "/v1/%20chat/completions", "/v1/chat%E2%80%8B/completions",
    ],
)
def test_ambiguous_forms_are_refused_with_400(ambiguous: str) -> None:
    with pytest.raises(RequestError) as caught:
        canonical_path(ambiguous)
    assert caught.value.status == 400
    assert caught.value.code == "ambiguous_path"
    assert ambiguous not in caught.value.message


def test_path_parameters_match_one_segment_and_are_forwarded_as_sent(policy: PolicyFile) -> None:
    assert _forward(policy, "/openai/deployments/gpt-4o/chat/completions") == (
        "azure_chat", "/openai/deployments/gpt-4o/chat/completions"
    )
    assert _forward(policy, "/OpenAI/Deployments/MyModel/./chat/completions") == (
        "azure_chat", "/openai/deployments/MyModel/chat/completions"
    )
    assert _forward(policy, "/openai/deployments/a/b/chat/completions") is None
    assert _forward(policy, "/openai/deployments/chat/completions") is None


def test_methods_limit_a_route(policy: PolicyFile) -> None:
    assert _forward(policy, "/v1/models", "GET") == ("models", "/v1/models")
    assert _forward(policy, "/v1/models", "POST") is None
    assert _forward(policy, "/v1/hr", "GET") == ("hr", "/v1/hr")  # no methods: every method


def test_unmatched_paths_forward_their_resolved_form() -> None:
    assert canonical_path("/a/./b/../c/").encoded() == "/a/c/"
    assert canonical_path("/v1/models/%7Bx%7D").encoded() == "/v1/models/%7Bx%7D"
    assert canonical_path("/").encoded() == "/"


def test_pass_routes_take_no_codec_and_screened_routes_need_one() -> None:
    with pytest.raises(ConfigError, match=r"t.yaml:8: routes\[2\]: route 'models' passes unscreened"):
        parse_policy(POLICY.replace("methods: [GET], pass: true", "pass: true, codec: {kind: text}"), "t.yaml")
    with pytest.raises(ConfigError, match=r"t.yaml:8: routes\[2\]: route 'models' needs a codec"):
        parse_policy(POLICY.replace("methods: [GET], pass: true", "methods: [GET]"), "t.yaml")


def test_route_paths_with_ambiguous_characters_are_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"t.yaml:6: routes\[0\].path: '/v1/chat;x' does not match"):
        parse_policy(POLICY.replace("/v1/chat/completions,", "/v1/chat;x,"), "t.yaml")


@pytest.mark.parametrize("value", ["pass", "block", "pass_bodiless"])
def test_unknown_routes_keeps_its_old_values(value: str) -> None:
    assert parse_policy(POLICY + f"unknown_routes: {value}\n", "t.yaml").unknown_routes == value


def test_unknown_routes_defaults_to_refusing_bodies_and_a_bad_value_names_the_line() -> None:
    assert parse_policy(POLICY, "t.yaml").unknown_routes == "pass_bodiless"
    with pytest.raises(ConfigError, match=r"t.yaml:12: unknown_routes: 'allow' is not one of pass_bodiless, block, pass"):
        parse_policy(POLICY + "unknown_routes: allow\n", "t.yaml")


def test_an_unknown_route_key_lists_pass_by_its_yaml_name() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(POLICY.replace("methods: [GET], pass: true", "methods: [GET], passs: true"), "t.yaml")
    message = str(caught.value)
    assert message.startswith("t.yaml:8: routes[2].passs: unknown key 'passs'; expected one of: ")
    assert "pass," in message and "pass_" not in message
