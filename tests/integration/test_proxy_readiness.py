"""`/readyz` on the admin port: 503 until `GuardApp.startup()` has loaded the detectors, 200 after, 503
again once draining starts; `/healthz` answers throughout. Real uvicorn on loopback, one event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from guard.app import create_app
from guard.commands.serve import _Server, _start, server_config
from guard.settings import GuardSettings
from tests.integration.proxy_harness import marker_policy


def test_readyz_follows_detector_loading_and_draining(tmp_path: Path) -> None:
    async def go() -> None:
        app = create_app(GuardSettings(upstream_url="http://127.0.0.1:9", policy_path=marker_policy(tmp_path)))  # type: ignore[arg-type]
        admin = _Server(server_config(app.admin, "127.0.0.1", 0, 1.0))
        task = await _start(admin)
        url = f"http://127.0.0.1:{admin.port()}"
        try:
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/healthz")).status_code == 200
                assert (await client.get("/readyz")).status_code == 503
                assert 'guard_ready 0.0' in (await client.get("/metrics")).text
                await app.startup(watch_policy=False)
                assert (await client.get("/readyz")).status_code == 200
                assert 'guard_ready 1.0' in (await client.get("/metrics")).text
                assert 'guard_policy_info{name="proxy_tests",version="1"} 1.0' in (await client.get("/metrics")).text
                app.proxy.start_draining()
                assert (await client.get("/readyz")).status_code == 503
                assert (await client.get("/healthz")).status_code == 200
        finally:
            admin.should_exit = True
            await task
            await app.shutdown()

    asyncio.run(go())
