"""Added time to first token for streamed chat completions, Responses and Anthropic Messages.

The same streamed answer (a ~250-character reply in 50 SSE deltas, different on every request so the
screening cache never answers) is asked for directly from the fake upstream (the baseline, measured in
the same run) and through `guard serve --policy policies/default.yaml` (the shipped default: presidio,
secrets rules, classifier heads, claims). Requests go one at a time over loopback with httpx; time to
first token is from sending the request to the first event that carries model text reaching the
client. Warm-up requests are excluded.

    .venv/bin/python benchmarks/bench_streams.py            # writes benchmarks/results/bench_streams.md
    .venv/bin/python benchmarks/bench_streams.py --quick    # fewer requests

The fakes are the test suite's real loopback servers (tests/fakes/upstream.py, upstream_apis.py).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.guard_process import GuardProcess  # noqa: E402
from tests.fakes.upstream import FakeUpstream  # noqa: E402
from tests.fakes.upstream_apis import ApiUpstream  # noqa: E402

REPLY = (
    "Approach two fits best: it reuses the existing queue, needs no new service, and the team can ship it "
    "incrementally behind a flag. Approach one is cleaner but adds an operational dependency; approach "
    "three is fastest to prototype but hard to test."
)
CHUNKS = 50

# surface -> (path, request body, marker of the first text-bearing SSE line)
SURFACES: dict[str, tuple[str, dict[str, Any], Callable[[str], bool]]] = {
    "chat": ("/v1/chat/completions",
             {"model": "m", "stream": True, "messages": [{"role": "user", "content": "Compare the approaches."}]},
             lambda line: line.startswith("data:") and '"content":"' in line.replace(" ", "")
             and '"content":""' not in line.replace(" ", "")),
    "responses": ("/v1/responses", {"model": "m", "stream": True, "input": "Compare the approaches."},
                  lambda line: line.startswith("data:") and "response.output_text.delta" in line),
    "messages": ("/v1/messages",
                 {"model": "m", "stream": True, "max_tokens": 256,
                  "messages": [{"role": "user", "content": "Compare the approaches."}]},
                 lambda line: line.startswith("data:") and "text_delta" in line),
}


def ttft_ms(client: httpx.Client, url: str, body: dict[str, Any], first: Callable[[str], bool]) -> float:
    started = time.perf_counter()
    seen: float | None = None
    with client.stream("POST", url, json=body, headers={"x-api-key": "k", "authorization": "Bearer k"}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if seen is None and first(line):
                seen = time.perf_counter()
    if seen is None:
        raise RuntimeError(f"no text event from {url}")
    return (seen - started) * 1000


def measure(client: httpx.Client, base: str, surface: str) -> float:
    path, body, first = SURFACES[surface]
    return ttft_ms(client, base + path, body, first)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_streams.md")
    args = parser.parse_args()
    n, warmup = (15, 3) if args.quick else (40, 5)
    answers = itertools.count(1)
    with FakeUpstream() as chat_up, ApiUpstream() as api_up, tempfile.TemporaryDirectory() as tmp:
        upstreams = {"chat": chat_up.url, "responses": api_up.url, "messages": api_up.url}
        load = os.getloadavg()[0]
        policy = REPO / "policies/default.yaml"
        # Both guards stay up; rounds go surface by surface, direct then guarded, so load from other work
        # on the machine falls on every row alike.
        with GuardProcess(chat_up.url, policy, Path(tmp)) as chat_guard, \
                GuardProcess(api_up.url, policy, Path(tmp)) as api_guard, httpx.Client(timeout=60) as client:
            guards = {"chat": chat_guard.url, "responses": api_guard.url, "messages": api_guard.url}
            times: dict[str, tuple[list[float], list[float]]] = {surface: ([], []) for surface in SURFACES}
            for round_number in range(warmup + n):
                for surface in SURFACES:
                    for target, samples in ((upstreams, times[surface][0]), (guards, times[surface][1])):
                        k = next(answers)
                        # Every answer differs, so the guard's screening cache never answers for its detectors.
                        chat_up.script(reply=f"Answer {k} {surface}. {REPLY}", chunks=CHUNKS)
                        api_up.script(text=f"Answer {k} {surface}. {REPLY}", chunks=CHUNKS)
                        value = measure(client, target[surface], surface)
                        if round_number >= warmup:
                            samples.append(value)
            rows = [(surface, direct, guarded) for surface, (direct, guarded) in times.items()]
    lines = [
        "# bench_streams results",
        "",
        f"Hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, 1-min load average at start {load:.1f} (machine shared with other work).",
        f"Each row: {n} sequential streamed requests after {warmup} warm-up; reply of {len(REPLY) + 10} characters "
        f"in {CHUNKS} deltas, unique per request; guard = `guard serve --policy policies/default.yaml`.",
        "",
        "| surface | direct TTFT p50 ms | guard TTFT p50 ms | guard p95 ms | added p50 ms | ×direct p50 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for surface, direct, guarded in rows:
        d50, g50 = statistics.median(direct), statistics.median(guarded)
        lines.append(
            f"| {surface} | {d50:.2f} | {g50:.2f} | {pct(guarded, 0.95):.2f} | {g50 - d50:+.2f} | {g50 / d50:.1f} |"
        )
    lines += [
        "",
        "Added TTFT is the hold-back window (96 characters in the default policy's limited tier) filling from "
        "the upstream plus one screening pass over it; it is a per-request cost, not a per-delta one.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
