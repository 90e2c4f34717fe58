"""Cost per KB of the PII path (issue 11): this tree's `pii` + `secret_scan` detectors of
policies/default.yaml against today's presidio path, in one run on one machine.

    .venv/bin/python benchmarks/bench_pii_cost.py --baseline-root /work/main [--rounds 20] [--json FILE]

"Today's" is the `pii` detector of the shipped default policy at `--baseline-root` (a checkout of the
branch before issue 11; default: the main worktree), run in a child process with that root on its
import path, so both sides use the same interpreter, packages and texts. Each side screens the same ~1 KB
prompts (a number in each changes, so no cache helps) one detector call per text; medians of `--rounds`
after a warm-up, in ms per KB of text, then the ratio new / today. Hardware and load average recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TEMPLATE = (
    "Hi, I'm Grace Okafor and I moved to 27 Baker Street, London NW1 6XE last month (ticket {n}). "
    "My phone is +44 7700 900{n:03d}, email grace.okafor@example.co.uk. Can you summarise the attached "
    "contract? It covers the lease from 2021 to 2024, the deposit of 1,250 pounds, the inventory list, the "
    "rules for pets and subletting, and what happens if the boiler breaks in winter. The landlord, Mr. "
    "Adeyemi, said the card 4111 1111 1111 1111 on file would be charged on the first of each month. I also "
    "need a short letter to my bank explaining the change of address, and a checklist for moving out so I "
    "get the deposit back. Please keep it polite but firm, and mention that the windows were already "
    "cracked when I arrived, as the photos from the first week show. Thanks a lot for your help today."
)

_CHILD = r"""
import asyncio, json, statistics, sys, time
from concurrent.futures import ThreadPoolExecutor
from guard.policy.load import load_policy
from guard.detectors.registry import build_detector
from guard.detectors.base import DetectorResources
from guard.types import ScanContext, Direction
root, rounds, template, names = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(",")
async def main():
    policy = load_policy(root + "/policies/default.yaml")
    detectors = [build_detector(c) for c in policy.detectors if c.name in names]
    resources = DetectorResources(ThreadPoolExecutor(1), 1)
    for d in detectors:
        await d.load(resources)
    ctx = ScanContext(direction=Direction.INPUT, tier="limited", route="bench")
    per_kb = []
    for n in range(rounds + 3):
        text = template.format(n=n)
        started = time.perf_counter()
        for d in detectors:
            await d.detect([text], ctx)
        if n >= 3:  # warm-up excluded
            per_kb.append((time.perf_counter() - started) * 1000 / (len(text.encode()) / 1024))
    print(json.dumps({"median_ms_per_kb": statistics.median(per_kb), "p95_ms_per_kb": sorted(per_kb)[int(0.95 * (len(per_kb) - 1))],
                      "bytes": len(template.format(n=0).encode())}))
asyncio.run(main())
"""


def _side(root: Path, rounds: int, detectors: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), str(rounds), _TEMPLATE, detectors],
        env=env, check=True, capture_output=True, text=True, timeout=600,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-root", type=Path, default=ROOT.parent.parent / "main")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    today = _side(args.baseline_root, args.rounds, "pii")
    new_pii = _side(ROOT, args.rounds, "pii")
    new_all = _side(ROOT, args.rounds, "pii,secret_scan")
    report = {
        "hardware": {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
                     "python": platform.python_version(), "load_average": os.getloadavg()},
        "today_pii": today, "new_pii": new_pii, "new_pii_and_secrets": new_all,
        "ratio_pii": new_pii["median_ms_per_kb"] / today["median_ms_per_kb"],
        "ratio_pii_and_secrets": new_all["median_ms_per_kb"] / today["median_ms_per_kb"],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
