"""Names that spaCy's small English model misses, found from how people introduce them, in several
languages: "my name is ada obi" (lowercase too), "I'm Wei Zhang", "Mr. Okonkwo", "me llamo João Silva",
"je m'appelle ...", "ich heiße ...", "meu nome é ...", "jina langu ni ...", "我叫王伟"; and letters' sign-offs
("Regards,\nChidi Okafor"). The span is the name only. And `is_implausible_person`: NER spans that cannot
be a person's name (digits, key-like upper-case runs, single ordinary capitalised words such as "Brexit",
"Moon", "Bitcoin").
"""

from __future__ import annotations

import re
from typing import Any

ENTITY = "PERSON"
NAME = "GuardNameContextRecognizer"
_LETTER = r"[A-Za-zÀ-ÖØ-öø-ÿĀ-ſ'’-]"
_CAP_NAME = rf"[A-ZÀ-ÖØ-ÞĀ-Ž]{_LETTER}+"
_NAME_WORD = rf"(?:{_CAP_NAME}|[a-zß-öø-ÿ]{_LETTER}+)"
_ANY_NAME = rf"{_LETTER}{{2,}}"
# After a strong introduction the name may be lowercase; stop at words that start a new clause.
_STOP = (
    r"(?!(?:and|and|but|from|i|im|i'm|is|am|the|a|an|in|at|on|to|of|my|y|e|et|und|und|und|de|da|do|la|le|el|"
    r"con|with|here|there|and|so|but|calling|writing|looking|trying|not|your|you|ich|je|yo|eu|na|ni|nina|"
    r"aus|von|der|die|das|und|ist|mi|me|soy|sou|suis|bin|habe|have|has|was|will|would|can|could|just)\b)"
)
_STRONG_INTRO = (
    r"(?:my\s+name\s+is|my\s+name's|name\s*:|me\s+llamo|mi\s+nombre\s+es|je\s+m['’]appelle|mon\s+nom\s+est|"
    r"ich\s+hei(?:ß|ss)e|mein\s+name\s+ist|meu\s+nome\s+é|me\s+chamo|mi\s+chiamo|il\s+mio\s+nome\s+è|"
    r"everyone\s+calls\s+me|maiden\s+name\s+is|last\s+name\s+is|first\s+name\s+is|surname\s*:|"
    r"jina\s+langu\s+ni|naitwa|mijn\s+naam\s+is|ik\s+heet|nazywam\s+się|меня\s+зовут)"
)
_WEAK_INTRO = r"(?:I\s+am|I['’]m|this\s+is|call\s+me|signed|regards,|thanks,|cheers,|sincerely,|yours,|atentamente,|cordialement,|grüße,|abraços,)"
_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sra|Srta|Herr|Frau|Mme|Mlle|Dona|Dom|Sig|Sig\.ra|Chief|Alhaji|Mallam)\.?"

_STRONG = re.compile(
    rf"(?i:{_STRONG_INTRO})\s+(?P<name>{_STOP}{_ANY_NAME}(?:[ \t]{_STOP}{_ANY_NAME}){{0,2}})", re.UNICODE
)
_WEAK = re.compile(rf"(?i:{_WEAK_INTRO})\s+(?P<name>{_CAP_NAME}(?:[ \t]{_CAP_NAME}){{0,2}})")
_TITLED = re.compile(rf"(?<!\w)(?i:{_TITLE})[ \t](?P<name>{_NAME_WORD}(?:[ \t](?:[A-Z]\.[ \t])?{_NAME_WORD}){{0,2}})")
_HAN = re.compile(r"(?:我叫|我是|我的名字是|姓名[:：]?\s?)(?P<name>[\u4e00-\u9fff]{2,3})")
SCORE_STRONG = 0.85
SCORE_WEAK = 0.6
SCORE_WEAK_ONE_WORD = 0.4  # "I'm Looking for", "I am Happy": one word after "I am" is often not a name
SCORE_TITLED = 0.75

# Capitalised words spaCy's small model tags as PERSON that are not names (issue 11 cases and kin).
_NOT_NAMES = frozenset({
    "brexit", "moon", "bitcoin", "ethereum", "crypto", "covid", "covid-19", "earth", "mars", "sun", "venus",
    "jupiter", "saturn", "god", "allah", "internet", "google", "python", "java", "linux", "excel", "hey", "hi",
    "hello", "thanks", "please", "dear", "ok", "okay", "yes", "no", "monday", "tuesday", "wednesday",
    "thursday", "friday", "saturday", "sunday", "chatgpt", "gpt", "openai", "llama", "claude", "gemini",
})
# A word like these inside a PERSON span, or right after it, makes it an organisation, a place or an event.
_NON_NAME_WORDS = frozenset({
    "inc", "ltd", "llc", "plc", "lp", "llp", "gmbh", "ag", "sa", "co", "corp", "corporation", "company", "group",
    "holdings", "industries", "brands", "trust", "bank", "capital", "partners", "energy", "systems", "services",
    "technologies", "pharmaceuticals", "foundation", "university", "college", "school", "hospital", "hotel",
    "church", "day", "republic", "river", "park", "street", "avenue", "road", "bridge", "airport", "station",
    "stripes", "investors", "fund", "acquisition", "international", "global", "limited", "motors", "airlines",
    "english", "french", "german", "spanish", "chinese", "czech", "italian", "polish", "dutch", "russian",
    "japanese", "korean", "arabic", "portuguese", "brazilian", "nigerian", "indian", "american", "british",
})
_NEXT_WORD = re.compile(r"['’]?s?\s*,?\s*&?\s*([A-Za-z]+)")
_DIGIT_OR_SYMBOL = re.compile(r"[\d@#$%&*_=+/\\<>{}\[\]|~^]")
_UPPER_RUN = re.compile(r"[A-Z]{3,}")


def followed_by_organisation_word(text: str, end: int) -> bool:
    match = _NEXT_WORD.match(text, end)
    return match is not None and match.group(1).lower() in _NON_NAME_WORDS


_HAN_NAME = re.compile(r"[\u4e00-\u9fff]{2,4}")


def is_implausible_person(span_text: str) -> bool:
    if _HAN_NAME.fullmatch(span_text):
        return False  # Chinese names have no capitals; the word checks below are for alphabetic scripts
    words = span_text.split()
    if not words or _DIGIT_OR_SYMBOL.search(span_text) or "\n" in span_text.strip():
        return True
    if any(w.strip(".,'’").lower() in _NON_NAME_WORDS for w in words):
        return True
    if any(_UPPER_RUN.search(w) and not w.isupper() for w in words):
        return True
    if len(words) == 1:
        word = words[0].strip(".,'’")
        if word.lower() in _NOT_NAMES or not word[:1].isupper() or (word.isupper() and len(word) > 1):
            return True
    return False


def find_names(text: str) -> list[tuple[int, int, float]]:
    found = []
    for pattern, score in ((_STRONG, SCORE_STRONG), (_WEAK, SCORE_WEAK), (_TITLED, SCORE_TITLED), (_HAN, SCORE_STRONG)):
        for match in pattern.finditer(text):
            start, end = match.span("name")
            name = match.group("name")
            if name.lower() in _NOT_NAMES:
                continue
            if pattern is _WEAK and " " not in name:
                score = SCORE_WEAK_ONE_WORD
            found.append((start, end, score))
    return found


def name_context_recognizer(language: str) -> Any:
    from presidio_analyzer import LocalRecognizer

    from guard.detectors.pii_recognizers._result import make_result

    class GuardNameContextRecognizer(LocalRecognizer):
        def load(self) -> None:
            """Nothing to load."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [make_result(self, ENTITY, s, e, sc, "name after an introduction") for s, e, sc in find_names(text)]

    return GuardNameContextRecognizer(supported_entities=[ENTITY], name=NAME, supported_language=language)
