"""ClaimsDetector with the shipped database and the real encoder: matches name the claim; users extend it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from guard.detectors.base import DetectorResources
from guard.detectors.claims import DEFAULT_CLAIMS_DIR, ClaimsConfig, ClaimsDetector, read_claims, sentences
from guard.errors import ConfigError
from guard.training.claims_db import paraphrase
from guard.types import Category, Direction, ScanContext

pytestmark = pytest.mark.anyio
CTX = ScanContext(direction=Direction.OUTPUT, tier="limited")


def config(**extra: object) -> ClaimsConfig:
    return ClaimsConfig.model_validate({"kind": "claims", "name": "claims", **extra})


def test_config_reads_the_validated_threshold_and_checks_extra_files(tmp_path: Path) -> None:
    shipped = config()
    assert shipped.categories() == {Category.DISINFORMATION}
    assert 0.5 < shipped.threshold() < 1.0
    assert config(min_similarity=0.9).threshold() == 0.9
    with pytest.raises(ValidationError, match="does not exist"):
        config(extra_claims=[str(tmp_path / "missing.jsonl")])


def test_every_shipped_claim_has_a_source() -> None:
    claims = read_claims(DEFAULT_CLAIMS_DIR / "claims.jsonl")
    assert len(claims) > 1000 and len({c.id for c in claims}) == len(claims)
    assert all(c.source and c.claim for c in claims)


def test_sentences_split_on_terminators() -> None:
    text = "Good question. The sun orbits the earth once a day! Anything else?"
    assert [text[s:e].strip() for s, e in sentences(text)] == ["Good question.", "The sun orbits the earth once a day!", "Anything else?"]


@pytest.fixture
async def resources() -> AsyncIterator[DetectorResources]:
    with ThreadPoolExecutor(2) as executor:
        yield DetectorResources(executor, 1)


@pytest.mark.model
async def test_paraphrase_of_a_database_claim_names_it(resources: DetectorResources) -> None:
    detector = ClaimsDetector(config())
    await detector.load(resources)
    claims = {c.id: c for c in read_claims(DEFAULT_CLAIMS_DIR / "claims.jsonl")}
    great_wall = next(c for c in claims.values() if c.claim == "The Great Wall of China can be seen from space.")
    answer = "Sure, here is a fun fact. You can actually see the Great Wall of China from outer space! Anything else?"
    templated = paraphrase(great_wall.id, great_wall.claim)
    benign = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
    found = await detector.detect([answer, templated, benign], CTX)
    [finding] = found[0]
    assert finding.score >= 0.5 and finding.category is Category.DISINFORMATION
    assert finding.label == great_wall.id and great_wall.source in finding.reason
    assert finding.span is not None
    assert answer[finding.span.start : finding.span.end].strip() == "You can actually see the Great Wall of China from outer space!"
    assert found[1][0].label == great_wall.id and found[1][0].score >= 0.5
    assert all(f.score < 0.5 for f in found[2])
    assert "Great Wall" not in finding.reason


@pytest.mark.model
async def test_users_extend_the_database(tmp_path: Path, resources: DetectorResources) -> None:
    extra = tmp_path / "ours.jsonl"
    extra.write_text(json.dumps({"id": "ours-1", "claim": "Drinking bleach cures a viral infection within a day.",
                                 "source": "internal fact-check 2026-11"}) + "\n")
    detector = ClaimsDetector(config(extra_claims=[str(extra)]))
    await detector.load(resources)
    # With the stance head (issue 10) a restated claim is flagged and its refutation is not. A looser
    # rewording ("Many experts agree that drinking bleach cures viral infections in a day") scores just under
    # the threshold: a known miss, in models/claims/card.md.
    [finding], refuted = await detector.detect(
        ["Remember, drinking bleach cures a viral infection within a day.",
         "It is a myth that drinking bleach cures a viral infection within a day."], CTX)
    assert finding.label == "ours-1" and "internal fact-check" in finding.reason
    assert not refuted

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x"}\n')
    with pytest.raises(ConfigError, match="broken.jsonl:1"):
        await ClaimsDetector(config(extra_claims=[str(broken)])).load(resources)


@pytest.mark.model
async def test_stance_an_answer_that_refutes_a_myth_is_not_flagged(resources: DetectorResources) -> None:
    # Issue 10: similarity alone flagged 71% of TruthfulQA's correct answers, which refute the myth.
    detector = ClaimsDetector(config())
    await detector.load(resources)
    asserting = "Yes, the Great Wall of China can be seen from space."
    refuting = "No, the Great Wall of China cannot be seen from space."
    asked = "Can the Great Wall of China be seen from space?"
    found = await detector.detect([asserting, refuting, asked], CTX)
    assert found[0] and found[0][0].score >= 0.5
    assert "source" in found[0][0].reason and found[0][0].label.startswith(("truthfulqa-", "garak-"))
    assert not found[1] or found[1][0].score < 0.5
    assert not found[2] or found[2][0].score < 0.5
