"""`guard scan`: screen text under a policy without a proxy, and print the decisions as JSON.

    echo "call me on 212-555-0134" | guard scan                     # one decision for all of stdin
    guard scan --jsonl rows.jsonl --direction output --tier high      # one line per {"text": ...} row

Each decision has `action`, `verdict`, `tier`, `policy_version`, `categories`, `would_have_been`, detector
`failures`, and `findings` (category, detector, score, start, end, entity_type, label; offsets into the
row's text, never the text itself), plus `redacted` text when the action is `redact`. A JSONL row's other
fields (an `id`, a label) are copied to its output line; its `text` is not echoed back. A row that is not
a JSON object with a string `text` is reported on stderr with its line number, the others are still
screened, and the exit status is 1. With `--fail-on ACTION` (redact, review, block, ...) the exit status is
3 when any text's action reached ACTION, so a CI step can gate on it: `guard scan --fail-on block < prompt`.

The detectors are the policy's own, built and loaded as `guard serve` does, and rows are screened in
batches (`--batch-size`) so spaCy sees several texts per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from guard.actions.redact import redact, spans_to_redact
from guard.detectors.base import Detector, DetectorResources
from guard.detectors.registry import build_detector
from guard.errors import ConfigError, GuardError
from guard.metrics import GuardMetrics
from guard.policy.decide import decide
from guard.policy.load import default_policy_path, load_policy
from guard.policy.model import PolicyFile
from guard.screening import Screener, ScreeningCache
from guard.types import Action, Decision, Direction, ScanContext, ScanResult

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_FAILED_GATE = 0, 1, 2, 3
_CACHE_ENTRIES = 4096


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, default=None, help="policy file (default: policies/default.yaml)")
    parser.add_argument(
        "--direction", choices=[d.value for d in Direction], default=Direction.INPUT.value,
        help="screen as a prompt (input) or as a model answer (output)",
    )
    parser.add_argument("--tier", default=None, help="risk tier (default: the policy's default_tier)")
    parser.add_argument("--jsonl", default=None, metavar="FILE", help='JSONL rows {"text": ...}; "-" for stdin')
    parser.add_argument("--batch-size", type=int, default=16, help="rows screened per detector call")
    parser.add_argument("--threads", type=int, default=1, help="detector executor threads")
    parser.add_argument(
        "--fail-on", choices=[a.value for a in Action if a is not Action.ALLOW], default=None,
        help="exit 3 when any text's action is this strong or stronger (in shadow mode: would have been)",
    )


class FailGate:
    """Remembers whether any decision reached `--fail-on`, so `guard scan` can gate a CI step."""

    def __init__(self, threshold: Action | None) -> None:
        self.threshold = threshold
        self.tripped = False

    def see(self, decision: Decision) -> None:
        if self.threshold is None:
            return
        taken = max(
            (a for a in (decision.action, decision.would_have_been) if a is not None), key=lambda a: a.strength
        )
        if taken.strength >= self.threshold.strength:
            self.tripped = True

    def status(self, status: int) -> int:
        """A bad input line (1) or a usage error outranks the gate; otherwise 3 when it tripped."""
        return EXIT_FAILED_GATE if status == EXIT_OK and self.tripped else status


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.policy or default_policy_path())
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    tier = args.tier or policy.default_tier
    if tier not in policy.tiers:
        print(f"error: --tier {tier!r} is not one of the policy's tiers: {', '.join(policy.tiers)}", file=sys.stderr)
        return EXIT_USAGE
    if args.batch_size < 1 or args.threads < 1:
        print("error: --batch-size and --threads must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_scan(args, policy, tier, Direction(args.direction)))
    except GuardError as exc:  # a detector that cannot load: the message names it, holds no text
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: cannot read {args.jsonl}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return EXIT_USAGE


class _Scanner:
    """The policy's detectors, loaded, with a screener: screens one batch of texts into decisions."""

    def __init__(self, policy: PolicyFile, tier: str, direction: Direction, threads: int) -> None:
        self.policy = policy
        self.tier = tier
        self.direction = direction
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="guard-scan")
        self.metrics = GuardMetrics(CollectorRegistry(), "scan")
        self.screener = Screener(ScreeningCache(_CACHE_ENTRIES), self.metrics)
        wanted = set(policy.tiers[tier].table(direction))
        self.detectors: list[Detector] = [
            build_detector(config) for config in policy.detectors if config.categories() & wanted
        ]

    async def load(self) -> None:
        resources = DetectorResources(self.executor, torch_threads=1)
        for detector in self.detectors:
            await detector.load(resources)

    async def decide_batch(self, texts: Sequence[str]) -> list[Decision]:
        ctx = ScanContext(direction=self.direction, tier=self.tier)
        # The policy's budget is per message; a batch of them gets one budget each.
        budget = self.policy.limits.detector_budget_s * max(len(texts), 1)
        result = await self.screener.screen(texts, self.detectors, ctx, budget)
        return [
            decide(self.policy, ScanResult(findings=(findings,), failures=result.failures), self.direction, self.tier)
            for findings in result.findings
        ]

    async def aclose(self) -> None:
        for detector in self.detectors:
            await detector.aclose()
        self.executor.shutdown(wait=True)


def render(decision: Decision, text: str) -> dict[str, Any]:
    """The JSON shape of one decision (findings by offsets; `redacted` only when the action is redact)."""
    out: dict[str, Any] = {
        "action": decision.action.value,
        "verdict": decision.verdict.value,
        "tier": decision.tier,
        "policy_version": decision.policy_version,
        "categories": [c.value for c in decision.categories],
        "would_have_been": decision.would_have_been.value if decision.would_have_been else None,
        "failures": [{"detector": f.detector, "reason": f.reason.value} for f in decision.failures],
        "findings": [
            {
                "category": f.category.value,
                "detector": f.detector,
                "score": round(f.score, 4),
                "start": f.span.start if f.span else None,
                "end": f.span.end if f.span else None,
                "entity_type": f.span.entity_type if f.span else None,
                "label": f.label,
            }
            for f in decision.findings
        ],
    }
    if decision.action is Action.REDACT:
        out["redacted"] = redact(text, spans_to_redact(decision, 0))
    return out


def _rows(stream: TextIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) for each non-blank line; the row is an error message when it is unusable."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            yield number, 'expected a JSON object with a string "text"'
            continue
        yield number, row


async def _scan(args: argparse.Namespace, policy: PolicyFile, tier: str, direction: Direction) -> int:
    scanner = _Scanner(policy, tier, direction, args.threads)
    gate = FailGate(Action(args.fail_on) if args.fail_on else None)
    try:
        await scanner.load()
        if args.jsonl is None:
            text = sys.stdin.read()
            decision = (await scanner.decide_batch([text]))[0]
            gate.see(decision)
            print(json.dumps(render(decision, text), allow_nan=False))
            return gate.status(EXIT_OK)
        if args.jsonl == "-":
            return gate.status(await _scan_rows(scanner, sys.stdin, args.batch_size, gate))
        with open(args.jsonl, encoding="utf-8") as stream:
            return gate.status(await _scan_rows(scanner, stream, args.batch_size, gate))
    finally:
        await scanner.aclose()


async def _scan_rows(scanner: _Scanner, stream: TextIO, batch_size: int, gate: FailGate) -> int:
    status = EXIT_OK
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        decisions = await scanner.decide_batch([row["text"] for row in batch])
        for row, decision in zip(batch, decisions, strict=True):
            gate.see(decision)
            extra = {k: v for k, v in row.items() if k != "text"}
            sys.stdout.write(json.dumps({**extra, **render(decision, row["text"])}, allow_nan=False) + "\n")
        sys.stdout.flush()
        batch.clear()

    try:
        for number, row in _rows(stream):
            if isinstance(row, str):
                print(f"error: line {number}: {row}", file=sys.stderr)
                status = EXIT_BAD_INPUT
                continue
            batch.append(row)
            if len(batch) >= batch_size:
                await flush()
    except UnicodeDecodeError:
        print("error: the input is not valid UTF-8", file=sys.stderr)
        status = EXIT_BAD_INPUT
    if batch:
        await flush()
    return status
