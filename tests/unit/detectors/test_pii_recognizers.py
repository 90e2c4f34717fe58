"""The guard's own PII recognizers (issue 11) as pure functions: formats found, look-alikes refused,
checksums enforced. No presidio engine is built here (the real detector runs in test_presidio_pii.py)."""

from __future__ import annotations

import pytest

from guard.detectors.pii_recognizers import checksums
from guard.detectors.pii_recognizers.addresses import find_intl_addresses
from guard.detectors.pii_recognizers.cards import find_cards
from guard.detectors.pii_recognizers.dates import find_dates_of_birth
from guard.detectors.pii_recognizers.encoded import find_encoded_emails
from guard.detectors.pii_recognizers.names import find_names, is_implausible_person
from guard.detectors.pii_recognizers.phones import find_phones


def _found(finder: object, text: str) -> list[str]:
    return [text[s:e] for s, e, _ in finder(text)]  # type: ignore[operator]


@pytest.mark.parametrize("text, value", [
    ("call 555-0134", "555-0134"), ("+1-555-010-4477 is my cell", "+1-555-010-4477"),
    ("mi móvil 612 345 678", "612 345 678"), ("电话010-6552 7788", "010-6552 7788"),
    ("+49 (0)30 1234567", "+49 (0)30 1234567"), ("765-024-1209x579 fax", "765-024-1209x579"),
])
def test_phones_in_many_formats(text: str, value: str) -> None:
    assert _found(find_phones, text) == [value]


@pytest.mark.parametrize("text", [
    "(1368 to 1644)", "1368-1644", "on 2024-10-23 23:11:59.002014", "v3.11.2", "192.168.0.1", "costs $1,299.99",
    "123-45-6789", "617 3208 James Street", "population 1.234.567",
])
def test_phone_look_alikes_are_not_phones(text: str) -> None:
    assert find_phones(text) == []


def test_invalid_numbers_score_below_valid_ones() -> None:
    (valid,) = find_phones("+44 20 7946 0958")
    (invalid,) = find_phones("+1-555-010-4477")
    assert invalid[2] < valid[2]


def test_cards_with_any_separator_must_pass_luhn() -> None:
    text = "4111.1111.1111.1111, 4111-1111-1111-1111, 5500 0000 0000 0004 and 4111.1111.1111.1112"
    assert _found(find_cards, text) == ["4111.1111.1111.1111", "4111-1111-1111-1111", "5500 0000 0000 0004"]


def test_checksums() -> None:
    assert checksums.verhoeff("234123412346") and not checksums.verhoeff("234123412345")
    assert checksums.cn_resident_id("11010519491231002X") and not checksums.cn_resident_id("110105194912310021")
    assert checksums.br_cpf("52998224725") and not checksums.br_cpf("52998224726")
    assert checksums.es_dni("12345678Z") and checksums.es_dni("X1234567L") and not checksums.es_dni("12345678A")
    assert checksums.de_tax_id("86095742719") and not checksums.de_tax_id("86095742718")
    assert checksums.fr_insee("255081416802538") and not checksums.fr_insee("255081416802539")
    assert checksums.luhn("4111111111111111") and not checksums.luhn("4111111111111112")


def test_dates_of_birth_only_after_a_birth_word() -> None:
    assert _found(find_dates_of_birth, "I was born on 12/03/1985.") == ["12/03/1985"]
    assert _found(find_dates_of_birth, "fecha de nacimiento: 3 de marzo de 1985") == ["3 de marzo de 1985"]
    assert _found(find_dates_of_birth, "Ich bin am 3. März 1985 geboren") == ["3. März 1985"]
    assert _found(find_dates_of_birth, "出生日期：1990年3月12日") == ["1990年3月12日"]
    assert find_dates_of_birth("the meeting is on 12/03/2024") == []


@pytest.mark.parametrize("text, value", [
    ("I live at 12 High Street, Oxford OX1 4AA now", "12 High Street, Oxford OX1 4AA"),
    ("Adresse: Hauptstraße 5, 10115 Berlin.", "Hauptstraße 5, 10115 Berlin"),
    ("au 12 rue de la Paix, 75002 Paris", "12 rue de la Paix, 75002 Paris"),
    ("en Calle Mayor 12, 28013 Madrid", "Calle Mayor 12, 28013 Madrid"),
    ("Flat 402, Sunshine Apartments, MG Road, Bengaluru 560001", "Flat 402, Sunshine Apartments, MG Road, Bengaluru 560001"),
])
def test_addresses_beyond_the_us(text: str, value: str) -> None:
    assert value in _found(find_intl_addresses, text)


def test_prose_is_not_an_address() -> None:
    assert find_intl_addresses("During 2022, the company grew; 5 Musicians Of The 70s; I read 3 rue books") == []


def test_percent_encoded_email() -> None:
    assert _found(find_encoded_emails, "?email=jane.doe%40example.com&x=1") == ["jane.doe%40example.com"]
    assert find_encoded_emails("50%40 off at example.com") == []


def test_names_after_introductions_and_implausible_names() -> None:
    assert _found(find_names, "hi, my name is ada obi and I need help") == ["ada obi"]
    assert _found(find_names, "我叫王伟，电话") == ["王伟"]
    assert _found(find_names, "Regards, Chidi Okafor") == ["Chidi Okafor"]
    for word in ("Brexit", "Moon", "Bitcoin", "AKIAIOSFODNN7EXAMPLE", "Thor Industries"):
        assert is_implausible_person(word)
    assert not is_implausible_person("Grace Okafor")
