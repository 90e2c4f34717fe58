"""Dates of birth, in context: a birth word ("born", "DOB", "date of birth", "geboren", "né le",
"fecha de nacimiento", "nascido", "出生") followed closely by a date in a common format. A bare date is
not personal data (meeting dates, release dates), so nothing is reported without the birth word; the
span is the date only.
"""

from __future__ import annotations

import re
from typing import Any

ENTITY = "DATE_OF_BIRTH"
NAME = "GuardDateOfBirthRecognizer"
_MONTHS = (
    r"(?:jan(?:uary|vier|uar)?|feb(?:ruary|rero|ruar)?|f[ée]vr(?:ier)?|mar(?:ch|zo|s|ço)?|m[äa]rz|apr(?:il)?|abr(?:il)?|avr(?:il)?"
    r"|may(?:o)?|mai(?:o)?|jun(?:e|io|i|ho)?|juin|jul(?:y|io|i|ho)?|juil(?:let)?|aug(?:ust)?|ago(?:sto)?|ao[uû]t"
    r"|sep(?:t(?:ember|iembre|embre)?)?|set(?:embro)?|oct(?:ober|ubre|obre)?|okt(?:ober)?|out(?:ubro)?"
    r"|nov(?:ember|iembre|embre|embro)?|dec(?:ember)?|dic(?:iembre)?|d[ée]c(?:embre)?|dez(?:ember|embro)?)\.?"
)
_DATE = (
    r"(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})"
    r"|\d{4}[./-]\d{1,2}[./-]\d{1,2}"
    rf"|\d{{1,2}}(?:st|nd|rd|th|er|º)?\.?\s(?:de\s)?{_MONTHS}\s(?:de\s)?\d{{4}}"
    rf"|{_MONTHS}\s\d{{1,2}}(?:st|nd|rd|th)?,?\s\d{{4}}"
    r"|\d{4}\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日)"
)
_BIRTH = (
    r"(?:born|birth\s?date|date\s+of\s+birth|d\.?o\.?b\.?|birthday|geboren|geburtsdatum|n[ée]e?|"
    r"date\s+de\s+naissance|fecha\s+de\s+nacimiento|naci[óo]|nacid[oa]|nascid[oa]|data\s+de\s+nascimento|"
    r"data\s+di\s+nascita|出生日期|出生于|出生|生日|alizaliwa|tarehe\s+ya\s+kuzaliwa)"
)
_DOB = re.compile(
    rf"(?<![A-Za-z]){_BIRTH}(?:\s+(?:on|in|am|le|el|em|il|is|was|:))?[\s:：,-]{{0,4}}(?:on\s|am\s|le\s|el\s|em\s)?(?P<date>{_DATE})(?!\d)",
    re.IGNORECASE,
)
# German puts the birth word last: "Ich bin am 3. März 1985 geboren".
_DOB_AFTER = re.compile(rf"(?P<date>{_DATE})\s+(?:geboren|born)(?!\w)", re.IGNORECASE)
SCORE = 0.85


def find_dates_of_birth(text: str) -> list[tuple[int, int, float]]:
    found = [(m.start("date"), m.end("date"), SCORE) for m in _DOB.finditer(text)]
    return found + [(m.start("date"), m.end("date"), SCORE) for m in _DOB_AFTER.finditer(text)]


def date_of_birth_recognizer(language: str) -> Any:
    from presidio_analyzer import LocalRecognizer

    from guard.detectors.pii_recognizers._result import make_result

    class GuardDateOfBirthRecognizer(LocalRecognizer):
        def load(self) -> None:
            """Nothing to load."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [make_result(self, ENTITY, s, e, sc, "date after a birth word") for s, e, sc in find_dates_of_birth(text)]

    return GuardDateOfBirthRecognizer(supported_entities=[ENTITY], name=NAME, supported_language=language)
