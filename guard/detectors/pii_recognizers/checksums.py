"""Check digits of the identifiers the recognizers validate: Luhn (cards), Verhoeff (Aadhaar),
ISO 7064 MOD 11-2 (Chinese resident ID), the CPF's two mod-11 digits, the DNI/NIE letter, the German
tax id's ISO 7064 MOD 11,10 digit and the French INSEE number's 97-complement key. Pure functions."""

from __future__ import annotations

import datetime

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def verhoeff(digits: str) -> bool:
    check = 0
    for index, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][int(char)]]
    return check == 0


def cn_resident_id(value: str) -> bool:
    """18 characters: 17 digits (6 area, 8 birth date, 3 sequence) and an ISO 7064 MOD 11-2 check (0-9, X)."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    try:
        birth = datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not datetime.date(1900, 1, 1) <= birth <= datetime.date.today():
        return False
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    remainder = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True)) % 11
    return "10X98765432"[remainder] == value[17].upper()


def br_cpf(digits: str) -> bool:
    if len(digits) != 11 or len(set(digits)) == 1:
        return False
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(digits[:size], range(size + 1, 1, -1), strict=True))
        if (total * 10 % 11) % 10 != int(digits[size]):
            return False
    return True


def es_dni(value: str) -> bool:
    """DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter)."""
    value = value.upper().replace("-", "").replace(" ", "")
    if len(value) != 9:
        return False
    body = "XYZ".index(value[0]).__str__() + value[1:8] if value[0] in "XYZ" else value[:8]
    return body.isdigit() and _DNI_LETTERS[int(body) % 23] == value[8]


def de_tax_id(digits: str) -> bool:
    """Steuer-IdNr: 11 digits, no leading zero, one digit of the first ten repeated (2 or 3 times), and an
    ISO 7064 MOD 11,10 check digit."""
    if len(digits) != 11 or digits[0] == "0":
        return False
    counts = sorted((digits[:10].count(d) for d in set(digits[:10])), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    product = 10
    for char in digits[:10]:
        total = (int(char) + product) % 10 or 10
        product = total * 2 % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


def fr_insee(value: str) -> bool:
    """NIR: sex (1/2), year, month, department (digits, or 2A/2B for Corsica), commune, order, key."""
    compact = value.replace(" ", "").upper()
    if len(compact) != 15 or compact[0] not in "12":
        return False
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    if not body.isdigit() or not compact[13:].isdigit():
        return False
    month = int(compact[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    return 97 - int(body) % 97 == int(compact[13:])
