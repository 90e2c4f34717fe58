"""Micro-benchmark of the codec hot path: extract + rewrite of a ~4 KB chat request, against
`json.loads` + `json.dumps` of the same body as the baseline, plus SSE stream reading.

Plain script: `.venv/bin/python benchmarks/bench_codecs.py [--seconds 1.0]`. Prints µs per operation
(best and median of repeated timed batches, warm-up excluded; on a shared machine
compare the best figures) and the hardware it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass

from guard.codecs.base import BodyLimits, TextEdit
from guard.codecs.openai_chat import OpenAIChatCodec
from guard.codecs.jsonscan import parse_json
from guard.types import Direction


def chat_body(target_bytes: int = 4096) -> bytes:
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are a careful assistant. Answer briefly and cite sources."}
    ]
    turn = 0
    while len(json.dumps({"model": "gpt-x", "messages": messages})) < target_bytes - 200:
        messages.append(
            {
                "role": "user",
                "content": [{"type": "text", "text": f"Turn {turn}: my card is 4111 1111 1111 1111, caf\u00e9 \"ok\"?\n"
                             "Please summarise the attached notes about the meeting on Tuesday."}],
            }
        )
        messages.append({"role": "assistant", "content": f"Summary {turn}: the team agreed on the plan \u2014 ship it."})
        turn += 1
    return json.dumps({"model": "gpt-x", "messages": messages, "stream": True, "temperature": 0.2}, indent=1).encode()


def stream_body(events: int = 200) -> bytes:
    out = []
    for i in range(events):
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": f" token{i}"}, "finish_reason": None}]}
        out.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    return b"".join(out) + b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Timing:
    best_us: float  # the least disturbed batch: the figure to compare
    median_us: float  # how noisy the machine was


def per_op_us(fn: Callable[[], object], seconds: float) -> Timing:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # also the warm-up
    repeats = max(5, int(seconds / max(timer.timeit(number), 1e-9)))
    runs = [run / number * 1e6 for run in timer.repeat(repeat=min(repeats, 50), number=number)]
    return Timing(min(runs), statistics.median(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    codec = OpenAIChatCodec(BodyLimits(max_body_bytes=1 << 20, max_json_depth=64))
    body = chat_body()
    extraction = codec.extract(body, Direction.INPUT)
    slot = extraction.slots[1]
    start = slot.text.index("4111")
    edit = {slot.index: [TextEdit(start, start + 19, "<CREDIT_CARD>")]}

    def extract_rewrite() -> bytes:
        found = codec.extract(body, Direction.INPUT)
        return codec.rewrite(body, found, edit)

    def baseline() -> bytes:
        return json.dumps(json.loads(body)).encode()

    stream = stream_body()

    def read_stream() -> int:
        reader = codec.stream_reader()
        return len(reader.feed(stream)) + len(reader.finish())

    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()} ({platform.python_implementation()})")
    print(f"chat body: {len(body)} bytes, {len(extraction.slots)} texts")
    results = {
        "parse_json": per_op_us(lambda: parse_json(body, 64), args.seconds),
        "extract": per_op_us(lambda: codec.extract(body, Direction.INPUT), args.seconds),
        "extract+rewrite": per_op_us(extract_rewrite, args.seconds),
        "json.loads+json.dumps (baseline)": per_op_us(baseline, args.seconds),
        "json.loads alone": per_op_us(lambda: json.loads(body), args.seconds),
    }
    print(f"{'operation':34s} {'best':>9s} {'median':>9s}  (µs/op)")
    for name, timing in results.items():
        print(f"{name:34s} {timing.best_us:9.1f} {timing.median_us:9.1f}")
    ratio = results["extract+rewrite"].best_us / results["json.loads+json.dumps (baseline)"].best_us
    print(f"extract+rewrite / baseline (best)  {ratio:9.2f}x")
    events = stream.count(b"data:")
    stream_timing = per_op_us(read_stream, args.seconds)
    print(f"SSE read, {events} events ({len(stream)} bytes): best {stream_timing.best_us:.0f} µs "
          f"= {stream_timing.best_us / events:.2f} µs/event (median {stream_timing.median_us / events:.2f})")


if __name__ == "__main__":
    main()
