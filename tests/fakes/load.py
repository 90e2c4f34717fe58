"""A bounded load driver for the overload battery: N distinct benign chat requests at C concurrent through
a real guard, every answer classified (200, shed with Retry-After, policy refusal, anything else).

    result = asyncio.run(drive(guard.url, requests=400, concurrency=256))
    result.counts["content_filter"] == 0

Prompts are distinct (so the screening cache never answers for a detector) and benign by construction:
short office requests built from fixed word lists, with no personal data, secrets or instructions to the
model about itself. Each request is sent once, never retried, so every answer the guard gave is counted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

_TASKS = ("Summarise", "Explain", "List three facts about", "Write a short paragraph on", "Give two examples of")
_TOPICS = (
    "photosynthesis", "the water cycle", "compound interest", "supply chains", "volcanoes", "the printing press",
    "spreadsheet formulas", "bird migration", "tidal energy", "the history of maps", "bread baking",
    "solar panels", "coral reefs", "project planning", "renewable heating", "ancient Rome", "jazz music",
    "railway signalling", "cloud formation", "chess openings",
)
_ANGLES = ("for a beginner", "in plain words", "for a school report", "with one analogy", "in under fifty words")


def benign_prompt(n: int) -> str:
    """The n-th distinct benign prompt (distinct for every n; the number keeps the cache out of it)."""
    task = _TASKS[n % len(_TASKS)]
    topic = _TOPICS[(n // len(_TASKS)) % len(_TOPICS)]
    angle = _ANGLES[(n // (len(_TASKS) * len(_TOPICS))) % len(_ANGLES)]
    return f"{task} {topic} {angle}, variant {n}."


@dataclass
class LoadResult:
    counts: Counter[str] = field(default_factory=Counter)  # "200", "shed", "content_filter", "other:<status>"
    latencies_s: list[float] = field(default_factory=list)  # of the 200 answers
    shed_without_retry_after: int = 0
    shed_statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return 0.0
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def classify(status: int, body: bytes, headers: httpx.Headers) -> str:
    if status == 200:
        return "200"
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code") if isinstance(error, dict) else None
    if code == "content_filter":
        return "content_filter"
    if status in (429, 503):
        return "shed"
    return f"other:{status}:{code}"


async def drive(
    base_url: str, requests: int, concurrency: int, offset: int = 0, timeout_s: float = 60.0, keepalive: bool = True
) -> LoadResult:
    """Send `requests` distinct prompts (numbered from `offset`) with `concurrency` at once. Without
    `keepalive` every request opens its own connection."""
    result = LoadResult()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(offset, offset + requests):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency if keepalive else 0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout_s) as client:

        async def worker() -> None:
            while True:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                body = {"model": "fake", "messages": [{"role": "user", "content": benign_prompt(n)}]}
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/chat/completions", json=body)
                except httpx.HTTPError as exc:
                    result.counts[f"error:{type(exc).__name__}"] += 1
                    continue
                kind = classify(response.status_code, response.content, response.headers)
                result.counts[kind] += 1
                if kind == "200":
                    result.latencies_s.append(time.perf_counter() - started)
                elif kind == "shed":
                    result.shed_statuses[response.status_code] += 1
                    if not response.headers.get("retry-after", "").isdigit():
                        result.shed_without_retry_after += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result
