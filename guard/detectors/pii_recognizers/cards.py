"""Payment card numbers with any separator people use (spaces, dashes, dots, none), Luhn-checked.

presidio's card recognizer handles spaces and dashes; "4111.1111.1111.1111" and mixed groupings slip
through it. One separator kind per number, 13 to 19 digits, a known issuer prefix and a passing Luhn check
give certainty; anything else is not a card.
"""

from __future__ import annotations

import re
from typing import Any

from guard.detectors.pii_recognizers.checksums import luhn

ENTITY = "CREDIT_CARD"
NAME = "GuardCardRecognizer"
CONTEXT = ["card", "credit", "debit", "visa", "mastercard", "amex", "tarjeta", "carte", "karte", "cartão", "信用卡"]
_CARD = re.compile(r"(?<![\w.,-])(?:\d(?P<sep>[ .\-]?)){11,18}\d(?![\w-]|[.,]\d)")
_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[0689]|6|1|35|62|8")
SCORE = 1.0
# 12-digit Maestro numbers (50, 56-69): one 12-digit run in ten passes Luhn, so without a card word
# nearby (presidio's context enhancer adds it) they stay below the policy's thresholds.
_MAESTRO_12 = re.compile(r"5[06-9]|6")
SCORE_MAESTRO_12 = 0.4


def find_cards(text: str) -> list[tuple[int, int, float]]:
    found = []
    for match in _CARD.finditer(text):
        raw = match.group(0)
        separators = set(re.findall(r"\D", raw))
        if len(separators) > 1:
            continue
        digits = re.sub(r"\D", "", raw)
        if len(digits) == 12 and _MAESTRO_12.match(digits) and luhn(digits):
            found.append((match.start(), match.end(), SCORE_MAESTRO_12))
        elif 13 <= len(digits) <= 19 and _PREFIX.match(digits) and luhn(digits) and len(set(digits)) > 1:
            found.append((match.start(), match.end(), SCORE))
    return found


def card_recognizer(language: str) -> Any:
    from presidio_analyzer import LocalRecognizer

    from guard.detectors.pii_recognizers._result import make_result

    class GuardCardRecognizer(LocalRecognizer):
        def load(self) -> None:
            """Nothing to load."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [make_result(self, ENTITY, s, e, sc, "Luhn-valid card number") for s, e, sc in find_cards(text)]

    return GuardCardRecognizer(supported_entities=[ENTITY], name=NAME, supported_language=language, context=CONTEXT)
