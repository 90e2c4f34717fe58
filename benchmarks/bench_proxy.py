"""Proxy overhead benchmark: the same load against four targets, each in its own process on loopback.

    (a) direct       the fake upstream itself
    (b) bare         a bare starlette + aiohttp reverse proxy (written here): the baseline
    (c) passthrough  `guard serve --policy policies/passthrough.yaml` (no detectors)
    (d) default      `guard serve --policy policies/default.yaml` (presidio PII, secrets rules, classifier
                     heads and the claims detector: the shipped default)

Modes: a non-streamed chat completion, and a streamed one of 50 SSE chunks; at 1 and 32 concurrent
requests. The load generator is a separate process (aiohttp client, fixed request count, warm-up excluded).
Every server runs on uvloop + httptools when installed, the same for the baseline and the guard.

    .venv/bin/python benchmarks/bench_proxy.py                   # writes benchmarks/results/bench_proxy.md
    .venv/bin/python benchmarks/bench_proxy.py --quick           # fewer requests

Targets the issue set (same run): passthrough req/s ≥ 0.8 × bare at concurrency 32, and ≤ 1 ms added p50
at concurrency 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHAT = "/v1/chat/completions"
PROMPT = (
    "Summarise the main differences between the three approaches described in the attached design note, "
    "and recommend one for a team of four engineers shipping in two weeks. Keep it under 200 words."
)
REPLY = (
    "Approach two fits best: it reuses the existing queue, needs no new service, and the team can ship it "
    "incrementally behind a flag. Approach one is cleaner but adds an operational dependency; approach "
    "three is fastest to prototype but hard to test."
)
CHUNKS = 50
ROUNDS = 3


# --- the fake upstream -------------------------------------------------------------------------------
def _upstream_app() -> object:
    counter = [0]

    def whole(n: int) -> bytes:
        return json.dumps(
            {
                "id": "cmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "bench",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"Answer {n}. {REPLY}"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 40, "completion_tokens": 50, "total_tokens": 90},
            }
        ).encode()

    def first_event(n: int) -> bytes:
        return b"data: " + json.dumps(
            {**base, "choices": [{"index": 0, "delta": {"content": f"Answer {n}. "}, "finish_reason": None}]}
        ).encode() + b"\n\n"

    size = -(-len(REPLY) // CHUNKS)
    pieces = [REPLY[i : i + size] for i in range(0, len(REPLY), size)]
    base = {"id": "cmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "bench"}
    events = [
        b"data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}).encode()
        + b"\n\n"
        for p in pieces
    ]
    events.append(
        b"data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).encode()
        + b"\n\n"
    )
    events.append(b"data: [DONE]\n\n")

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        counter[0] += 1
        # Every answer differs (its number): the guard's screening cache never answers for its detectors.
        if b'"stream": true' in body or b'"stream":true' in body:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            await send({"type": "http.response.body", "body": first_event(counter[0]), "more_body": True})
            for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        payload = whole(counter[0])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


# --- the baseline: a bare starlette + aiohttp proxy ---------------------------------------------------
def _bare_proxy_app(upstream: str) -> object:
    import aiohttp
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    hop = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
           "transfer-encoding", "upgrade", "host", "content-length"}
    state: dict[str, aiohttp.ClientSession] = {}

    async def proxy(request: Request) -> Response:
        session = state.get("s")
        if session is None:
            session = state["s"] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=120),
            )
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k not in hop}
        resp = await session.request(request.method, upstream + request.url.path, headers=headers, data=body)
        out = {k: v for k, v in resp.headers.items() if k.lower() not in hop}
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            async def relay() -> AsyncIterator[bytes]:
                try:
                    async for chunk in resp.content.iter_any():
                        yield chunk
                finally:
                    resp.release()
            return StreamingResponse(relay(), status_code=resp.status, headers=out)
        data = await resp.read()
        resp.release()
        return Response(data, status_code=resp.status, headers=out)

    return Starlette(routes=[Route("/{path:path}", proxy, methods=["GET", "POST"])])


def _serve(app: object, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, http=_http(), loop=_loop(), log_level="warning",
                access_log=False, lifespan="off")


def _http() -> str:
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def _loop() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


# --- the load generator --------------------------------------------------------------------------------
async def _load(url: str, stream: bool, concurrency: int, requests: int, warmup: int) -> dict[str, object]:
    import aiohttp

    def payload_for(n: int) -> bytes:
        # A different prompt each time (its number), as real traffic is: no screening-cache hits.
        return json.dumps(
            {"model": "bench", "stream": stream, "messages": [{"role": "user", "content": f"{PROMPT} Ticket {n}."}]}
        ).encode()

    sequence = [0]
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    ttfts: list[float] = []
    errors = 0
    counter = 0

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(record: bool) -> None:
            nonlocal errors
            started = time.perf_counter()
            first: float | None = None
            sequence[0] += 1
            async with session.post(url + CHAT, data=payload_for(sequence[0]), headers=headers) as resp:
                if stream:
                    async for chunk in resp.content.iter_any():
                        if first is None and b'"content"' in chunk:
                            first = time.perf_counter()
                else:
                    await resp.read()
                ok = resp.status == 200
            done = time.perf_counter()
            if not ok:
                errors += 1
            if record:
                latencies.append(done - started)
                if first is not None:
                    ttfts.append(first - started)

        async def worker(total: int, record: bool) -> None:
            nonlocal counter
            while counter < total:
                counter += 1
                await one(record)

        counter = 0
        await asyncio.gather(*(worker(warmup, False) for _ in range(min(concurrency, warmup))))
        counter = 0
        began = time.perf_counter()
        await asyncio.gather(*(worker(requests, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"errors": errors, "elapsed": elapsed, "latencies": latencies, "ttfts": ttfts}


def _summary(runs: list[dict[str, object]], stream: bool) -> dict[str, object]:
    """Rounds merged: req/s over the summed time, percentiles over all samples."""
    latencies = sorted(x for r in runs for x in r["latencies"])  # type: ignore[attr-defined]
    ttfts = sorted(x for r in runs for x in r["ttfts"])  # type: ignore[attr-defined]
    elapsed = sum(float(r["elapsed"]) for r in runs)  # type: ignore[arg-type]
    cpu_us = 1e6 * sum(float(r["cpu_s"]) for r in runs) / sum(int(r["cpu_requests"]) for r in runs)  # type: ignore[arg-type, call-overload]

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")

    return {
        "requests": len(latencies), "errors": sum(int(r["errors"]) for r in runs),  # type: ignore[call-overload]
        "rps": len(latencies) / elapsed, "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99),
        "ttft_p50_ms": pct(ttfts, 0.5) if stream else None,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "cpu_us_per_request": cpu_us,
    }


# --- orchestration ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, timeout_s: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc), to compare servers on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_load(url: str, stream: bool, concurrency: int, requests: int, warmup: int, pid: int) -> dict[str, object]:
    cpu_before = _cpu_seconds(pid)
    out = subprocess.run(  # noqa: S603 - this script, fixed arguments
        [sys.executable, __file__, "--role", "load", "--url", url, "--concurrency", str(concurrency),
         "--requests", str(requests), "--warmup", str(warmup), *(["--stream"] if stream else [])],
        check=True, capture_output=True, cwd=REPO,
    )
    result: dict[str, object] = json.loads(out.stdout)
    # Warm-up requests are included in this CPU time; they are few and the same for every target.
    result["cpu_s"] = _cpu_seconds(pid) - cpu_before
    result["cpu_requests"] = len(result["latencies"]) + min(warmup, requests)  # type: ignore[arg-type]
    return result


def _hardware() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, http={_http()}, loop={_loop()}, "
            f"1-min load average at start {load:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["bench", "upstream", "bare", "load"], default="bench")
    parser.add_argument("--port", type=int)
    parser.add_argument("--upstream")
    parser.add_argument("--url")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a quarter of the requests")
    parser.add_argument("--targets", default="direct,bare,passthrough,default")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_proxy.md")
    args = parser.parse_args()

    if args.role == "upstream":
        _serve(_upstream_app(), args.port)
        return 0
    if args.role == "bare":
        _serve(_bare_proxy_app(args.upstream), args.port)
        return 0
    if args.role == "load":
        if _loop() == "uvloop":
            import uvloop

            uvloop.install()
        print(json.dumps(asyncio.run(_load(args.url, args.stream, args.concurrency, args.requests, args.warmup))))
        return 0
    return _bench(args)


def _bench(args: argparse.Namespace) -> int:
    scale = 0.25 if args.quick else 1.0
    hardware = _hardware()
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    pids: dict[str, int] = {}  # the server process whose CPU time each target's row reports
    try:
        up_port = _free_port()
        procs.append(_spawn([sys.executable, __file__, "--role", "upstream", "--port", str(up_port)]))
        upstream = f"http://127.0.0.1:{up_port}"
        _wait(upstream + "/ping")
        targets = args.targets.split(",")
        if "direct" in targets:
            urls["direct"] = upstream
            pids["direct"] = procs[0].pid
        if "bare" in targets:
            port = _free_port()
            procs.append(_spawn([sys.executable, __file__, "--role", "bare", "--port", str(port), "--upstream", upstream]))
            urls["bare"] = f"http://127.0.0.1:{port}"
            pids["bare"] = procs[-1].pid
            _wait(urls["bare"] + "/ping")
        for name, policy in (("passthrough", "policies/passthrough.yaml"), ("default", "policies/default.yaml")):
            if name not in targets:
                continue
            port, admin = _free_port(), _free_port()
            procs.append(_spawn([sys.executable, "-m", "guard", "serve", "--upstream", upstream, "--policy", policy,
                                 "--port", str(port), "--admin-port", str(admin), "--log-level", "warning"]))
            _wait(f"http://127.0.0.1:{admin}/readyz")
            while __import__("httpx").get(f"http://127.0.0.1:{admin}/readyz").status_code != 200:
                time.sleep(0.1)
            urls[name] = f"http://127.0.0.1:{port}"
            pids[name] = procs[-1].pid

        rows: list[dict[str, object]] = []
        names = list(urls)
        for stream in (False, True):
            for concurrency in (1, 32):
                # Rounds in rotated order, so a burst of other load on the machine hits every target alike.
                runs: dict[str, list[dict[str, object]]] = {name: [] for name in names}
                for round_ in range(ROUNDS):
                    for name in names[round_ % len(names):] + names[: round_ % len(names)]:
                        base = 400 if concurrency == 1 else 2000
                        if stream:
                            base = 300 if concurrency == 1 else 1000
                        if name == "default":  # presidio on every prompt (and window): far slower
                            base = (30 if concurrency == 1 else 100) if stream else (60 if concurrency == 1 else 200)
                        requests = max(10, int(base * scale / ROUNDS))
                        runs[name].append(
                            _run_load(
                                urls[name], stream, concurrency, requests, min(30, max(5, requests // 4)), pids[name]
                            )
                        )
                for name in names:
                    result = _summary(runs[name], stream)
                    result.update(target=name, mode="stream-50" if stream else "json", concurrency=concurrency)
                    rows.append(result)
                    print(json.dumps(result), flush=True)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    table = _table(rows, hardware)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)
    return 0


def _table(rows: list[dict[str, object]], hardware: str) -> str:
    def find(target: str, mode: object, conc: object) -> dict[str, object] | None:
        return next((r for r in rows if r["target"] == target and r["mode"] == mode and r["concurrency"] == conc), None)

    lines = [
        "# bench_proxy results",
        "",
        f"Hardware: {hardware}.",
        "",
        "| target | mode | conc | requests | err | req/s | ×bare req/s | p50 ms | p99 ms | p50 added vs bare ms "
        "| p50 added vs direct ms | TTFT p50 ms | ×bare TTFT | server CPU µs/req | ×bare CPU |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for row in rows:
        bare = find("bare", row["mode"], row["concurrency"])
        direct = find("direct", row["mode"], row["concurrency"])
        ratio = f"{row['rps'] / bare['rps']:.2f}" if bare else "-"  # type: ignore[operator]
        added_bare = f"{row['p50_ms'] - bare['p50_ms']:+.2f}" if bare else "-"  # type: ignore[operator]
        added_direct = f"{row['p50_ms'] - direct['p50_ms']:+.2f}" if direct else "-"  # type: ignore[operator]
        ttft = f"{row['ttft_p50_ms']:.2f}" if row["ttft_p50_ms"] is not None else "-"
        ttft_ratio = (
            f"{row['ttft_p50_ms'] / bare['ttft_p50_ms']:.2f}"  # type: ignore[operator]
            if bare and row["ttft_p50_ms"] is not None and bare["ttft_p50_ms"] else "-"
        )
        cpu_ratio = (
            f"{row['cpu_us_per_request'] / bare['cpu_us_per_request']:.2f}"  # type: ignore[operator]
            if bare else "-"
        )
        lines.append(
            f"| {row['target']} | {row['mode']} | {row['concurrency']} | {row['requests']} | {row['errors']} "
            f"| {row['rps']:.0f} | {ratio} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {added_bare} "
            f"| {added_direct} | {ttft} | {ttft_ratio} | {row['cpu_us_per_request']:.0f} "
            f"| {cpu_ratio} |"
        )
        if row["target"] == "passthrough" and bare:
            if row["concurrency"] == 32:
                ok = row["rps"] >= 0.8 * bare["rps"]  # type: ignore[operator]
                verdicts.append(f"- {row['mode']}, 32 concurrent: passthrough at {ratio}× bare req/s "
                                f"(target ≥ 0.8): {'met' if ok else 'NOT met'}")
            else:
                ok = row["p50_ms"] - bare["p50_ms"] <= 1.0  # type: ignore[operator]
                verdicts.append(f"- {row['mode']}, 1 concurrent: passthrough adds {added_bare} ms p50 over bare "
                                f"(target ≤ 1 ms): {'met' if ok else 'NOT met'}")
    notes = [
        "",
        "Server CPU µs/req is the CPU time (user + system, from /proc) the row's server process spent per",
        "request: for `direct` the fake upstream's own, for the proxies the proxy process alone. On a machine",
        "shared with other work it is steadier than req/s and latency, which depend on what else runs.",
    ]
    return "\n".join([*lines, "", "Targets:", *verdicts, *notes, ""])


if __name__ == "__main__":
    raise SystemExit(main())
