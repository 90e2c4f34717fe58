"""Secrets in prompts and answers: detect-secrets' maintained provider patterns plus what they miss in
prose (issue 11).

detect-secrets (Yelp, Apache-2.0) is built for scanning files line by line; its regex plugins are
the maintained list of provider token formats (AWS, GitHub, GitLab, Slack, Stripe, OpenAI, npm, PyPI,
SendGrid, Twilio, Discord, Telegram, Mailchimp, Azure storage, Artifactory, Square, JWT ...). They are
imported by name below (no discovery) and their compiled `denylist` patterns run over the whole text, so
a finding has offsets. Added here, because chat text is not a config file:

- a private key as a whole block, BEGIN line through END line (detect-secrets reports only the header, so
  redaction left the key body in place); a block cut off before its END runs to the end of the base64;
- an AWS secret access key (40 base64 characters) near "aws"/"secret" words, unquoted;
- Google API keys (`AIza` + 35), Slack tokens of every prefix, and passwords in context ("my password is
  hunter2", "contraseña: ...", "mot de passe ...", "Passwort ...", "senha ...", "密码 ...").

Findings are category `custom`, labelled per kind (`private_key`, `aws_secret_key`, ...) so they redact as
`<PRIVATE_KEY>`; they never carry the matched text.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from guard.detectors.base import DetectorResources
from guard.detectors.config import DetectorConfigBase
from guard.errors import ConfigError, DetectorError
from guard.types import Category, Finding, ScanContext, Span

# Bump when the rules below change what is found (cache key).
_IMPLEMENTATION_VERSION = "1"
# (module, class, label): detect-secrets regex plugins used, by name.
_PLUGINS = (
    ("aws", "AWSKeyDetector", "aws_access_key"),
    ("artifactory", "ArtifactoryDetector", "artifactory_token"),
    ("azure_storage_key", "AzureStorageKeyDetector", "azure_storage_key"),
    ("discord", "DiscordBotTokenDetector", "discord_token"),
    ("github_token", "GitHubTokenDetector", "github_token"),
    ("gitlab_token", "GitLabTokenDetector", "gitlab_token"),
    ("mailchimp", "MailchimpDetector", "mailchimp_key"),
    ("npm", "NpmDetector", "npm_token"),
    ("openai", "OpenAIDetector", "api_key"),
    ("pypi_token", "PypiTokenDetector", "pypi_token"),
    ("sendgrid", "SendGridDetector", "sendgrid_key"),
    ("slack", "SlackDetector", "slack_token"),
    ("square_oauth", "SquareOAuthDetector", "square_secret"),
    ("stripe", "StripeDetector", "stripe_key"),
    ("telegram_token", "TelegramBotTokenDetector", "telegram_token"),
    ("twilio", "TwilioKeyDetector", "twilio_key"),
)
_B64_LINE = r"[A-Za-z0-9+/=]{16,}"
_OWN_RULES: tuple[tuple[str, re.Pattern[str], int], ...] = (
    # (label, pattern, group holding the secret)
    ("private_key", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        rf"|(?=\n\s*\n)|$)", re.DOTALL), 0),
    ("private_key", re.compile(rf"(?<![A-Za-z0-9+/])b3BlbnNzaC1rZXktdjE[A-Za-z0-9+/=\s]{{40,}}"), 0),
    ("aws_secret_key", re.compile(
        r"(?i:aws|secret|secret_access_key|secret access key|access key)[^\n]{0,40}?(?<![A-Za-z0-9+/])"
        r"((?=[A-Za-z0-9+/]*[0-9+/])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])[A-Za-z0-9+/]{40})(?![A-Za-z0-9+/=])"), 1),
    ("google_api_key", re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])"), 0),
    ("slack_token", re.compile(r"(?<![\w-])xox[abposr]-[0-9A-Za-z-]{10,}"), 0),
    ("stripe_key", re.compile(r"(?<![\w])[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"), 0),
    ("jwt", re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0),
    ("api_key", re.compile(r"(?<![\w-])sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}"), 0),
    ("password", re.compile(
        r"(?i:\b(?:password|passwd|pwd|passcode|pass phrase|passphrase|contraseña|clave|mot de passe|mdp|passwort|"
        r"kennwort|senha|parola d'ordine|wachtwoord|hasło|пароль|nenosiri)|密码|口令)"
        r"(?:\s+(?:is|was|es|est|ist|é|è|ni|is now|will be))?\s*(?:[:=：]\s*)?[\"'“«]?"
        r"(?P<secret>(?![\"'“«])(?!(?i:is|was|the|a|and|for|to|of|reset|change|manager|policy|field)\b)[^\s\"'”»]{4,64}?)"
        r"[\"'”»]?(?=[\s.,;!?)]|$)"), 1),
)
SCORE = 0.95


class SecretsConfig(DetectorConfigBase):
    """`kind: secrets`: detect-secrets' provider patterns plus the rules above. `exclude` drops labels."""

    kind: Literal["secrets"]
    exclude: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(default_factory=list)

    def categories(self) -> frozenset[Category]:
        return frozenset({Category.CUSTOM})


def labels() -> list[str]:
    return sorted({label for *_, label in _PLUGINS} | {label for label, *_ in _OWN_RULES})


class SecretsDetector:
    """Holds compiled patterns only; scans on the borrowed executor."""

    def __init__(self, config: SecretsConfig) -> None:
        unknown = sorted(set(config.exclude) - set(labels()))
        if unknown:
            raise ConfigError(f"detector '{config.name}': exclude names unknown labels {unknown}; known: {labels()}")
        self.config = config
        self.name = config.name
        self.categories = config.categories()
        try:
            ds_version = importlib.metadata.version("detect-secrets")
        except importlib.metadata.PackageNotFoundError:
            ds_version = "absent"
        digest = hashlib.sha256(f"{config.model_dump_json()}\x1f{ds_version}\x1f{_IMPLEMENTATION_VERSION}".encode())
        self.version = "secrets-" + digest.hexdigest()[:16]
        self._rules: list[tuple[str, re.Pattern[str], int]] = []
        self._resources: DetectorResources | None = None

    async def load(self, resources: DetectorResources) -> None:
        import importlib

        rules: list[tuple[str, re.Pattern[str], int]] = []
        for module, cls, label in _PLUGINS:
            try:
                plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls)
            except (ImportError, AttributeError) as exc:
                raise DetectorError(
                    f"detector '{self.name}': detect-secrets plugin {cls} is unavailable ({type(exc).__name__}); "
                    "pip install detect-secrets==1.5.0"
                ) from None
            rules.extend((label, pattern, 1 if pattern.groups else 0) for pattern in plugin.denylist)
        rules.extend(_OWN_RULES)
        self._rules = [r for r in rules if r[0] not in self.config.exclude]
        self._resources = resources

    async def detect(self, texts: Sequence[str], ctx: ScanContext) -> Sequence[Sequence[Finding]]:
        if self._resources is None:
            raise DetectorError(f"detector '{self.name}' was used before load()")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._resources.executor, self._scan_all, list(texts))

    def _scan_all(self, texts: list[str]) -> list[list[Finding]]:
        return [self.scan(text) for text in texts]

    def scan(self, text: str) -> list[Finding]:
        """Findings for one text, synchronously; a span found by several rules is reported once."""
        seen: set[tuple[int, int]] = set()
        findings: list[Finding] = []
        for label, pattern, group in self._rules:
            for match in pattern.finditer(text):
                start, end = match.span(group)
                if start < 0 or end <= start or (start, end) in seen:
                    continue
                seen.add((start, end))
                findings.append(Finding(
                    detector=self.name, detector_version=self.version, category=Category.CUSTOM, score=SCORE,
                    span=Span(start, end, label.upper()), label=label, reason=f"secret pattern '{label}' matched",
                ))
        return findings

    async def aclose(self) -> None:
        self._rules = []
        self._resources = None
