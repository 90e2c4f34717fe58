"""Plain-text tables of an evaluation summary (`guard eval` without `--json`)."""

from __future__ import annotations

import json
import math

from typing import Any


def _ci(entry: dict[str, float]) -> str:
    value = entry["value"]
    if value != value:  # NaN: no trials
        return "n/a"
    return f"{value:.3f} [{entry['low']:.3f},{entry['high']:.3f}]"


def render(summary: dict[str, Any]) -> str:
    lines = [
        f"{'dataset':<36} {'dir':<6} {'category':<17} {'n+':>5} {'n-':>5} "
        f"{'precision [95% CI]':<22} {'recall [95% CI]':<22} {'F1':>6} {'FPR [95% CI]':<22}"
    ]
    rows = [(name, d) for name, d in summary["datasets"].items()] + [("OVERALL", {**summary["overall"], "direction": "-"})]
    for name, data in rows:
        for category, m in data["categories"].items():
            positives, negatives = m["tp"] + m["fn"], m["fp"] + m["tn"]
            if positives + negatives == 0:
                continue
            f1 = "n/a" if m["f1"] is None else f"{m['f1']:.3f}"
            lines.append(
                f"{name[:36]:<36} {data['direction']:<6} {category:<17} {positives:>5} {negatives:>5} "
                f"{_ci(m['precision']):<22} {_ci(m['recall']):<22} {f1:>6} {_ci(m['fpr']):<22}"
            )
    spans = summary["overall"]["spans"]
    if spans:
        lines += ["", f"{'PII entity type':<20} {'gold':>6} {'pred':>6} {'span precision [95% CI]':<24} {'span recall [95% CI]':<24}"]
        for kind, m in spans.items():
            lines.append(f"{kind:<20} {m['gold']:>6} {m['predicted']:>6} {_ci(m['precision']):<24} {_ci(m['recall']):<24}")
    latency = summary["overall"]["latency_ms"]
    if latency:
        lines += ["", "latency per row (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in latency.items())]
    failures = sum(d["detector_failures"] for d in summary["datasets"].values())
    if failures:
        lines.append(f"detector failures: {failures} (flagged wherever the tier fails closed, as enforcement does)")
    return "\n".join(lines)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # a rate with no trials: JSON has no NaN, and strict parsers refuse it
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def to_json(report: object) -> str:
    """The report as strict JSON: a NaN (no trials) or infinity becomes null, never the bare `NaN` token."""
    return json.dumps(_finite(report), indent=2, sort_keys=True, allow_nan=False)
