"""The `secrets` detector (issue 11): detect-secrets' provider patterns plus whole private-key blocks,
AWS secret keys in context, Google/Slack/Stripe tokens, JWTs and passwords in context."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from guard.detectors.base import DetectorResources
from guard.detectors.secrets import SecretsConfig, SecretsDetector
from guard.errors import ConfigError

KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDx\n-----END OPENSSH PRIVATE KEY-----"
)


@pytest.fixture(scope="module")
def detector() -> SecretsDetector:
    found = SecretsDetector(SecretsConfig(kind="secrets", name="secret_scan"))
    asyncio.run(found.load(DetectorResources(ThreadPoolExecutor(1), 1)))
    return found


def _labels(detector: SecretsDetector, text: str) -> dict[str, str]:
    return {f.label: text[f.span.start : f.span.end] for f in detector.scan(text) if f.span is not None}


def test_aws_key_pair(detector: SecretsDetector) -> None:
    text = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert _labels(detector, text) == {
        "aws_access_key": "AKIAIOSFODNN7EXAMPLE", "aws_secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }


def test_private_key_block_is_covered_whole(detector: SecretsDetector) -> None:
    text = f"my key:\n{KEY}\nthanks"
    spans = [(f.span.start, f.span.end) for f in detector.scan(text) if f.label == "private_key" and f.span]
    start, end = text.index(KEY), text.index(KEY) + len(KEY)
    assert any(s <= start and e >= end for s, e in spans)


@pytest.mark.parametrize("text, label", [
    ("use sk_live_4eC39HqLyjWDarjtT1zdp7dc now", "stripe_key"),
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", "slack_token"),
    ("key AIzaSyA-1234567890abcdefghijklmnopqrstu", "google_api_key"),
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
    ("my password is hunter2 ok", "password"),
    ("Mi contraseña es Sol2024#", "password"),
])
def test_provider_tokens_and_passwords(detector: SecretsDetector, text: str, label: str) -> None:
    assert label in _labels(detector, text)


@pytest.mark.parametrize("text", ["I forgot my password and need to reset it", "The password field is empty"])
def test_talk_about_passwords_is_not_a_password(detector: SecretsDetector, text: str) -> None:
    assert detector.scan(text) == []


def test_findings_never_carry_the_secret(detector: SecretsDetector) -> None:
    for finding in detector.scan("my password is hunter2 ok"):
        assert "hunter2" not in finding.reason


def test_unknown_exclude_label_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown labels"):
        SecretsDetector(SecretsConfig(kind="secrets", name="s", exclude=["nope"]))
