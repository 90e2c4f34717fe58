"""Policy loading: shipped files validate; every mistake is one `FILE:LINE: field: message` line."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.errors import ConfigError
from guard.policy.load import PolicyFileError, default_policy_path, load_policy, parse_policy
from guard.types import Action, Category

POLICIES = default_policy_path().parent

VALID = """\
name: t
version: "1"
detectors:
  - {kind: presidio_pii, name: pii, nlp: patterns, entities: [EMAIL_ADDRESS]}
default_tier: limited
tiers:
  limited:
    input:
      pii:
        medium: {min_score: 0.5, action: redact}
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "p.yaml")
    return str(info.value)


_CLASSIFIED = {"presidio_pii", "rules", "classifier", "claims"}


@pytest.mark.parametrize(
    ("name", "kinds"),
    [("default.yaml", _CLASSIFIED), ("strict.yaml", _CLASSIFIED), ("monitor.yaml", _CLASSIFIED)],
)
def test_shipped_policies_validate(name: str, kinds: set[str]) -> None:
    policy = load_policy(POLICIES / name)
    assert policy.default_tier in policy.tiers
    assert {d.kind for d in policy.detectors} == kinds


def test_default_policy_path_is_the_repository_file() -> None:
    assert default_policy_path() == Path(__file__).resolve().parents[3] / "policies" / "default.yaml"


def test_monitor_is_default_in_shadow_mode() -> None:
    default, monitor = load_policy(POLICIES / "default.yaml"), load_policy(POLICIES / "monitor.yaml")
    assert monitor.mode == "shadow" and default.mode == "enforce"
    assert monitor.tiers == default.tiers
    assert monitor.detectors == default.detectors
    assert monitor.routes == default.routes
    assert monitor.tier_header == default.tier_header


def test_strict_blocks_cards_and_fails_closed() -> None:
    strict = load_policy(POLICIES / "strict.yaml")
    high = strict.tiers[strict.default_tier]
    assert strict.default_tier == "high"
    assert high.on_detector_error is Action.BLOCK
    assert (high.stream.window_chars, high.stream.overlap_chars) == (0, 64)
    for table in (high.input, high.output):
        for label in ("CREDIT_CARD", "US_SSN"):
            assert table[Category.PII].table_for(label).actions() == {Action.BLOCK}


def test_a_valid_text_parses() -> None:
    policy = parse_policy(VALID, "p.yaml")
    assert policy.tiers["limited"].input[Category.PII].medium is not None


def test_bad_enum_names_file_line_field_and_choices() -> None:
    text = VALID.replace("action: redact", "action: redakt")
    assert _error(text) == (
        "p.yaml:10: tiers.limited.input.pii.medium.action: 'redakt' is not one of allow, log, redact, review, block"
    )


def test_unknown_key_lists_the_allowed_ones() -> None:
    text = VALID.replace("default_tier: limited", "default_tier: limited\nmodes: shadow")
    assert _error(text) == (
        "p.yaml:6: modes: unknown key 'modes'; expected one of: name, version, mode, detectors, default_tier, "
        "tier_header, routes, unknown_routes, limits, refusal_text, tiers"
    )


def test_unknown_key_inside_a_detector() -> None:
    text = VALID.replace("entities: [EMAIL_ADDRESS]", "entities: [EMAIL_ADDRESS], minscore: 0.3")
    message = _error(text)
    assert message.startswith("p.yaml:4: detectors[0].minscore: unknown key 'minscore'; expected one of: ")
    assert "min_score" in message


def test_unknown_detector_kind_and_missing_kind() -> None:
    assert _error(VALID.replace("kind: presidio_pii", "kind: presidio")).startswith(
        "p.yaml:4: detectors[0].kind: 'presidio' is not one of presidio_pii, rules"
    )
    assert "detectors[0]: missing 'kind'" in _error(VALID.replace("kind: presidio_pii, ", ""))


def test_several_problems_one_line_each_in_file_order() -> None:
    text = VALID.replace('version: "1"', "version: 1.5").replace("min_score: 0.5", "min_score: 1.5")
    assert _error(text).splitlines() == [
        "p.yaml:2: version: expected a string, got 1.5 (quote it in YAML)",
        "p.yaml:10: tiers.limited.input.pii.medium.min_score: 1.5 is invalid: input should be less than or equal to 1",
    ]


def test_missing_required_key() -> None:
    assert _error(VALID.replace('version: "1"\n', "")) == "p.yaml:1: version: missing required key 'version'"


def test_cross_field_error_points_at_the_key_it_names() -> None:
    message = _error(VALID.replace("default_tier: limited", "default_tier: high"))
    assert message == "p.yaml:5: default_tier: default_tier 'high' is not one of the tiers ['limited']"


def test_category_without_a_detector_is_refused() -> None:
    text = VALID.replace("      pii:\n", "      prompt_injection:\n").replace("action: redact", "action: block")
    assert "p.yaml:9: tiers.limited.input.prompt_injection: no detector in `detectors` finds 'prompt_injection'" in _error(text)


def test_yaml_syntax_error_has_its_line() -> None:
    assert _error(VALID.replace("tiers:\n", "tiers: [\n")).startswith("p.yaml:")
    message = _error("name: t\nversion: '1'\n  bad: indent\n")
    assert message.startswith("p.yaml:3: <yaml>: YAML syntax error:")


def test_duplicate_keys_are_refused() -> None:
    text = VALID.replace("default_tier: limited", "default_tier: limited\ndefault_tier: limited")
    assert _error(text) == "p.yaml:6: default_tier: duplicate key (first at line 5); each key may appear once"


def test_empty_and_non_mapping_documents() -> None:
    assert _error("") .startswith("p.yaml:1: <top>: the policy file is empty")
    assert _error("# only a comment\n").startswith("p.yaml:1: <top>: the policy file is empty")
    assert _error("- a\n- b\n") == (
        "p.yaml:1: <top>: the policy must be a mapping (name: ..., version: ..., tiers: ...), not a list"
    )


def test_invalid_rule_regex_fails_at_load() -> None:
    text = VALID.replace(
        "default_tier:",
        "  - kind: rules\n    name: secrets\n    rules:\n      - {name: bad, patterns: ['AKIA[0-9']}\ndefault_tier:",
    )
    assert _error(text).startswith(
        "p.yaml:8: detectors[1].rules[0].patterns: patterns[0] is not a valid regular expression"
    )


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError) as info:
        load_policy(tmp_path / "missing.yaml")
    assert str(info.value) == f"{tmp_path / 'missing.yaml'}:0: <file>: cannot read the policy file: No such file or directory"
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: t\nversion: '\xe9'\n")
    with pytest.raises(PolicyFileError, match=r"latin1.yaml:2: <file>: the policy file is not valid UTF-8"):
        load_policy(bad)


def test_problems_are_structured() -> None:
    with pytest.raises(PolicyFileError) as info:
        parse_policy(VALID.replace("action: redact", "action: nope"), "p.yaml")
    (problem,) = info.value.problems
    assert (problem.source, problem.line, problem.field) == ("p.yaml", 10, "tiers.limited.input.pii.medium.action")


def test_merge_keys_may_override_and_errors_point_at_the_override() -> None:
    text = """\
name: t
version: "1"
detectors: [{kind: rules, name: r, rules: [{name: a, keywords: [x]}]}]
default_tier: limited
tiers:
  limited:
    input:
      custom: &bands
        medium: {min_score: 0.5, action: block}
        high: {min_score: 0.9, action: block}
    output:
      custom:
        <<: *bands
        medium: {min_score: 0.4, action: redact}
"""
    output = parse_policy(text, "p.yaml").tiers["limited"].output[Category.CUSTOM]
    assert output.medium is not None and output.medium.action is Action.REDACT
    assert output.high is not None and output.high.action is Action.BLOCK
    assert _error(text.replace("action: redact", "action: redakt")).startswith(
        "p.yaml:14: tiers.limited.output.custom.medium.action: 'redakt'"
    )
