"""Fixtures shared by every room's tests. Add to this file; don't rewrite what others put here."""

# --- review and audit rooms ----------------------------------------------------------------------------
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
from collections.abc import AsyncIterator, Callable, Iterator  # noqa: E402
from contextlib import AbstractAsyncContextManager  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL that `.ci/postgres.sh start` runs (GUARD_TEST_POSTGRES_DSN).

    Missing env var: the test FAILS (never skips): CI provides it, and a silent skip would hide a gap."""
    base = os.environ.get("GUARD_TEST_POSTGRES_DSN")
    if not base:
        pytest.fail(
            "GUARD_TEST_POSTGRES_DSN is not set: start PostgreSQL with `eval \"$(.ci/postgres.sh start)\"`"
        )
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = "guard_t_" + secrets.token_hex(6)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(base)._replace(path="/" + name))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.asynccontextmanager
async def _serve_asgi(app: object) -> AsyncIterator[str]:
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def serve_asgi() -> Callable[[object], AbstractAsyncContextManager[str]]:
    """`async with serve_asgi(app) as base_url:` runs a real uvicorn server for `app` on 127.0.0.1:0."""
    return _serve_asgi


# --- reliability and security batteries -----------------------------------------------------------------
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from tests.fakes.fault_policy import write_policy  # noqa: E402
from tests.fakes.guard_process import GuardProcess, StartGuard  # noqa: E402



@pytest.fixture
def start_guard(tmp_path: Path) -> Iterator[StartGuard]:
    """Start real `guard serve` processes (a policy dict is written to a file first); all stopped after the test."""
    started: list[GuardProcess] = []

    def start(
        upstream: str,
        policy: dict[str, Any] | Path | None,
        extra_args: Sequence[str] = (),
        wait_ready: bool = True,
        **kwargs: Any,
    ) -> GuardProcess:
        path = write_policy(tmp_path / f"policy-{len(started)}.yaml", policy) if isinstance(policy, dict) else policy
        guard = GuardProcess(upstream, path, tmp_path, extra_args=extra_args, **kwargs)
        started.append(guard)
        return guard.start(wait_ready=wait_ready)

    yield start
    for guard in started:
        guard.stop()
