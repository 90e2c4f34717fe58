"""Bounded soak: a fixed number of requests at fixed concurrency through a real `guard serve` on loopback.

    .venv/bin/python benchmarks/soak.py                              # long form: 20,000 requests
    .venv/bin/python benchmarks/soak.py --requests 2000 --json out.json   # the CI short form

A real loopback upstream (`tests.fakes.faults.FaultServer`, OpenAI-shaped, echoing) counts every request
it reads by the id the client sent in an `x-soak-id` header (not in the prompt, where redaction may
rewrite it). The client sends each id once, a mix of
plain, personal-data (redacted on the way) and streamed requests, and records every answer. After a
warm-up, the guard's resident memory (VmRSS from /proc) and open file descriptors (/proc/<pid>/fd) are
sampled; the result says how many requests failed, how many ids reached the upstream other than exactly
once, how much RSS grew after warm-up and how the fd count moved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakes.faults import Behaviour, FaultServer, Mode  # noqa: E402
from tests.fakes.guard_process import GuardProcess  # noqa: E402

# aiohttp closes idle pooled connections after 15 s; a leak is what is still open after that.
FD_SETTLE_S = 25.0
FD_SLACK = 4
_ID = re.compile(r"^soak-(\d+)-(\d+)$")


@dataclass(frozen=True, slots=True)
class SoakResult:
    requests: int
    concurrency: int
    warmup: int
    seconds: float
    errors: int
    status_counts: dict[str, int]
    upstream_ids: int  # distinct ids the upstream saw from the measured run
    lost: int  # ids the client sent that never reached the upstream
    lost_sample: list[int]  # the first few lost ids, to look into
    duplicated: int  # ids that reached the upstream more than once
    unexpected: int  # ids at the upstream the client never sent
    rss_after_warmup_bytes: int
    rss_end_bytes: int
    rss_peak_bytes: int
    rss_growth_pct: float
    fds_idle: int  # before the first request: no client or upstream connection open
    fds_after_warmup: int
    fds_end: int  # right after the measured run (pooled upstream connections still open)
    fds_max: int
    fds_settled: int  # once idle pooled connections have timed out (at most FD_SETTLE_S later)
    machine: str


def _payload(run: int, n: int) -> tuple[dict[str, object], str]:
    kind = ("plain", "pii", "stream", "plain")[n % 4]
    tag = f"soak-{run}-{n}"
    if kind == "pii":
        text = f"{tag} please write to jane.doe{n}@example.com about the invoice"
    else:
        text = f"{tag} summarise the quarterly report in three bullet points"
    body: dict[str, object] = {"model": "fake", "messages": [{"role": "user", "content": text}]}
    if kind == "stream":
        body["stream"] = True
    return body, kind


async def _one(client: httpx.AsyncClient, url: str, run: int, n: int) -> str:
    body, kind = _payload(run, n)
    headers = {"x-soak-id": f"soak-{run}-{n}"}
    try:
        if kind == "stream":
            async with client.stream("POST", url, json=body, headers=headers) as response:
                data = b"".join([chunk async for chunk in response.aiter_raw()])
                if response.status_code != 200 or not data.rstrip().endswith(b"data: [DONE]"):
                    return f"bad-stream-{response.status_code}"
                return "200"
        response = await client.post(url, json=body, headers=headers)
        if response.status_code != 200:
            return str(response.status_code)
        json.loads(response.content)
        return "200"
    except (httpx.HTTPError, ValueError) as exc:
        return type(exc).__name__


async def _drive(url: str, run: int, count: int, concurrency: int, sample: "Sampler") -> Counter[str]:
    statuses: Counter[str] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(60.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def worker() -> None:
            while True:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                statuses[await _one(client, url, run, n)] += 1
                if n % 100 == 0:
                    sample.take()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


class Sampler:
    def __init__(self, guard: GuardProcess) -> None:
        self._guard = guard
        self.rss: list[int] = []
        self.fds: list[int] = []

    def take(self) -> None:
        self.rss.append(self._guard.rss_bytes())
        self.fds.append(self._guard.fd_count())


def run_soak(
    requests: int, concurrency: int, warmup: int, policy: Path | None, workdir: Path
) -> SoakResult:
    route = "/v1/chat/completions"
    with FaultServer(Behaviour(Mode.OK)) as upstream, GuardProcess(upstream.url, policy, workdir) as guard:
        sampler = Sampler(guard)
        fds_idle = guard.fd_count()
        asyncio.run(_drive(guard.url + route, 0, warmup, concurrency, sampler))
        sampler.rss.clear()
        sampler.fds.clear()
        sampler.take()
        rss_after_warmup, fds_after_warmup = sampler.rss[0], sampler.fds[0]
        started = time.perf_counter()
        statuses = asyncio.run(_drive(guard.url + route, 1, requests, concurrency, sampler))
        seconds = time.perf_counter() - started
        sampler.take()
        fds_end = sampler.fds[-1]
        settle_until = time.monotonic() + FD_SETTLE_S
        fds_settled = guard.fd_count()
        while fds_settled > fds_idle + FD_SLACK and time.monotonic() < settle_until:
            time.sleep(0.5)
            fds_settled = guard.fd_count()
        seen: Counter[int] = Counter()
        for request in upstream.recorded():
            match = _ID.match(request.header("x-soak-id") or "")
            if match and match.group(1) == "1":
                seen[int(match.group(2))] += 1
    sent = set(range(requests))
    errors = sum(v for k, v in statuses.items() if k != "200")
    return SoakResult(
        requests=requests,
        concurrency=concurrency,
        warmup=warmup,
        seconds=round(seconds, 2),
        errors=errors,
        status_counts=dict(statuses),
        upstream_ids=len(seen),
        lost=len(sent - set(seen)),
        lost_sample=sorted(sent - set(seen))[:10],
        duplicated=sum(1 for v in seen.values() if v > 1),
        unexpected=len(set(seen) - sent),
        rss_after_warmup_bytes=rss_after_warmup,
        rss_end_bytes=sampler.rss[-1],
        rss_peak_bytes=max(sampler.rss),
        rss_growth_pct=round(100.0 * (sampler.rss[-1] - rss_after_warmup) / rss_after_warmup, 2),
        fds_idle=fds_idle,
        fds_after_warmup=fds_after_warmup,
        fds_end=fds_end,
        fds_max=max(sampler.fds),
        fds_settled=fds_settled,
        machine=f"{platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}".strip(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--policy", type=Path, default=REPO / "policies" / "default.yaml")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        result = run_soak(args.requests, args.concurrency, args.warmup, args.policy, Path(workdir))
    text = json.dumps(asdict(result), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    ok = result.errors == 0 and result.lost == 0 and result.duplicated == 0 and result.unexpected == 0
    flat = result.fds_settled <= result.fds_idle + FD_SLACK
    return 0 if ok and flat and result.rss_growth_pct < 10.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
