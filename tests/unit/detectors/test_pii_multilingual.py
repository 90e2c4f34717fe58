"""The hand-written multilingual PII set (data/eval/pii_multilingual.jsonl, issue 11) through the shipped
default policy and the real detectors: at least 95% of the planted values are gone from what the policy
forwards, and every benign non-English prompt passes unchanged.

A planted value counts as removed only when neither it nor its longest alphanumeric run (a key body,
the digits of a number) is left in the redacted text.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard import Guard

DATA = Path(__file__).resolve().parents[3] / "data" / "eval" / "pii_multilingual.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
MIN_REMOVED = 0.95


def _longest_run(value: str) -> str:
    return max(re.findall(r"[^\W_]+", value), key=len, default=value)


@pytest.fixture(scope="module")
def forwarded() -> Iterator[list[str]]:
    async def run() -> list[str]:
        async with await Guard.from_policy(executor_threads=1) as guard:
            out = []
            for row in ROWS:
                decision = await guard.screen(row["text"])
                out.append(guard.redact(row["text"], decision)[0])
            return out

    yield asyncio.run(run())


def test_the_set_covers_eight_languages_and_both_kinds() -> None:
    assert len({row["language"] for row in ROWS}) >= 8
    assert sum(len(row["spans"]) for row in ROWS) >= 70
    assert len({row["language"] for row in ROWS if row["label"] == 0 and row["language"] != "en"}) >= 8


@pytest.mark.model
def test_planted_values_are_removed(forwarded: list[str]) -> None:
    planted = survived = 0
    survivors = []
    for row, out in zip(ROWS, forwarded, strict=True):
        for span in row["spans"]:
            value = row["text"][span["start"] : span["end"]]
            planted += 1
            if value in out or _longest_run(value) in out:
                survived += 1
                survivors.append((row["id"], span["entity_type"]))
    assert (planted - survived) / planted >= MIN_REMOVED, survivors


@pytest.mark.model
def test_benign_non_english_prompts_pass_unchanged(forwarded: list[str]) -> None:
    changed = [row["id"] for row, out in zip(ROWS, forwarded, strict=True) if row["label"] == 0 and out != row["text"]]
    assert changed == []
