"""`guard scan` end to end: the installed console script, real presidio and spaCy, JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
GUARD = Path(sys.executable).parent / "guard"

TEXT = (
    "Hi, I'm John Smith. Email john.smith@example.com, my phone number is 212-555-0134, "
    "and my card is 4111 1111 1111 1111."
)
EXPECTED = {
    "PERSON": "John Smith",
    "EMAIL_ADDRESS": "john.smith@example.com",
    "PHONE_NUMBER": "212-555-0134",
    "CREDIT_CARD": "4111 1111 1111 1111",
}


def _guard(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GUARD), *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=240, check=False
    )


def _spans(text: str, decision: dict[str, Any]) -> dict[str, str]:
    return {f["entity_type"]: text[f["start"] : f["end"]] for f in decision["findings"]}


@pytest.mark.model
def test_plain_text_on_stdin_gives_one_redacting_decision() -> None:
    done = _guard("scan", stdin=TEXT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    decision = json.loads(lines[0])
    assert _spans(TEXT, decision) == EXPECTED
    for finding in decision["findings"]:
        assert finding["category"] == "pii" and finding["detector"] == "pii"
        assert finding["label"] == finding["entity_type"] and 0 < finding["score"] <= 1
    assert decision["action"] == "redact" and decision["verdict"] == "redact"
    assert decision["tier"] == "limited" and decision["policy_version"] == "2026.12.1"
    assert decision["redacted"] == (
        "Hi, I'm <PERSON>. Email <EMAIL_ADDRESS>, my phone number is <PHONE_NUMBER>, and my card is <CREDIT_CARD>."
    )
    # Nothing personal is echoed outside the redacted text.
    without_redacted = {k: v for k, v in decision.items() if k != "redacted"}
    for value in EXPECTED.values():
        assert value not in json.dumps(without_redacted)


@pytest.mark.model
def test_jsonl_rows_keep_their_fields_and_bad_rows_are_reported(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"id": "a", "text": TEXT, "label": 1}) + "\n"
        + "\n"
        + "{not json\n"
        + json.dumps({"id": "b", "text": "the weather is nice"}) + "\n"
        + json.dumps({"id": "c", "no_text": 1}) + "\n"
    )
    done = _guard("scan", "--jsonl", str(rows), "--tier", "high", "--direction", "input")
    assert done.returncode == 1
    assert "line 3: not valid JSON" in done.stderr
    assert 'line 5: expected a JSON object with a string "text"' in done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["id"] for row in out] == ["a", "b"]
    first, second = out
    assert first["label"] == 1 and "text" not in first
    # The high tier blocks a card number in a prompt.
    assert first["action"] == "block" and first["tier"] == "high" and "redacted" not in first
    assert _spans(TEXT, first) == EXPECTED
    assert second["action"] == "allow" and second["findings"] == []


@pytest.mark.model
def test_shadow_policy_only_records() -> None:
    done = _guard("scan", "--policy", "policies/monitor.yaml", "--direction", "output", stdin=TEXT)
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["action"] == "allow" and decision["would_have_been"] == "redact"
    assert "redacted" not in decision


def test_usage_errors_exit_2_without_loading_models(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    done = _guard("scan", "--policy", str(bad), stdin="hi")
    assert done.returncode == 2
    assert f"{bad}:1: version: missing required key 'version'" in done.stderr
    done = _guard("scan", "--tier", "nope", stdin="hi")
    assert done.returncode == 2 and "--tier 'nope' is not one of the policy's tiers" in done.stderr


def test_policy_check_command(tmp_path: Path) -> None:
    done = _guard("policy", "check", "policies/default.yaml", "policies/strict.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ok: policies/default.yaml (default, 2026.12.1, 5 detectors, tiers: limited, high, minimal)",
        "ok: policies/strict.yaml (strict, 2026.12.1, 5 detectors, tiers: high, limited)",
    ]
    done = _guard("policy", "check", "policies/default.yaml", "policies/tests/broken/bad_action.yaml")
    assert done.returncode == 1
    assert done.stderr.startswith(
        "policies/tests/broken/bad_action.yaml:14: tiers.limited.input.pii.medium.action: 'redakt' is not one of"
    )
    schema = _guard("policy", "schema")
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"] == "PolicyFile"
