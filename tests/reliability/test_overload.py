"""Overload is shed, never disguised as a verdict; one large prompt slows only itself (issues 9 and 15).

A real `guard serve` with the shipped default policy (presidio with spaCy, secrets rules, the classifier
heads, claims) in front of a real loopback upstream (`tests/fakes/faults.py`, echoing). Before admission
control, 400 benign prompts at 256 concurrent got 64 `content_filter` refusals (their detector budgets
ran out while they queued), and a 1 MB prompt kept the detectors busy long after its own budget, so
benign requests behind it were refused too. See docs/reliability.md, "Overload".
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import REPO, GuardProcess
from tests.fakes.load import benign_prompt, classify, drive

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

REQUESTS = 400
# The 32-concurrent run takes ~11 s for 400 on 2 idle cores; CI runs half of it (same concurrency, same
# pass criterion). `GUARD_OVERLOAD_FULL=1` runs all 400, as docs/reliability.md records.
REQUESTS_AT_32 = REQUESTS if os.environ.get("GUARD_OVERLOAD_FULL") == "1" else REQUESTS // 2
LARGE_PROMPT_CHARS = 1_000_000  # within the default max_body_bytes (1 MiB) with its JSON around it
SMALL_DEADLINE_S = 2.0


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProcess]:
    workdir = tmp_path_factory.mktemp("overload")
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        with GuardProcess(upstream.url, REPO / "policies" / "default.yaml", workdir) as process:
            # Warm-up: the first requests pay for lazily built parts (tokenizer caches, pools).
            asyncio.run(drive(process.url, 16, 4, offset=1_000_000))
            yield process


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_overload_is_shed_with_retry_after_never_a_verdict(guard: GuardProcess) -> None:
    timeouts_before = guard.metric("guard_detector_errors_total", reason="timeout")
    shed_before = guard.metric("guard_shed_requests_total")
    # A fresh connection per request: what is measured is the guard's answer, not a keep-alive race
    # between the client reusing a connection and the server closing it.
    result = asyncio.run(drive(guard.url, REQUESTS, 256, offset=0, keepalive=False))
    answered = result.counts["200"] + result.counts["shed"]
    assert answered == REQUESTS, dict(result.counts)
    assert result.counts["content_filter"] == 0, dict(result.counts)
    assert result.shed_without_retry_after == 0
    assert set(result.shed_statuses) <= {429, 503}
    assert result.counts["shed"] > 0, "256 at once on 2 cores should overflow the admission queue"
    assert guard.metric("guard_shed_requests_total") - shed_before == result.counts["shed"]
    # The detector budget never ran out: queueing stayed in the admission queue, outside the budget.
    assert guard.metric("guard_detector_errors_total", reason="timeout") == timeouts_before
    assert result.seconds < 60, result.seconds


def test_the_same_load_at_32_concurrent_is_all_served(guard: GuardProcess) -> None:
    result = asyncio.run(drive(guard.url, REQUESTS_AT_32, 32, offset=0))
    assert result.counts["200"] == REQUESTS_AT_32, dict(result.counts)
    assert result.seconds < 60, result.seconds


async def _large_and_small(guard: GuardProcess) -> tuple[str, float, list[tuple[str, float]]]:
    large = " ".join(benign_prompt(n) for n in range(40_000))[:LARGE_PROMPT_CHARS]
    timeout = httpx.Timeout(60.0)
    async with httpx.AsyncClient(base_url=guard.url, timeout=timeout) as client:

        async def post(text: str) -> tuple[str, float]:
            started = time.perf_counter()
            body = {"model": "fake", "messages": [{"role": "user", "content": text}]}
            response = await client.post("/v1/chat/completions", json=body)
            return classify(response.status_code, response.content, response.headers), time.perf_counter() - started

        big = asyncio.create_task(post(large))
        # The small ones start once the large one is being screened (admitted, its detectors running).
        for _ in range(200):
            if guard.metric("guard_admission_in_flight_items") >= 1:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        small = await asyncio.gather(*(post(benign_prompt(500_000 + n)) for n in range(8)))
        big_kind, big_seconds = await big
    return big_kind, big_seconds, list(small)


def test_one_large_prompt_slows_only_itself(guard: GuardProcess) -> None:
    big_kind, big_seconds, small = asyncio.run(_large_and_small(guard))
    assert [kind for kind, _ in small] == ["200"] * 8, small
    assert max(seconds for _, seconds in small) < SMALL_DEADLINE_S, small
    # The large prompt gets its own answer within its budget (5 s) and some slack: screened, or refused
    # by the policy's on_detector_error when its detectors could not finish in time.
    assert big_kind in ("200", "content_filter"), big_kind
    assert big_seconds < 15, big_seconds
    # Its detector work stopped with its budget: the guard is idle again, not still burning CPU.
    before = _cpu_seconds(guard.pid)
    time.sleep(2.0)
    assert _cpu_seconds(guard.pid) - before < 0.5
