"""The PostgreSQL audit sink: two replicas appending at once keep one chain; tampering is named."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import psycopg
import pytest

from guard.audit.factory import open_audit_sink
from tests.unit.audit.audit_samples import CARD, EMAIL, event

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def verify_cli(dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guard", "audit", "verify", dsn], capture_output=True, text=True,
        env={**os.environ, "GUARD_AUDIT_HMAC_KEY": "k"},  # the chain is MACed with the key (guard.audit.keys)
    )


async def test_two_replicas_append_one_chain_and_edits_are_found(postgres_dsn: str) -> None:
    a = await open_audit_sink(postgres_dsn, b"k")
    b = await open_audit_sink(postgres_dsn, b"k")
    await asyncio.gather(*(sink.append(event(i)) for i in range(20) for sink in (a, b)))
    await a.aclose()
    await b.aclose()
    ok = verify_cli(postgres_dsn)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("ok: 40 records")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        rows = [r[0] for r in conn.execute("SELECT record FROM guard_audit ORDER BY seq")]
        assert not any(CARD in r or EMAIL in r for r in rows)
        conn.execute(
            "UPDATE guard_audit SET record = replace(record, '\"tier\":\"high\"', '\"tier\":\"low\"') WHERE seq = 7"
        )
    broken = verify_cli(postgres_dsn)
    assert broken.returncode == 1
    assert "table guard_audit:8 (record seq 7): MAC does not match the content" in broken.stdout
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM guard_audit WHERE seq = 12")
    assert "seq 12 deleted or moved" in verify_cli(postgres_dsn).stdout
