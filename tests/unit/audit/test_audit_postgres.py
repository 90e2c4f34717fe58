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


async def test_a_forged_row_is_refused_and_a_rotation_verifies_with_both_keys(postgres_dsn: str) -> None:
    import hashlib
    import json

    from guard.audit.keys import AuditKeys, key_from
    from guard.audit.records import canonical
    from guard.errors import AuditError

    old, new = key_from(b"pg-key-old", "old"), key_from(b"pg-key-new", "new")
    sink = await open_audit_sink(postgres_dsn, b"", keys=AuditKeys(old))
    for i in range(3):
        await sink.append(event(i))
    await sink.aclose()
    # Rotation: the new key, with the old one as previous; a key_rotation row first, then new-key rows.
    rotated = await open_audit_sink(postgres_dsn, b"", keys=AuditKeys(new, old))
    await rotated.append(event(3))
    await rotated.aclose()
    both = {"GUARD_AUDIT_HMAC_KEY": "pg-key-new", "GUARD_AUDIT_KEY_ID": "new",
            "GUARD_AUDIT_PREVIOUS_HMAC_KEY": "pg-key-old", "GUARD_AUDIT_PREVIOUS_KEY_ID": "old"}
    ok = subprocess.run([sys.executable, "-m", "guard", "audit", "verify", postgres_dsn], capture_output=True,
                        text=True, env={**os.environ, **both})
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 5 records"), ok.stdout + ok.stderr
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        kinds = [json.loads(r[0]).get("kind") for r in conn.execute("SELECT record FROM guard_audit ORDER BY seq")]
        assert kinds == ["decision"] * 3 + ["key_rotation", "decision"]
        last = json.loads(conn.execute("SELECT record FROM guard_audit ORDER BY seq DESC LIMIT 1").fetchone()[0])
        forged = {k: v for k, v in last.items() if k not in ("hash", "kid")}
        forged.update(seq=5, prev=last["hash"], action="allow")
        forged["hash"] = hashlib.sha256(canonical(forged).encode()).hexdigest()
        conn.execute("INSERT INTO guard_audit (seq, record) VALUES (5, %s)", (canonical(forged),))
    with pytest.raises(AuditError, match="unkeyed but the log holds keyed records"):
        await open_audit_sink(postgres_dsn, b"", keys=AuditKeys(new))
