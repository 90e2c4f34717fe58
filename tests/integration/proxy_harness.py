"""`guard serve` in-process: the same `serve_guard` the command runs, on a background thread's event loop,
on free loopback ports. Ready when the servers listen and the detectors are loaded (no sleeps).

    with GuardThread(upstream.url, policy=REPO / "policies/default.yaml") as guard:
        httpx.post(guard.url + "/v1/chat/completions", json=...)
        guard.metric("guard_requests_total", direction="input", route="chat", decision="redact")
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

import httpx
from prometheus_client.parser import text_string_to_metric_families

from guard.app import Extras
from guard.commands.serve import Bound, serve_guard
from guard.metrics import GuardMetrics
from guard.settings import GuardSettings

REPO = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = REPO / "policies" / "default.yaml"


def default_policy_trusting_loopback(directory: Path) -> Path:
    """The shipped default policy with one change: the tier header is trusted from loopback (the shipped
    one trusts no source), so a test can ask for the `high` tier the way a platform's ingress would."""
    import yaml

    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    policy["tier_header"]["trusted_sources"] = ["127.0.0.1/32"]
    path = directory / "default-trusting-loopback.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path
PASSTHROUGH_POLICY = REPO / "policies" / "passthrough.yaml"


class GuardThread:
    def __init__(
        self,
        upstream_url: str | None,
        policy: Path | None,
        demo: bool = False,
        extras: Callable[[GuardSettings, GuardMetrics], Awaitable[Extras]] | None = None,
        **settings: object,
    ) -> None:
        self._extras = extras
        fields: dict[str, object] = {"port": 0, "admin_port": 0, "policy_path": policy, **settings}
        self._settings = None if demo else GuardSettings(upstream_url=upstream_url, **fields)  # type: ignore[arg-type]
        self._fields = fields
        self._demo = demo
        self._ready = threading.Event()
        self._bound: Bound | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="guard-serve", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve_guard(
                self._settings,
                demo=self._demo,
                stop=self._stop,
                on_ready=self._on_ready,
                base_settings=self._fields,
                **({"extras": self._extras} if self._extras is not None else {}),
            )

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self._error = exc
            self._ready.set()

    def _on_ready(self, bound: Bound) -> None:
        self._bound = bound
        self._ready.set()

    @property
    def bound(self) -> Bound:
        if self._bound is None:
            raise RuntimeError("guard not started")
        return self._bound

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bound.proxy_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.bound.admin_port}"

    def start(self) -> GuardThread:
        self._thread.start()
        if not self._ready.wait(300):
            raise RuntimeError("guard did not become ready")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if self._thread.is_alive():
            raise RuntimeError("guard did not stop")

    def __enter__(self) -> GuardThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def metrics_text(self) -> str:
        return httpx.get(self.admin_url + "/metrics").text

    def metric(self, name: str, **labels: str) -> float:
        """A sample's value from the admin port's /metrics (0.0 when the series is absent)."""
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


MARKER = "PLANTED-MARKER-7731"  # what the planted detector finds (category pii, entity type MARKER)


def marker_policy(
    directory: Path,
    *,
    input_action: str = "redact",
    output_action: str = "redact",
    window_chars: int = 96,
    overlap_chars: int = 48,
    unknown_routes: str = "pass",
    limits: dict[str, object] | None = None,
    mode: str = "find",
) -> Path:
    """A real policy file whose one detector is the deterministic `FaultDetector` finding `MARKER`."""
    import yaml

    policy = {
        "name": "proxy_tests",
        "version": "1",
        "detectors": [
            {
                "kind": "plugin",
                "name": "marker",
                "factory": "tests.fakes.detectors:FaultDetector",
                "reports": ["pii"],
                "settings": {"mode": mode, "marker": MARKER, "delay_s": 30.0},
            }
        ],
        "default_tier": "limited",
        "routes": [
            {"name": "chat", "path": "/v1/chat/completions", "codec": {"kind": "openai_chat"}},
            {"name": "completions", "path": "/v1/completions", "codec": {"kind": "openai_completions"}},
        ],
        "unknown_routes": unknown_routes,
        "limits": {"detector_budget_s": 2.0, **(limits or {})},
        "refusal_text": "Refused by the test policy.",
        "tiers": {
            "limited": {
                "on_detector_error": "block",
                "stream": {"window_chars": window_chars, "overlap_chars": overlap_chars},
                "input": {"pii": {"medium": {"min_score": 0.5, "action": input_action}}},
                "output": {"pii": {"medium": {"min_score": 0.5, "action": output_action}}},
            }
        },
    }
    path = directory / "proxy_tests_policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def chat_body(text: str, stream: bool = False) -> dict[str, object]:
    return {"model": "fake-model", "stream": stream, "messages": [{"role": "user", "content": text}]}


def sse_text(raw: str) -> tuple[str, list[str]]:
    """(the concatenated delta/text content, the finish reasons) of an OpenAI SSE body."""
    import json

    text, reasons = "", []
    for line in raw.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line[len("data: "):])
        for choice in event.get("choices", []):
            text += (choice.get("delta") or {}).get("content") or choice.get("text") or ""
            if choice.get("finish_reason"):
                reasons.append(choice["finish_reason"])
    return text, reasons
