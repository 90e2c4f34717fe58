"""The guard's own presidio recognizers, one module per family (issue 11), and how their results are
reconciled with presidio's and spaCy's.

    phones     international, national and local numbers, graded by phonenumbers
    ids        national identifiers with their checksums (UK, IN, CN, BR, ES, DE, FR, US)
    cards      card numbers with any separator, Luhn-checked
    dates      dates of birth after a birth word
    addresses  street addresses beyond US shapes (UK, DE, FR, ES/PT/IT, IN, APO/PO boxes)
    encoded    percent-encoded email addresses
    names      names after an introduction or a title, in several languages; implausible NER names
    gazetteer  names from first/last name lists of many locales

`resolve_overlaps` keeps, for each stretch of text, the single most credible result: higher score first,
and on a tie the more specific entity (a checksummed id over a phone, anything over PERSON), so "AKIA…"
is never a PERSON when a key recognizer matched it, and a span is never reported as two types.
"""

from __future__ import annotations

import re
from typing import Any

from guard.detectors.pii_recognizers import addresses, cards, dates, encoded, gazetteer, ids, names, phones

# Bump when any recognizer here changes what it finds: part of the detector's version (cache key).
VERSION = "1"
ENTITIES = sorted({*ids.ENTITIES, dates.ENTITY})
# presidio recognizers these replace (same entity, narrower formats).
REPLACED = ("PhoneRecognizer", "CreditCardRecognizer", "UsPassportRecognizer", "StreetAddressRecognizer")
NER_RECOGNIZER = "SpacyRecognizer"
# A pattern result at this score or above beats spaCy's PERSON on an overlapping span, whatever spaCy's
# (fixed 0.85) score: "Email john@x.io", "AKIA…" and "Baker Street" are the pattern's to judge.
PATTERN_BEATS_NER = 0.5
_PLACE_BEFORE = re.compile(r"\b(?:in|near|In|Near)\s+$")
# "the Ming dynasty", "the Moon": one word after an article is a thing, not a person.
_ARTICLE_BEFORE = re.compile(r"\b(?:the|The)\s+$")

# Lower rank wins a score tie: identifiers with checksums, then formats, then free-text entities.
_SPECIFICITY = {
    "CREDIT_CARD": 0, "IBAN_CODE": 0, "CN_RESIDENT_ID": 0, "BR_CPF": 0, "ES_NIF": 0, "ES_NIE": 0,
    "FR_INSEE": 0, "IN_AADHAAR": 1, "DE_TAX_ID": 1, "UK_NINO": 1, "IN_PAN": 1, "US_SSN": 1,
    "EMAIL_ADDRESS": 2, "IP_ADDRESS": 2, "DATE_OF_BIRTH": 2, "US_PASSPORT": 3, "IN_PASSPORT": 3,
    "US_DRIVER_LICENSE": 4, "PHONE_NUMBER": 4, "STREET_ADDRESS": 5, "PERSON": 9,
}


def guard_recognizers(language: str, lists: gazetteer.NameLists | None = None) -> list[Any]:
    """Every recognizer of this package for `language`. Reads the name lists (about 30 ms)."""
    return [
        gazetteer.name_list_recognizer(language, lists or gazetteer.NameLists()),
        phones.phone_recognizer(language),
        cards.card_recognizer(language),
        dates.date_of_birth_recognizer(language),
        addresses.intl_address_recognizer(language),
        encoded.encoded_email_recognizer(language),
        names.name_context_recognizer(language),
        *ids.id_recognizers(language),
    ]


def _recognizer(result: Any) -> str:
    return str((result.recognition_metadata or {}).get("recognizer_name", ""))


def resolve_overlaps(results: list[Any], text: str) -> list[Any]:
    """One result per stretch of text (see the module docstring). PERSON results are checked first:
    implausible ones go, any overlapping a confident pattern result goes, one after "in"/"near" goes
    (a place), and one followed by "Inc.", "Ltd", "Group" ... goes (an organisation)."""
    patterns = [r for r in results if r.entity_type != "PERSON" and r.score >= PATTERN_BEATS_NER]
    plausible = []
    for r in results:
        if r.entity_type == "PERSON":
            span_text = text[r.start : r.end]
            if names.is_implausible_person(span_text) or _PLACE_BEFORE.search(text, 0, r.start):
                continue
            if " " not in span_text.strip() and _ARTICLE_BEFORE.search(text, 0, r.start):
                continue
            if any(p.start < r.end and r.start < p.end for p in patterns):
                continue
            if names.followed_by_organisation_word(text, r.end):
                continue
        plausible.append(r)
    ranked = sorted(
        plausible,
        key=lambda r: (-round(float(r.score), 6), _SPECIFICITY.get(r.entity_type, 6), _recognizer(r) == NER_RECOGNIZER,
                       -(r.end - r.start), r.start),
    )
    kept: list[Any] = []
    for result in ranked:
        if any(k.start < result.end and result.start < k.end for k in kept):
            continue
        kept.append(result)
    return sorted(kept, key=lambda r: (r.start, r.end))
