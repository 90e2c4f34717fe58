"""Measures what the Kubernetes resource requests and limits in deploy/kubernetes/base are based on.

    .venv/bin/python deploy/measure_resources.py [--policy policies/default.yaml] [--seconds 15] [--concurrency 8]

Starts `guard serve --demo` (the in-process echo model, so the upstream costs next to nothing), warms it up,
then reads its resident memory (VmRSS, VmHWM) from /proc and its CPU time (utime + stime) over a loopback
load of OpenAI-shaped chat requests with personal data to redact. Prints one JSON object. The demo upstream
runs in the same process, so the CPU figure is an upper bound for the guard alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
PROMPTS = (
    "Please email the contract to jane.doe@example.com and call me on 212-555-0187 tomorrow.",
    "Summarise this: the quarterly numbers look fine, nothing unusual in the logs.",
    "My card is 4111 1111 1111 1111, can you check why it was declined?",
    "Write a haiku about autumn leaves and a quiet river.",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(url: str, seconds: float, concurrency: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def worker(i: int) -> None:
            n = i
            while time.monotonic() < deadline:
                body = {"model": "m", "messages": [{"role": "user", "content": f"{PROMPTS[n % len(PROMPTS)]} #{n}"}]}
                started = time.perf_counter()
                response = await client.post(url + "/v1/chat/completions", json=body)
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
                n += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return len(latencies), latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=REPO / "policies" / "default.yaml")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    port, admin = free_port(), free_port()
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "guard", "serve", "--demo", "--port", str(port), "--admin-port", str(admin),
         "--policy", str(args.policy), "--log-level", "warning"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        started = time.monotonic()
        while not _ready(admin):
            if proc.poll() is not None or time.monotonic() - started > 180:
                raise SystemExit("guard did not become ready")
            time.sleep(0.2)
        ready_s = time.monotonic() - started
        after_start = proc_status(proc.pid)
        asyncio.run(load(f"http://127.0.0.1:{port}", 3.0, 2))  # warm-up: caches, first inference
        warm = proc_status(proc.pid)
        cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
        count, latencies = asyncio.run(load(f"http://127.0.0.1:{port}", args.seconds, args.concurrency))
        cpu1, wall1 = cpu_seconds(proc.pid), time.monotonic()
        loaded = proc_status(proc.pid)
        latencies.sort()
        print(json.dumps({
            "policy": str(args.policy.relative_to(REPO) if args.policy.is_relative_to(REPO) else args.policy),
            "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
            "ready_s": round(ready_s, 1),
            "rss_after_start_mib": round(after_start["VmRSS"] / 2**20, 1),
            "rss_warm_mib": round(warm["VmRSS"] / 2**20, 1),
            "rss_after_load_mib": round(loaded["VmRSS"] / 2**20, 1),
            "rss_peak_mib": round(loaded["VmHWM"] / 2**20, 1),
            "requests": count,
            "rps": round(count / (wall1 - wall0), 1),
            "cpu_cores_used": round((cpu1 - cpu0) / (wall1 - wall0), 2),
            "cpu_ms_per_request": round(1000 * (cpu1 - cpu0) / max(count, 1), 1),
            "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "latency_p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)], 1),
        }, indent=2))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
    return 0


def _ready(admin: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{admin}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
