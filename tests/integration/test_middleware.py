"""`GuardMiddleware` around a real ASGI app (the demo echo model) served by uvicorn on loopback: the same
pipeline with the wrapped app as the upstream. Detectors load on lifespan startup, or on the first request
when the server sends no lifespan."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from guard import GuardMiddleware
from guard.demo import create_demo_app
from tests.integration.proxy_harness import MARKER, chat_body, marker_policy, sse_text

CHAT = "/v1/chat/completions"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets)  # type: ignore[arg-type]
        self._started_event.set()


@contextmanager
def serving(app: ASGIApp, lifespan: str = "on") -> Iterator[str]:
    started = threading.Event()
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan=lifespan, log_config=None, access_log=False), started
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert started.wait(60), "server did not start"
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


async def _boom(request: Request) -> Response:
    raise RuntimeError("app bug with a secret inside")


def _app() -> Starlette:
    demo = create_demo_app()

    async def plain(request: Request) -> Response:
        return JSONResponse({"body": (await request.body()).decode()})

    return Starlette(routes=[Route("/plain", plain, methods=["POST"]), Route("/v1/completions", _boom, methods=["POST"]),
                             Mount("/", demo)])


def test_middleware_screens_both_ways_and_loads_on_lifespan(tmp_path: Path) -> None:
    guarded = GuardMiddleware(_app(), policy=marker_policy(tmp_path))
    assert not guarded.runtime.ready  # construction only validates the policy
    with serving(guarded) as url:
        assert guarded.runtime.ready  # lifespan startup loaded the detectors before any request
        response = httpx.post(url + CHAT, json=chat_body(f"my code is {MARKER}"))
        assert response.status_code == 200
        assert response.headers["x-guard-decision"] == "redact"
        assert response.json()["choices"][0]["message"]["content"] == "You said: my code is <MARKER>"
        assert response.headers["content-length"] == str(len(response.content))

        streamed = httpx.post(url + CHAT, json=chat_body(f"again {MARKER} please", stream=True))
        text, reasons = sse_text(streamed.text)
        assert text == "You said: again <MARKER> please"
        assert reasons == ["stop"]
        assert MARKER not in streamed.text

        # Paths the policy does not know go straight to the app, unscreened and unchanged.
        plain = httpx.post(url + "/plain", content=MARKER.encode())
        assert plain.json() == {"body": MARKER}
        assert "x-guard-decision" not in plain.headers

        # Bad input is refused by the guard, not the app.
        bad = httpx.post(url + CHAT, content=b"{", headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert "not valid JSON" in bad.json()["error"]["message"]

        # The wrapped app crashing: its own 500 passes through (as an upstream 5xx does), nothing leaks.
        crashed = httpx.post(url + "/v1/completions", json={"model": "m", "prompt": "hi"})
        assert crashed.status_code == 500
        assert "secret" not in crashed.text
        assert httpx.post(url + CHAT, json=chat_body("still here")).status_code == 200

        admin = guarded.admin_app()
        assert admin is not None
        text_metrics = _metrics_text(guarded)
        assert 'guard_requests_total{decision="redact",direction="input",route="chat"} 2.0' in text_metrics
    assert not guarded.runtime.ready  # lifespan shutdown released them


def _metrics_text(guarded: GuardMiddleware) -> str:
    from prometheus_client import generate_latest

    return generate_latest(guarded.registry).decode()


def test_middleware_loads_lazily_without_lifespan(tmp_path: Path) -> None:
    guarded = GuardMiddleware(create_demo_app(), policy=marker_policy(tmp_path, input_action="block"))
    with serving(guarded, lifespan="off") as url:
        assert not guarded.runtime.ready
        response = httpx.post(url + CHAT, json=chat_body(f"x {MARKER}"))
        assert guarded.runtime.ready
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "content_filter"
        assert response.headers["x-guard-decision"] == "block"
        assert httpx.post(url + CHAT, json=chat_body("fine")).json()["choices"][0]["message"]["content"] == (
            "You said: fine"
        )


def test_middleware_bad_policy_refuses_to_construct(tmp_path: Path) -> None:
    from guard.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: '1'\ndefault_tier: nope\ntiers: {}\n")
    with pytest.raises(ConfigError):
        GuardMiddleware(create_demo_app(), policy=bad)


def test_wrapped_app_that_fails_before_answering_is_a_502(tmp_path: Path) -> None:
    async def broken(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] == "lifespan":
            return  # no lifespan support: the middleware loads lazily
        raise RuntimeError("inner failure with secret-77")

    guarded = GuardMiddleware(broken, policy=marker_policy(tmp_path))  # type: ignore[arg-type]
    with serving(guarded, lifespan="off") as url:
        response = httpx.post(url + CHAT, json=chat_body("hello"))
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unavailable"
        assert "secret-77" not in response.text
        assert "guard_unhandled_errors_total 0.0" in _metrics_text(guarded)  # an upstream failure, not a crash
