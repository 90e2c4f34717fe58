"""A street-address recognizer for English (US-style) text, which presidio lacks.

It finds "1600 Pennsylvania Avenue NW", "221B Baker Street", "123 Main St, Springfield, IL 62704" and
"42 W 5th Ave, Apt 4B": a house number, one to four capitalised or ordinal name words, a street suffix,
then optionally a direction, a unit, and "City, ST 12345". Precision comes from three requirements: the
name words are capitalised ("3 apples street performers" is not an address), the suffix is a known one,
and suffixes that are also ordinary words ("Drive", "Way", "Place", "Court") score below the usual
threshold unless more of an address follows (unit, city/state/ZIP) or context words such as "address" or
"live at" are near, which presidio's context enhancer adds.
"""

from __future__ import annotations

import re
from typing import Any

ENTITY = "STREET_ADDRESS"
RECOGNIZER_NAME = "StreetAddressRecognizer"
# Bump when the patterns or scores change: it is part of the detector's version (cache key).
VERSION = "2"

# Suffixes that rarely mean anything else after "<number> <Name>": full words, then abbreviations.
_STRONG_WORDS = (
    "Street", "Avenue", "Road", "Boulevard", "Lane", "Highway", "Parkway", "Terrace", "Expressway", "Turnpike",
    "Freeway",
)
_STRONG_ABBREVIATIONS = ("St", "Ave", "Av", "Rd", "Blvd", "Ln", "Hwy", "Pkwy", "Ter", "Expy", "Tpke", "Fwy")
# Suffixes that are also common words ("10 Google Drive files", "3 Main Place settings").
_WEAK_WORDS = (
    "Drive", "Way", "Place", "Court", "Circle", "Square", "Trail", "Plaza", "Row", "Alley", "Crescent",
    "Close", "Walk", "Path", "Pike", "Loop",
)
_WEAK_ABBREVIATIONS = ("Dr", "Pl", "Ct", "Cir", "Sq", "Trl", "Plz")
_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC "
    "ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR"
).split()
_STATE_NAMES = (
    "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware",
    "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky",
    "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri",
    "Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey", "New Mexico", "New York",
    "North Carolina", "North Dakota", "Ohio", "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island",
    "South Carolina", "South Dakota", "Tennessee", "Texas", "Utah", "Vermont", "Virginia", "Washington",
    "West Virginia", "Wisconsin", "Wyoming",
)


def _alternation(words: tuple[str, ...] | list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NAME_WORD = r"(?:[A-Z][A-Za-z'’-]*\.?|\d{1,3}(?:st|nd|rd|th))"
# A period only after one-letter directions ("N."): after "NW" it ends the sentence.
_DIRECTION = r"(?:NE|NW|SE|SW|North|South|East|West|Northeast|Northwest|Southeast|Southwest|[NSEW]\.?)"
# `\#`: the address pattern is compiled VERBOSE, where a bare `#` starts a comment.
_UNIT = r"(?:(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|Room|Rm|Bldg|Building)\.?\s?\#?\s?[A-Za-z0-9-]{1,6}|\#\s?[A-Za-z0-9-]{1,6})"
_CITY = r"[A-Z][A-Za-z'.-]+(?:\s[A-Z][A-Za-z'.-]+){0,2}"
_STATE = rf"(?:{_alternation(_STATES)}|{_alternation(_STATE_NAMES)})"
_ZIP = r"\d{5}(?:-\d{4})?"

_ADDRESS = re.compile(
    rf"""
    (?<![\w$£€.,/-])
    (?P<number>\d{{1,6}}(?:-\d{{1,6}})?[A-Za-z]?)
    \s
    (?P<name>{_NAME_WORD}(?:\s{_NAME_WORD}){{0,3}}?)
    \s
    (?:
        (?P<strong>(?:{_alternation(_STRONG_WORDS)})\b|(?:{_alternation(_STRONG_ABBREVIATIONS)})\b\.?)
      | (?P<weak>(?:{_alternation(_WEAK_WORDS)})\b|(?:{_alternation(_WEAK_ABBREVIATIONS)})\b\.?)
    )
    (?:\s(?P<direction>{_DIRECTION})(?![\w]))?
    (?:,?\s(?P<unit>{_UNIT})\b)?
    (?:
        ,\s?(?P<city>{_CITY}),\s?(?P<state>{_STATE})\b(?:\s(?P<zip>{_ZIP}))?
      | ,?\s(?P<state_only>{_alternation(_STATES)})\s(?P<zip_only>{_ZIP})
    )?
    (?![\w@])
    """,
    re.VERBOSE,
)

# Scores: a strong suffix alone clears presidio's usual 0.4-0.5 thresholds; a weak one needs more.
_SCORE_STRONG = 0.6
_SCORE_WEAK = 0.3
_SCORE_WEAK_AT_PHRASE_END = 0.5
_YEAR = re.compile(r"1[89]\d\d|20\d\d")
_YEAR_CONTEXT = re.compile(r"\b(?:in|since|by|until|from|during|before|after|of|year)\s+$", re.IGNORECASE)
_PHRASE_END = re.compile(r"\s*(?:$|[,.;:!?)\n])")
_BONUS_DETAIL = 0.1  # a direction or unit after the suffix
_SCORE_WITH_LOCALITY = 0.85  # city + state, or state + ZIP


def _score(match: re.Match[str]) -> float:
    if _YEAR.fullmatch(match.group("number")) and _YEAR_CONTEXT.search(match.string, 0, match.start()):
        # "in 2008 Wall Street collapsed": a year, not a house number.
        return _SCORE_WEAK
    if match.group("zip") or match.group("zip_only") or match.group("state"):
        return _SCORE_WITH_LOCALITY
    if match.group("strong"):
        score = _SCORE_STRONG
    elif _PHRASE_END.match(match.string, match.end()):
        # "15 Millicent Drive." ends its phrase; "500 Ford Drive units" runs on into lowercase words.
        score = _SCORE_WEAK_AT_PHRASE_END
    else:
        score = _SCORE_WEAK
    if match.group("direction") or match.group("unit"):
        score += _BONUS_DETAIL
    return score


def find_addresses(text: str) -> list[tuple[int, int, float]]:
    """(start, end, score) for each street address in `text`."""
    return [(m.start(), m.end(), _score(m)) for m in _ADDRESS.finditer(text)]


CONTEXT = (
    "address", "live", "lives", "living", "located", "street", "ship", "shipping", "mail", "deliver", "home",
    "reside",
)


def street_address_recognizer(supported_language: str = "en") -> Any:
    """A presidio recognizer for STREET_ADDRESS over `find_addresses`. presidio is imported here, not at
    module import, so this module stays cheap for configs and tests that only need the pattern."""
    from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult

    class StreetAddressRecognizer(LocalRecognizer):
        def load(self) -> None:
            """Nothing to load: the pattern is compiled at import."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            if entities and ENTITY not in entities:
                return []
            results = []
            for start, end, score in find_addresses(text):
                results.append(
                    RecognizerResult(
                        entity_type=ENTITY,
                        start=start,
                        end=end,
                        score=score,
                        analysis_explanation=AnalysisExplanation(
                            recognizer=RECOGNIZER_NAME,
                            original_score=score,
                            textual_explanation="street address pattern",
                        ),
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: RECOGNIZER_NAME,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        },
                    )
                )
            return results

    return StreetAddressRecognizer(
        supported_entities=[ENTITY],
        name=RECOGNIZER_NAME,
        supported_language=supported_language,
        context=list(CONTEXT),
    )
