"""Street addresses beyond the US shapes of `guard.detectors.address`: UK (house number, street, town,
postcode), German/Austrian/Swiss (street name with its suffix fused on, then the number, then PLZ + town),
French (number, "rue/avenue/boulevard ...", optional 5-digit code + town), Spanish/Portuguese/Italian
(street type first, name, then the number), Indian (flat/house/plot number, locality words such as
"Nagar", "Marg", "Road", "Sector", and a 6-digit PIN), and military/PO box lines (PSC 1234, Box 567,
APO AP 12345). Each pattern needs a street-type word and a number, which keeps prose out.
"""

from __future__ import annotations

import re
from typing import Any

from guard.detectors import address as us_address

ENTITY = "STREET_ADDRESS"
NAME = "GuardIntlAddressRecognizer"
# Upper-case initial in Latin, Latin Extended, Greek and Cyrillic scripts.
_UPPER = "A-ZÀ-ÖØ-ÞĀĂĄĆĈĊČĎĐĒĔĖĘĚĜĞĠĢĤĦĨĪĬĮİĲĴĶĹĻĽĿŁŃŅŇŊŌŎŐŒŔŖŘŚŜŞŠŢŤŦŨŪŬŮŰŲŴŶŸŹŻŽΆ-ΏΑ-ΩА-Я"
_NOT_FUNCTION_WORD = r"(?!(?:Of|The|And|For|In|On|At|To|A|An|Is|Are|Or|With|You|We|My|Your)\b)"
_CAP = rf"{_NOT_FUNCTION_WORD}[{_UPPER}][\w'’-]*"
_WORD = r"[\wÀ-ÖØ-öø-ÿ'’.-]+"
_TOWN = rf"{_CAP}(?:[ -]{_CAP}){{0,2}}"
_UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})"
_UK_SUFFIX = (
    r"(?:Street|St\.?|Road|Rd\.?|Lane|Ln|Avenue|Ave\.?|Close|Gardens|Grove|Crescent|Mews|Hill|Drive|Way|Place|"
    r"Court|Terrace|Row|Square|Walk|Green|Park|Rise|View|Parade|Broadway|Wharf|Quay)"
)
_NOT_YEAR = r"(?!(?:1[89]|20)\d\d\b)"
_DE_NAME = r"[A-ZÀ-ÖØ-Þ][\wÀ-ÖØ-öø-ÿ'’-]{2,}"
_DE_SUFFIX = r"(?:stra(?:ß|ss)e|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|markt)"
_FR_TYPE = r"(?i:rue|avenue|av\.|boulevard|bd|place|chemin|all[ée]e|impasse|quai|route|cours|square|passage|faubourg)"
_ES_TYPE = (
    r"(?:Calle|C/|Avenida|Avda\.?|Av\.|Plaza|Pza\.?|Paseo|Pº|Camino|Carrer|Carretera|Ronda|Travesía|"
    r"Rua|Rúa|R\.|Travessa|Largo|Praça|Via|Viale|Piazza|Corso|Vicolo)"
)
_IN_LOCALITY = r"(?:Nagar|Marg|Road|Rd\.?|Colony|Layout|Sector\s\d{1,3}|Vihar|Enclave|Chowk|Bagh|Puram|Pet|Gali|Lane|Cross|Main)"

_PATTERNS: list[tuple[re.Pattern[str], float]] = [
    # 12 High Street, Oxford OX1 4AA / Flat 3, 27 Baker Street, London NW1 6XE
    (re.compile(
        rf"(?<![\w])(?:(?:Flat|Apartment|Unit)\s\w{{1,4}},?\s)?\d{{1,4}}[A-Za-z]?,?\s(?:{_CAP}\s){{1,3}}{_UK_SUFFIX}"
        rf"(?:,\s?{_TOWN})?,?\s{_UK_POSTCODE}(?![\w])"), 0.85),
    # Hauptstraße 5, 10115 Berlin / Am Musterweg 12a / Straße des 17. Juni 135
    (re.compile(
        rf"(?<![\w])(?:(?:Am|An der|Im|In der|Auf der|Zum|Zur)\s)?{_DE_NAME}{_DE_SUFFIX}\s{_NOT_YEAR}\d{{1,4}}\s?[a-z]?(?![\w])"
        rf"(?:,?\s\d{{5}}\s{_TOWN})?"), 0.6),
    (re.compile(rf"(?<![\w]){_CAP}(?:-|\s){_DE_NAME}{_DE_SUFFIX}\s{_NOT_YEAR}\d{{1,4}}\s?[a-z]?(?:,?\s\d{{5}}\s{_TOWN})?(?![\w])"), 0.6),
    # 12 rue de la Paix, 75002 Paris / 3 bis avenue Victor Hugo
    (re.compile(
        rf"(?<![\w])\d{{1,4}}(?:\s?(?:bis|ter))?,?\s{_FR_TYPE}\s(?:(?:de\sla|du|des|de|de\sl'|d'|l')\s?)?{_CAP}"
        rf"(?:\s(?:de\s|du\s|des\s|la\s|le\s)?{_CAP}){{0,3}}(?:,?\s\d{{5}}\s{_TOWN})?(?![\w])"), 0.6),
    # Calle Mayor 12, 28013 Madrid / C/ Manuel Iradier 77 / Rua das Flores, 123 / Via Roma 10
    (re.compile(
        rf"(?<![\w]){_ES_TYPE}\s?(?:(?:de|del|de la|de los|de las|da|das|do|dos|di|della)\s)?{_CAP}"
        rf"(?:\s(?:de\s|del\s|da\s|do\s|dos\s|das\s)?{_CAP}){{0,3}},?\s(?:n[º°o]\.?\s?)?\d{{1,4}}(?:[A-Za-z]|,?\s\d+º\s?\w?)?"
        rf"(?:,?\s\d{{4,5}}(?:-\d{{3}})?\s{_TOWN})?(?![\w])"), 0.6),
    # Flat 402, Sunshine Apartments, MG Road, Bengaluru 560001 / 12, Nehru Nagar, New Delhi - 110001
    (re.compile(
        rf"(?<![\w])(?:(?:Flat|House|H\.?\s?No\.?|Plot|Door|Shop)\s?(?:No\.?\s?)?[\w/-]{{1,6}},?\s)?"
        rf"(?:\d{{1,4}}[\w/-]{{0,4}},?\s)?(?:{_CAP},?\s){{0,4}}{_IN_LOCALITY}(?:,\s?{_TOWN}){{1,2}}\s?[-,]?\s?[1-9]\d{{2}}\s?\d{{3}}(?![\w])"), 0.85),
    # PSC 3319, Box 0368 APO AP 06501 / USNS Ship, FPO AE 12345 / P.O. Box 123
    (re.compile(r"(?<![\w])(?:PSC\s\d{3,5},?\s?Box\s\d{2,5}|Unit\s\d{3,5}\s?Box\s\d{2,5}|US[A-Z]{1,3}\s\w+)"
                r"(?:,?\s+(?:APO|FPO|DPO)\s(?:AA|AE|AP)\s\d{5})?(?![\w])"), 0.85),
    # European "building, street name, number": 4654 Skólastígur 52 / 918 Pfarrgasse 83 / 12045 Via Carlo Cattaneo 88
    (re.compile(rf"(?<![\w$€£.,/-]){_NOT_YEAR}\d{{1,6}}\s{_CAP}(?:\s(?:{_CAP}|tee|út|vej|gade|veien|de|da|del|du)){{0,3}}\s\d{{1,4}}[a-rt-z]?(?![\w.,]\d|\w)"), 0.5),
    # Street-type abbreviations before the name: ul. Siostrzana 48 / R Portela 11 / Λεωφ. Ποσειδώνος 30
    (re.compile(rf"(?<![\w])(?:ul\.|al\.|R\.?|Av\.|Λεωφ\.|Οδός|ул\.|пр\.)\s{_CAP}(?:\s{_CAP}){{0,3}}\s\d{{1,4}}[a-z]?(?![\w])"), 0.6),
    (re.compile(r"(?<![\w])(?:P\.?\s?O\.?\s?Box|Apartado|Postfach|Caixa Postal|BP)\s\d{1,6}(?![\w])", re.IGNORECASE), 0.6),
]
CONTEXT = ["address", "live", "lives", "located", "adresse", "anschrift", "wohne", "dirección", "direccion",
           "vivo", "endereço", "moro", "indirizzo", "habite", "pata", "anwani", "地址", "पता"]


# Lines that continue an address: a unit, a "Town, ST 12345" or "Country 12345" line, a bare town line.
_CONTINUATION = re.compile(
    rf"(?:,?\s*\n\s*|,\s|\s)(?:(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor)\s[\w-]{{1,6}}"
    rf"|{_TOWN}(?:,\s?(?:[A-Z]{{2,3}}|nan))?(?:\s+\d{{4,6}}(?:-\d{{3,4}})?)?(?=\s*(?:\n|$|[.,]\s)))"
)
_MAX_CONTINUATION_LINES = 4
BONUS_CONTINUED = 0.2


def _extend(text: str, end: int) -> tuple[int, int]:
    """End offset after up to four continuation lines, and how many were taken."""
    taken = 0
    while taken < _MAX_CONTINUATION_LINES:
        match = _CONTINUATION.match(text, end)
        if match is None or match.end() == end:
            break
        end, taken = match.end(), taken + 1
    return end, taken


def find_intl_addresses(text: str) -> list[tuple[int, int, float]]:
    """US shapes (`guard.detectors.address`) and the shapes above, each extended over continuation lines."""
    found = []
    candidates = [*us_address.find_addresses(text)]
    for pattern, score in _PATTERNS:
        candidates.extend((m.start(), m.end(), score) for m in pattern.finditer(text))
    for start, end, score in candidates:
        new_end, taken = _extend(text, end)
        found.append((start, new_end, min(1.0, score + (BONUS_CONTINUED if taken else 0.0))))
    return found


def intl_address_recognizer(language: str) -> Any:
    from presidio_analyzer import LocalRecognizer

    from guard.detectors.pii_recognizers._result import make_result

    class GuardIntlAddressRecognizer(LocalRecognizer):
        def load(self) -> None:
            """Nothing to load: the patterns are compiled at import."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [make_result(self, ENTITY, s, e, sc, "street address pattern") for s, e, sc in find_intl_addresses(text)]

    return GuardIntlAddressRecognizer(supported_entities=[ENTITY], name=NAME, supported_language=language, context=CONTEXT)
