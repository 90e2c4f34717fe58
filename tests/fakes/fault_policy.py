"""Policy files for the reliability and security batteries: the guard's real policy schema, with a planted
`FaultDetector` (kind: plugin) instead of the shipped models so each fault is deterministic and fast.

Two tiers: `limited` fails open on detector errors (`on_detector_error: allow`) and redacts the marker;
`high` fails closed and blocks it. A caller may only select `high` through the tier header when its
address is in `trusted_sources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from guard.policy.model import PolicyFile

MARKER = "ZQXJ-PLANTED-4471"  # what the fault detector finds; must never be released unscreened
CHAT = "/v1/chat/completions"


def fault_policy(
    *,
    mode: str = "find",
    default_tier: str = "limited",
    when_file: Path | None = None,
    budget_s: float = 0.5,
    trusted_sources: list[str] | None = None,
    secret: str = "internal-detail",
    limits: dict[str, Any] | None = None,
    version: str = "1",
    review: dict[str, Any] | None = None,
    limited_output_action: str = "redact",
) -> dict[str, Any]:
    settings: dict[str, Any] = {"mode": mode, "marker": MARKER, "delay_s": 30.0, "secret": secret}
    if when_file is not None:
        settings["when_file"] = str(when_file)
    high: dict[str, Any] = {
        "on_detector_error": "block",
        "input": {"pii": {"medium": {"min_score": 0.5, "action": "block"}}},
        "output": {"pii": {"medium": {"min_score": 0.5, "action": "block"}}},
    }
    policy: dict[str, Any] = {
        "name": "faults",
        "version": version,
        "detectors": [
            {
                "kind": "plugin",
                "name": "marker",
                "factory": "tests.fakes.detectors:FaultDetector",
                "reports": ["pii"],
                "settings": settings,
            }
        ],
        "default_tier": default_tier,
        "routes": [{"name": "chat", "path": CHAT, "codec": {"kind": "openai_chat"}}],
        "limits": {"detector_budget_s": budget_s, **(limits or {})},
        "tiers": {
            "limited": {
                "on_detector_error": "allow",
                "input": {"pii": {"medium": {"min_score": 0.5, "action": "redact"}}},
                "output": {"pii": {"medium": {"min_score": 0.5, "action": limited_output_action}}},
            },
            "high": high,
        },
    }
    if review is not None:
        policy["tiers"]["review"] = {
            "on_detector_error": "block",
            "review": review,
            "input": {"pii": {"medium": {"min_score": 0.5, "action": "review"}}},
        }
    if trusted_sources is not None:
        policy["tier_header"] = {"name": "x-guard-tier", "trusted_sources": trusted_sources}
    PolicyFile.model_validate(policy)  # a broken test policy fails here, not as a guard start-up error
    return policy


def write_policy(path: Path, policy: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def chat(content: str, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "fake", "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    return body
