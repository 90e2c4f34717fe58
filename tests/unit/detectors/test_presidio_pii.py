"""PresidioPIIDetector on real presidio + spaCy (offline), and the street-address pattern on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from guard.detectors.address import find_addresses
from guard.detectors.base import Detector, DetectorResources
from guard.detectors.presidio_pii import PresidioPIIConfig, PresidioPIIDetector
from guard.detectors.registry import build_detector
from guard.errors import ConfigError, DetectorError
from guard.types import Category, Direction, Finding, ScanContext

CTX = ScanContext(direction=Direction.INPUT, tier="limited")


# --- the address pattern (no models) ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("The White House is at 1600 Pennsylvania Avenue NW.", "1600 Pennsylvania Avenue NW"),
        ("Sherlock lived at 221B Baker Street in London.", "221B Baker Street"),
        ("Send it to 123 Main St, Springfield, IL 62704 please", "123 Main St, Springfield, IL 62704"),
        ("My flat: 42 W 5th Ave, Apt 4B, New York, NY 10001.", "42 W 5th Ave, Apt 4B, New York, NY 10001"),
        ("Office: 500 Oak Lane, Suite 200", "500 Oak Lane, Suite 200"),
        ("1 Infinite Loop, Cupertino, CA 95014", "1 Infinite Loop, Cupertino, CA 95014"),
        ("meet at 77 Massachusetts Ave. tomorrow", "77 Massachusetts Ave."),
    ],
)
def test_addresses_are_found_whole(text: str, address: str) -> None:
    found = [(text[s:e], score) for s, e, score in find_addresses(text)]
    assert [f for f, _ in found] == [address]
    assert found[0][1] >= 0.5


@pytest.mark.parametrize(
    "text",
    [
        "3 apples street performers",
        "I have 2 Main concerns",
        "Chapter 5 Court Rulings",
        "costs $5 Main Street prices",
        "1,500 Main Street",
        "room 3.5 Main St",
        "at 5 pm Street",
    ],
)
def test_non_addresses_are_not_flagged(text: str) -> None:
    assert find_addresses(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "We sold 500 Ford Drive units",  # a weak suffix running on into lowercase words
        "10 Google Drive files were shared",
        "I was born in 1990 Park Place era",
        "in 2008 Wall Street collapsed",  # a year, not a house number
    ],
)
def test_ambiguous_matches_score_below_the_usual_threshold(text: str) -> None:
    ((_, _, score),) = find_addresses(text)
    assert score < 0.4


@pytest.mark.parametrize(
    ("text", "address"),
    [("Send it to 15 Millicent Drive.", "15 Millicent Drive"), ("I moved to 138 Consul Place", "138 Consul Place")],
)
def test_weak_suffix_that_ends_the_phrase_counts(text: str, address: str) -> None:
    ((start, end, score),) = find_addresses(text)
    assert text[start:end] == address and score >= 0.5


# --- config (no models) ------------------------------------------------------------------------------
def test_patterns_nlp_refuses_ner_only_entities() -> None:
    with pytest.raises(ValidationError, match="found only by the spaCy NER"):
        PresidioPIIConfig.model_validate({"kind": "presidio_pii", "name": "pii", "nlp": "patterns"})


def test_custom_regex_is_checked() -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        PresidioPIIConfig.model_validate(
            {
                "kind": "presidio_pii",
                "name": "pii",
                "custom_recognizers": [{"entity_type": "EMP", "patterns": [{"name": "e", "regex": "EMP-[0-9"}]}],
            }
        )


def test_init_is_cheap_and_version_tracks_config() -> None:
    a = build_detector(PresidioPIIConfig(kind="presidio_pii", name="pii"))
    b = build_detector(PresidioPIIConfig(kind="presidio_pii", name="pii", min_score=0.6))
    assert isinstance(a, Detector) and a.categories == frozenset({Category.PII})
    assert a.version != b.version
    with pytest.raises(DetectorError):
        asyncio.run(a.detect(["x"], CTX))


# --- real presidio -----------------------------------------------------------------------------------
TEXT = (
    "Hi, I'm John Smith. Email john.smith@example.com, my phone number is 212-555-0134, "
    "card 4111 1111 1111 1111, SSN 536-22-8411. I live at 221B Baker Street. Badge EMP-123456."
)


@pytest.fixture(scope="module")
def spacy_detector() -> Iterator[PresidioPIIDetector]:
    config = PresidioPIIConfig.model_validate(
        {
            "kind": "presidio_pii",
            "name": "pii",
            "custom_recognizers": [
                {
                    "entity_type": "EMPLOYEE_ID",
                    "patterns": [{"name": "badge", "regex": r"\bEMP-\d{6}\b", "score": 0.5}],
                    "context": ["badge", "employee"],
                }
            ],
        }
    )
    detector = PresidioPIIDetector(config)
    executor = ThreadPoolExecutor(1)
    asyncio.run(detector.load(DetectorResources(executor, 1)))
    yield detector
    asyncio.run(detector.aclose())
    executor.shutdown()


def _detect(detector: PresidioPIIDetector, texts: list[str]) -> list[list[Finding]]:
    return [list(f) for f in asyncio.run(detector.detect(texts, CTX))]


def _by_type(text: str, findings: list[Finding]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in findings:
        assert f.span is not None
        out.setdefault(f.span.entity_type, []).append(text[f.span.start : f.span.end])
    return out


@pytest.mark.model
def test_finds_each_entity_at_its_offsets(spacy_detector: PresidioPIIDetector) -> None:
    (findings,) = _detect(spacy_detector, [TEXT])
    found = _by_type(TEXT, findings)
    assert found["PERSON"] == ["John Smith"]
    assert found["EMAIL_ADDRESS"] == ["john.smith@example.com"]
    assert found["PHONE_NUMBER"] == ["212-555-0134"]
    assert found["CREDIT_CARD"] == ["4111 1111 1111 1111"]
    assert found["US_SSN"] == ["536-22-8411"]
    assert found["STREET_ADDRESS"] == ["221B Baker Street"]
    assert found["EMPLOYEE_ID"] == ["EMP-123456"]
    for f in findings:
        assert f.category is Category.PII and f.detector == "pii" and f.detector_version == spacy_detector.version
        assert f.span is not None and f.label == f.span.entity_type
        assert 0.4 <= f.score <= 1.0
        assert f.reason.startswith("presidio ") and f.reason.endswith(f" matched {f.label}")
        assert TEXT[f.span.start : f.span.end] not in f.reason


@pytest.mark.model
def test_batch_gives_one_result_per_text_in_order(spacy_detector: PresidioPIIDetector) -> None:
    texts = ["nothing personal here", "write to ann@example.org", "", "nothing personal here"]
    found = _detect(spacy_detector, texts)
    assert len(found) == 4
    assert found[0] == [] and found[2] == [] and found[3] == []
    assert _by_type(texts[1], found[1]) == {"EMAIL_ADDRESS": ["ann@example.org"]}


@pytest.mark.model
def test_ner_guess_overlapping_an_email_is_dropped(spacy_detector: PresidioPIIDetector) -> None:
    # The small spaCy model tags "Email john.smith@example.com" as a PERSON in this sentence.
    text = "Email john.smith@example.com, call 212-555-0134"
    (findings,) = _detect(spacy_detector, [text])
    email = text.index("john.smith@example.com")
    assert _by_type(text, findings)["EMAIL_ADDRESS"] == ["john.smith@example.com"]
    for f in findings:
        assert f.span is not None
        if f.span.entity_type == "PERSON":
            assert f.span.end <= email or f.span.start >= email + len("john.smith@example.com")


@pytest.mark.model
def test_patterns_only_engine() -> None:
    config = PresidioPIIConfig.model_validate(
        {"kind": "presidio_pii", "name": "p", "nlp": "patterns", "entities": ["EMAIL_ADDRESS", "CREDIT_CARD"]}
    )
    detector = PresidioPIIDetector(config)
    with ThreadPoolExecutor(1) as executor:
        asyncio.run(detector.load(DetectorResources(executor, 1)))
        (findings,) = _detect(detector, [TEXT])
    assert _by_type(TEXT, findings) == {
        "EMAIL_ADDRESS": ["john.smith@example.com"],
        "CREDIT_CARD": ["4111 1111 1111 1111"],
    }


@pytest.mark.model
def test_unknown_entity_is_refused_at_validation_and_a_missing_model_at_load() -> None:
    # A misspelt entity fails when the policy is read (`guard policy check`), before any model loads.
    with pytest.raises(ValueError, match=r"no recognizer finds 'EMAIL_ADRESS'; did you mean EMAIL_ADDRESS"):
        PresidioPIIConfig.model_validate({"kind": "presidio_pii", "name": "p", "nlp": "patterns", "entities": ["EMAIL_ADRESS"]})
    missing = PresidioPIIConfig.model_validate({"kind": "presidio_pii", "name": "p", "spacy_model": "en_core_web_nope"})
    with ThreadPoolExecutor(1) as executor:
        with pytest.raises(ConfigError, match="is not installed"):
            asyncio.run(PresidioPIIDetector(missing).load(DetectorResources(executor, 1)))


@pytest.mark.model
def test_years_ranges_prices_versions_and_capitalised_words_are_not_pii(spacy_detector: PresidioPIIDetector) -> None:
    # Issue 11: each of these was redacted before, as PHONE_NUMBER or PERSON.
    text = "After Brexit the Moon and Bitcoin were news (1368 to 1644); it cost $1,299.99 in version 3.11.2."
    assert _detect(spacy_detector, [text]) == [[]]


@pytest.mark.model
def test_a_key_is_never_a_person(spacy_detector: PresidioPIIDetector) -> None:
    (findings,) = _detect(spacy_detector, ["Key AKIAIOSFODNN7EXAMPLE belongs to the build bot"])
    assert "PERSON" not in _by_type("Key AKIAIOSFODNN7EXAMPLE belongs to the build bot", findings)


@pytest.mark.model
def test_english_ner_never_runs_on_other_languages(spacy_detector: PresidioPIIDetector) -> None:
    texts = [
        "Llevo tres años viviendo aquí y quiero saber cómo hacer para pedir una cita médica.",
        "Ayer hablé con Roberto sobre el proyecto de Valencia y me mandó su teléfono 612 345 678.",
    ]
    benign, with_phone = _detect(spacy_detector, texts)
    assert benign == []
    assert all("SpacyRecognizer" not in f.reason for f in with_phone)
    assert _by_type(texts[1], with_phone).get("PHONE_NUMBER") == ["612 345 678"]


@pytest.mark.model
def test_known_entities_are_exactly_what_the_built_engine_finds() -> None:
    """`KNOWN_ENTITIES` lets `guard policy check` refuse a misspelt entity without loading a model; it must
    stay equal to what presidio, spaCy and the guard's recognizers really support."""
    from guard.detectors.presidio_pii import KNOWN_ENTITIES, PresidioPIIConfig, PresidioPIIDetector

    detector = PresidioPIIDetector(PresidioPIIConfig(kind="presidio_pii", name="p", entities=["EMAIL_ADDRESS"]))
    assert set(detector._build().get_supported_entities("en")) == KNOWN_ENTITIES
