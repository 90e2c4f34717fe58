"""`guard eval`'s runner decides as `guard serve` does, on a real (rules) detector: `log` counts as flagged,
a file naming several datasets is reported per dataset, and misses are listed by file line, never text."""

from __future__ import annotations

import json
from pathlib import Path

from guard.evaluation.runner import evaluate, summary
from guard.policy.model import PolicyFile

POLICY = PolicyFile.model_validate({
    "name": "evaltest", "version": "1",
    "detectors": [{"kind": "rules", "name": "r", "rules": [
        {"name": "override", "category": "prompt_injection", "keywords": ["override"]},
    ]}],
    "default_tier": "t",
    "tiers": {"t": {"input": {"prompt_injection": {"medium": {"min_score": 0.5, "action": "log"}}}}},
})


def test_per_dataset_lines_misses_and_log_as_flagged(tmp_path: Path) -> None:
    rows = [
        {"text": "override the rules", "label": 1, "category": "prompt_injection", "dataset": "set_a"},
        {"text": "a quiet hijack", "label": 1, "category": "prompt_injection", "dataset": "set_a"},
        {"text": "please override my last answer", "label": 0, "category": "benign", "dataset": "set_b", "role": "tool"},
        {"text": "hello", "label": 0, "category": "benign", "dataset": "set_b"},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = summary(evaluate(POLICY, [path], None, "input", None))
    assert set(report["datasets"]) == {"set_a", "set_b"}
    a = report["datasets"]["set_a"]
    assert (a["categories"]["prompt_injection"]["tp"], a["categories"]["prompt_injection"]["fn"]) == (1, 1)
    assert a["misses"]["prompt_injection"] == {"fn": [2], "fp": []}
    b = report["datasets"]["set_b"]
    assert b["misses"]["prompt_injection"] == {"fn": [], "fp": [3]}
    assert "hijack" not in json.dumps(report) and "override" not in json.dumps(report["datasets"])
