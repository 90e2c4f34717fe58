"""Phone numbers as people write them: international (+44 20 7946 0958, 0044 ...), national and local
(612 345 678, (0)30 1234567, 555-0134, 010-6552 7788), including numbers the phonenumbers library calls
invalid (fictional 555 numbers, numbers outside the plan), which score lower and are raised by context
words ("phone", "call", "tel", "móvil", "电话"...) through presidio's context enhancer.

Candidates come from one regex over digit groups with phone separators; phonenumbers then grades them:
valid in some region > possible > phone-shaped. Shapes that are something else are refused here:
year ranges ("1368-1644"), dates (12.05.1990, 2024-01-31), dotted quads (IP addresses and versions),
SSN-shaped 3-2-4 groups, prices (a currency sign before), and runs too short or too long for a phone.
"""

from __future__ import annotations

import re
from typing import Any

ENTITY = "PHONE_NUMBER"
NAME = "GuardPhoneRecognizer"
# Regions tried for numbers without a country code, most-written first.
REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "IN", "BR", "CN", "NG", "MX", "CA", "AU", "NL", "PT", "JP", "KE", "ZA")
CONTEXT = [
    "phone", "telephone", "tel", "mobile", "cell", "call", "text", "whatsapp", "fax", "contact",
    "reach", "ring", "teléfono", "telefono", "móvil", "movil", "celular", "llamar", "llama", "telefon",
    "handy", "anrufen", "rufnummer", "téléphone", "portable", "appeler", "joindre", "telemóvel", "ligar",
    "电话", "手机", "simu", "desk", "office", "landline", "whatsapp",
]

_CANDIDATE = re.compile(
    # Latin letters and digits only: a number right after Chinese text ("电话010-6552 7788") still counts.
    r"(?<![A-Za-z0-9_+$€£¥./:-])"
    r"(?P<plus>\+|00)?"
    r"(?:\(\s?\d{1,5}\s?\)|\d)"
    r"(?:[ \t.\-\u2010-\u2013]?(?:\(\s?\d{1,5}\s?\)|\d)){4,17}"
    r"(?P<ext>\s?(?:x|ext\.?|#)\s?\d{1,6})?"
    r"(?!\w|-\d|[.,:]\d)"
)
# "47554 4144 Sycamore Circle", "617 3208 James Street": a house number pair before a street name.
_HOUSE_NUMBERS = re.compile(r"\d{1,6} \d{1,5}")
_CAPITALISED_NEXT = re.compile(r" [A-Z][\w'’-]+")
_DATE_INSIDE = re.compile(r"(?:1[5-9]|20)\d\d-[01]\d-[0-3]\d")
_DECIMAL = re.compile(r"\d+\.\d+")
# A label just after the number ("413 3504-Office", "89 37 13 office") is context too.
_SUFFIX_LABEL = re.compile(r"\s?[-,(]?\s?(?i:office|fax|mobile|cell|home|work|tel|phone|desk|m\b|h\b|w\b)")
SUFFIX_BONUS = 0.35
# A bare digit run right after the name of another identifier is that identifier, not a phone.
_OTHER_ID_BEFORE = re.compile(
    r"(?i:licen[cs]e|passport|ssn|social security|aadhaar|cpf|dni|nie|steuer-?id|account|order|invoice)"
    r"[A-Za-z\s#:'’-]{0,20}$"
)
MIN_DIGITS_GROUPED = 6  # "61 60 34": six digits only in groups
_YEAR_RANGE = re.compile(r"(?:1[5-9]|20)\d\d\s?[-\u2013]\s?(?:(?:1[5-9]|20)?\d\d)")
_FOUR_FOUR = re.compile(r"(?P<a>[1-9]\d{3})\s?[-\u2013]\s?(?P<b>\d{4})")
_RANGE_SPAN = 1000  # "1368-1644": a second group a little above the first reads as a range of years
_DATE = re.compile(r"\d{1,2}[.-]\d{1,2}[.-](?:\d{2}|\d{4})|\d{4}[.-]\d{1,2}[.-]\d{1,2}")
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){2,3}")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")

SCORE_VALID = 0.75
SCORE_VALID_BARE = 0.5  # an unformatted digit run that happens to be valid: order ids look the same
SCORE_POSSIBLE = 0.5
SCORE_SHAPED = 0.35
SCORE_BARE = 0.15


def _grade(candidate: str, plus: bool) -> float | None:
    import phonenumbers

    digits = re.sub(r"\D", "", candidate)
    if not MIN_DIGITS_GROUPED <= len(digits) <= 15:
        return None
    if len(digits) < 7 and not re.fullmatch(r"\d{2,3}(?:[ .-]\d{2,3}){1,2}", candidate):
        return None
    if _DATE_INSIDE.search(candidate) or _DECIMAL.fullmatch(candidate):
        return None
    if _YEAR_RANGE.fullmatch(candidate) or _DATE.fullmatch(candidate) or _DOTTED_QUAD.fullmatch(candidate):
        return None
    if _SSN_SHAPE.fullmatch(candidate):
        return None
    pair = _FOUR_FOUR.fullmatch(candidate)
    if pair and 0 < int(pair["b"]) - int(pair["a"]) < _RANGE_SPAN:
        return None
    bare = not plus and candidate.isdigit()
    if bare and len(digits) > 12:
        return None  # card numbers and long ids, not phones
    regions: tuple[str | None, ...] = (None,) if plus else REGIONS
    text = "+" + candidate.lstrip("+")[2:] if candidate.startswith("00") else candidate
    possible = False
    for region in regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return SCORE_VALID_BARE if bare else SCORE_VALID
        possible = possible or phonenumbers.is_possible_number(number)
    if bare:
        return SCORE_BARE
    if possible or plus:
        return SCORE_POSSIBLE
    return SCORE_SHAPED


def find_phones(text: str) -> list[tuple[int, int, float]]:
    found = []
    for match in _CANDIDATE.finditer(text):
        whole = match.group(0).rstrip(" .-")
        ext = match.group("ext")
        candidate = whole[: len(whole) - len(ext)] if ext and whole.endswith(ext) else whole
        end = match.start() + len(whole)
        if _HOUSE_NUMBERS.fullmatch(candidate) and _CAPITALISED_NEXT.match(text, end):
            continue
        if candidate.isdigit() and _OTHER_ID_BEFORE.search(text, max(0, match.start() - 40), match.start()):
            continue
        score = _grade(candidate.strip(), bool(match.group("plus")))
        if score is None:
            continue
        if _SUFFIX_LABEL.match(text, end):
            score = min(1.0, score + SUFFIX_BONUS)
        found.append((match.start(), end, score))
    return found


def phone_recognizer(language: str) -> Any:
    from presidio_analyzer import LocalRecognizer

    from guard.detectors.pii_recognizers._result import make_result

    class GuardPhoneRecognizer(LocalRecognizer):
        def load(self) -> None:
            """Nothing to load: phonenumbers' metadata loads on first parse."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [make_result(self, ENTITY, s, e, score, "phone number") for s, e, score in find_phones(text)]

    return GuardPhoneRecognizer(supported_entities=[ENTITY], name=NAME, supported_language=language, context=CONTEXT)
