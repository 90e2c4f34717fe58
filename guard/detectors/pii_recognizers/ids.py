"""National identifiers with their checksums, as presidio `PatternRecognizer`s with validators.

A checksum that holds raises a match to certainty (presidio sets it to 1.0) only where the format alone is
already distinctive (CN resident id, formatted CPF, DNI/NIE with its letter, INSEE). Where the format is a
plain digit run that many order numbers share (Aadhaar, undashed SSN, German tax id, US passport), a
passing checksum keeps a modest score and presidio's context words ("aadhaar", "SSN", "passport") lift it
over the policy's threshold; a failing one drops the match. presidio's own UK NINO, IN PAN and IN passport
recognizers are reused with scores raised to this module's scale.
"""

from __future__ import annotations

import re
from typing import Any

from guard.detectors.pii_recognizers import checksums

# (entity, pattern name, regex, score, validator, strong, context)
_SSN_BAD = re.compile(r"(?:000|666|9\d\d)\d{6}|\d{3}00\d{4}|\d{5}0000")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _spec() -> list[tuple[str, str, float, Any, bool, list[str]]]:
    return [
        ("CN_RESIDENT_ID", r"(?<![\dA-Za-z])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])",
         0.6, checksums.cn_resident_id, True, ["身份证", "身份证号", "resident", "identity", "id"]),
        ("BR_CPF", r"(?<![\d.])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\d])",
         0.6, lambda t: checksums.br_cpf(_digits(t)), True, ["cpf"]),
        ("BR_CPF", r"(?<!\d)\d{11}(?!\d)",
         0.05, lambda t: None if checksums.br_cpf(t) else False, False, ["cpf", "contribuinte"]),
        ("ES_NIF", r"(?<![\w])\d{8}-?[A-HJ-NP-TV-Za-hj-np-tv-z](?![\w])",
         0.6, checksums.es_dni, True, ["dni", "nif", "documento", "identidad"]),
        ("ES_NIE", r"(?<![\w])[XYZxyz]-?\d{7}-?[A-Za-z](?![\w])",
         0.6, checksums.es_dni, True, ["nie", "extranjero", "identidad"]),
        ("DE_TAX_ID", r"(?<!\d)[1-9]\d(?: ?\d{3}){3}(?!\d)",
         0.3, lambda t: None if checksums.de_tax_id(_digits(t)) else False, False,
         ["steuer", "steuer-id", "steuerid", "steueridentifikationsnummer", "identifikationsnummer", "tax"]),
        ("FR_INSEE", r"(?<![\d])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\d)",
         0.6, checksums.fr_insee, True, ["sécurité", "securite", "sociale", "insee", "nir"]),
        ("IN_AADHAAR", r"(?<![\d])[2-9]\d{3}[ -]?\d{4}[ -]?\d{4}(?![\d])",
         0.45, lambda t: None if checksums.verhoeff(_digits(t)) else False, False, ["aadhaar", "aadhar", "uidai", "आधार"]),
        ("US_SSN", r"(?<![\d-])\d{9}(?![\d-])",
         0.2, lambda t: False if _SSN_BAD.fullmatch(t) else None, False, ["ssn", "social", "security"]),
        ("US_SSN", r"(?<![\d-])\d{3} \d{2} \d{4}(?![\d-])",
         0.3, lambda t: False if _SSN_BAD.fullmatch(_digits(t)) else None, False, ["ssn", "social", "security"]),
        ("US_PASSPORT", r"(?<![\w])(?:[A-Z]\d{8}|\d{9})(?![\w])",
         0.2, None, False, ["passport", "passport#", "pasaporte", "passeport", "reisepass"]),
        ("UK_NINO", r"(?<![\w])(?!BG|GB|NK|KN|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w])",
         0.6, None, True, ["national insurance", "ni", "nino", "insurance"]),
        ("IN_PAN", r"(?<![\w])[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z](?![\w])",
         0.6, None, True, ["pan", "permanent account", "income tax"]),
        ("IN_PASSPORT", r"(?<![\w])[A-PR-WY][1-9]\d{5}[1-9](?![\w])",
         0.2, None, False, ["passport", "पासपोर्ट"]),
    ]


ENTITIES = sorted({entity for entity, *_ in _spec()})


def id_recognizers(language: str) -> list[Any]:
    from presidio_analyzer import Pattern, PatternRecognizer

    grouped: dict[str, list[tuple[str, float, Any, bool, list[str]]]] = {}
    for entity, regex, score, validator, strong, context in _spec():
        grouped.setdefault(entity, []).append((regex, score, validator, strong, context))
    recognizers = []
    for entity, variants in grouped.items():
        for index, (regex, score, validator, _strong, context) in enumerate(variants):

            class IdRecognizer(PatternRecognizer):
                _validator = staticmethod(validator) if validator else None

                def validate_result(self, pattern_text: str) -> bool | None:
                    if self._validator is None:
                        return None
                    result: bool | None = self._validator(pattern_text)
                    return result

            recognizers.append(
                IdRecognizer(
                    supported_entity=entity,
                    name=f"Guard{entity.title().replace('_', '')}Recognizer{index}",
                    patterns=[Pattern(f"{entity.lower()}_{index}", regex, score)],
                    context=context,
                    supported_language=language,
                )
            )
    return recognizers
