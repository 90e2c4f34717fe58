"""`guard eval`: precision, recall, F1 and false-positive rate per category (95% Wilson intervals), PII
span precision and recall per entity type, and latency percentiles, for a policy's detectors.

    guard eval --dataset ../shared/datasets/deepset_prompt_injections/train.jsonl
    guard eval --dataset ../shared/datasets --policy policies/strict.yaml --json
    guard eval --fairness --policy policies/strict.yaml    # flag rate per group: guard/evaluation/fairness.py

`--dataset` is a JSONL file or a folder of them (one table for all). A tqdm bar on stderr shows progress.
Span rule and what counts as flagged: `guard/evaluation/metrics.py` and `guard/evaluation/runner.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard.errors import GuardError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, help="a JSONL file or a folder of them")
    parser.add_argument("--fairness", nargs="?", const="", metavar="TEMPLATES",
                        help="flag rate per group on benign templates (default: the shipped data/eval/fairness_templates.yaml)")
    parser.add_argument("--policy", type=Path, help="policy file (default: the shipped policies/default.yaml)")
    parser.add_argument("--tier", help="tier whose tables decide (default: the policy's default_tier)")
    parser.add_argument("--direction", choices=["auto", "input", "output"], default="auto",
                        help="auto: disinformation sets as output, the rest as input")
    parser.add_argument("--limit", type=int, help="only the first N rows of each file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from guard.evaluation.report import render, to_json
    from guard.evaluation.runner import dataset_files, evaluate, summary
    from guard.policy.load import default_policy_path, load_policy

    if args.fairness is not None:
        return _fairness(args)
    if args.dataset is None:
        print("guard eval: give --dataset FILE_OR_FOLDER, or --fairness", file=sys.stderr)
        return 2
    try:
        policy = load_policy(args.policy or default_policy_path())
        files = dataset_files(args.dataset)
        results = evaluate(policy, files, args.tier, args.direction, args.limit)
    except GuardError as exc:
        print(f"guard eval: {exc}", file=sys.stderr)
        return 2
    report = summary(results)
    if args.json:
        print(to_json(report))
    else:
        print(render(report))
    return 0


def _fairness(args: argparse.Namespace) -> int:
    from guard.evaluation.fairness import DEFAULT_TEMPLATES, load_templates, render, run_fairness
    from guard.evaluation.report import to_json
    from guard.policy.load import default_policy_path, load_policy
    from guard.types import Direction

    directions = [Direction.INPUT, Direction.OUTPUT] if args.direction == "auto" else [Direction(args.direction)]
    try:
        policy = load_policy(args.policy or default_policy_path())
        templates = load_templates(Path(args.fairness) if args.fairness else DEFAULT_TEMPLATES)
        reports = run_fairness(policy, templates, args.tier, directions)
    except GuardError as exc:
        print(f"guard eval: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(to_json([r.as_dict() for r in reports]))
    else:
        print(render(reports))
    return 0
