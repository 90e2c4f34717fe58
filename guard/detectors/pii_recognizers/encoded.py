"""Values people paste percent-encoded (from URLs and query strings): `jane.doe%40example.com`,
`mailto:jane%2Edoe%40example.com`, `email=jane%40example.com`. The matched span is the encoded text, so
redaction removes what was written; the decoded form must be a well-formed address."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

ENTITY = "EMAIL_ADDRESS"
NAME = "GuardEncodedEmailRecognizer"
_ENCODED = re.compile(r"(?<![\w%])[A-Za-z0-9._+\-%]{1,64}%40[A-Za-z0-9.\-%]{1,200}\.[A-Za-z]{2,24}(?![\w])")
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._+\-]{1,64}@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}")
SCORE = 0.9


def find_encoded_emails(text: str) -> list[tuple[int, int, float]]:
    found = []
    for match in _ENCODED.finditer(text):
        if _PLAIN_EMAIL.fullmatch(urllib.parse.unquote(match.group(0))):
            found.append((match.start(), match.end(), SCORE))
    return found


def encoded_email_recognizer(language: str) -> Any:
    from presidio_analyzer import LocalRecognizer

    from guard.detectors.pii_recognizers._result import make_result

    class GuardEncodedEmailRecognizer(LocalRecognizer):
        def load(self) -> None:
            """Nothing to load."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [make_result(self, ENTITY, s, e, sc, "percent-encoded email") for s, e, sc in find_encoded_emails(text)]

    return GuardEncodedEmailRecognizer(supported_entities=[ENTITY], name=NAME, supported_language=language)
