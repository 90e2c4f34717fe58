"""Helpers for the end-to-end review tests: a real `guard serve` (tests/fakes/guard_process.py) in front of
the fake upstream, reviewer tokens, the escalation policy with test-sized timeouts, and callers held in
threads while a reviewer decides over the admin API."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.fakes.guard_process import REPO

TOKENS = {"reviewer": "e2e-reviewer-token", "admin": "e2e-admin-token", "auditor": "e2e-auditor-token"}
CARD = "4111 1111 1111 1111"
AUDIT_KEY = "e2e-audit-hmac-key"


def write_tokens(path: Path) -> Path:
    path.write_text("".join(
        f"- {{name: {role}-e2e, role: {role}, token_sha256: {hashlib.sha256(t.encode()).hexdigest()}}}\n"
        for role, t in TOKENS.items()
    ))
    return path


def write_policy(path: Path, timeout_s: float = 30.0, on_timeout: str = "block") -> Path:
    policy = yaml.safe_load((REPO / "policies" / "escalate.yaml").read_text())
    policy["tiers"]["limited"]["review"] = {"timeout_s": timeout_s, "on_timeout": on_timeout}
    path.write_text(yaml.safe_dump(policy))
    return path


def auth(role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[role]}"}


def chat_body(text: str) -> dict[str, object]:
    return {"model": "fake", "messages": [{"role": "user", "content": text}]}


def chat(base: str, text: str, path: str = "/v1/chat/completions", headers: dict[str, str] | None = None,
         timeout_s: float = 60.0) -> httpx.Response:
    return httpx.post(base + path, json=chat_body(text), headers=headers or {}, timeout=timeout_s)


@dataclass
class Callers:
    """Callers whose requests the guard holds: each runs in its own thread until answered."""

    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=8))

    def send(self, base: str, text: str, **kwargs: object) -> Future[httpx.Response]:
        return self.pool.submit(chat, base, text, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def pending(admin: str, role: str = "reviewer") -> list[dict[str, object]]:
    response = httpx.get(admin + "/v1/reviews?status=pending", headers=auth(role), timeout=10)
    response.raise_for_status()
    items: list[dict[str, object]] = response.json()["items"]
    return items


def wait_pending(admin: str, count: int = 1, timeout_s: float = 30.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        items = pending(admin)
        if len(items) >= count:
            return items
        time.sleep(0.05)
    raise AssertionError(f"{count} pending review item(s) did not appear in {timeout_s}s")


def decide(admin: str, item_id: object, outcome: str, role: str = "reviewer", **extra: object) -> httpx.Response:
    return httpx.post(
        f"{admin}/v1/reviews/{item_id}/decision", headers=auth(role), json={"outcome": outcome, **extra}, timeout=10
    )


class WebhookReceiver:
    """A real loopback HTTP receiver for review webhooks (a thread-run http.server)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies = self.bodies = []  # type: list[bytes]
        self.received = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                bodies.append(self.rfile.read(int(self.headers.get("content-length", "0"))))
                owner.received.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                return

        owner = self
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def payloads(self) -> list[dict[str, object]]:
        return [json.loads(b) for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
