"""Schema migrations on real PostgreSQL (guard/migrations, yoyo-migrations): a fresh database gets every
migration recorded; a database created by the previous release's `CREATE TABLE IF NOT EXISTS` start-up
upgrades with its rows intact; replicas starting at once migrate once; a database migrated by a newer guard
is refused; `guard db` reports and upgrades from a shell."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from guard.audit.postgres import PostgresAuditSink
from guard.errors import ReviewError
from guard.migrations import TABLE, apply_migrations, schema_status
from guard.review.items import ItemStatus
from guard.review.postgres_store import PostgresReviewStore

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]
REPO = Path(__file__).resolve().parents[3]

# What guard 0.1.0 ran at start (its stores' _SCHEMA), kept verbatim: the schema deployments have today.
RELEASE_0_1_0 = """
CREATE TABLE IF NOT EXISTS guard_review_items (
    id TEXT PRIMARY KEY, request_id TEXT NOT NULL, direction TEXT NOT NULL, route TEXT NOT NULL,
    tier TEXT NOT NULL, policy_version TEXT NOT NULL, texts TEXT NOT NULL, findings TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, deadline DOUBLE PRECISION NOT NULL, on_timeout TEXT NOT NULL,
    deferred INTEGER NOT NULL, forward TEXT NOT NULL, status TEXT NOT NULL, reviewer TEXT NOT NULL,
    note TEXT NOT NULL, edited_texts TEXT, decided_at DOUBLE PRECISION, consumed_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS guard_review_items_status_created ON guard_review_items (status, created_at);
CREATE TABLE IF NOT EXISTS guard_audit (seq BIGINT PRIMARY KEY, record TEXT NOT NULL);
"""
SHIPPED = ("0001_review_items", "0002_audit")


def _recorded(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute(f"SELECT migration_id FROM {TABLE} ORDER BY applied_at_utc")]


async def test_a_fresh_database_records_every_migration(postgres_dsn: str) -> None:
    store = PostgresReviewStore(postgres_dsn)
    await store.open()
    await store.aclose()
    assert _recorded(postgres_dsn) == list(SHIPPED)
    assert schema_status(postgres_dsn).pending == ()


async def test_the_previous_releases_schema_upgrades_with_its_rows(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(RELEASE_0_1_0)
        conn.execute(
            "INSERT INTO guard_review_items VALUES ('i1', 'r1', 'input', 'chat', 'high', 'v1', '[]', '[]', 1.0, "
            "9e9, 'block', 0, %s, 'pending', '', '', NULL, NULL, NULL)",
            (json.dumps({"method": "POST", "path": "/v1/chat/completions", "body": "{}", "headers": []}),),
        )
    assert schema_status(postgres_dsn).applied == ()
    sink = PostgresAuditSink(postgres_dsn, b"")
    await sink.open()
    await sink.aclose()
    assert _recorded(postgres_dsn) == list(SHIPPED)
    store = PostgresReviewStore(postgres_dsn)
    await store.open()
    assert [item.id for item in await store.list_items(ItemStatus.PENDING, 10)] == ["i1"]
    await store.aclose()


def test_replicas_starting_together_migrate_once(postgres_dsn: str) -> None:
    results: list[tuple[str, ...]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(apply_migrations(postgres_dsn))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(results, key=len) == [(), (), (), SHIPPED]
    assert _recorded(postgres_dsn) == list(SHIPPED)


async def test_a_schema_from_a_newer_guard_is_refused(postgres_dsn: str) -> None:
    apply_migrations(postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {TABLE} VALUES ('f' || md5('future'), '0099_future', now())")
    store = PostgresReviewStore(postgres_dsn)
    with pytest.raises(ReviewError, match="newer guard"):
        await store.open()


def test_guard_db_upgrade_and_status_from_a_shell(postgres_dsn: str) -> None:
    def guard_db(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "guard", "db", *args, postgres_dsn], capture_output=True, text=True,
            cwd=REPO, timeout=120, check=False,
        )

    before = guard_db("status")
    assert before.returncode == 0 and before.stdout.split() == ["pending", SHIPPED[0], "pending", SHIPPED[1]]
    upgraded = guard_db("upgrade")
    assert upgraded.returncode == 0 and "applied 2 migration(s)" in upgraded.stdout
    after = guard_db("status")
    assert after.stdout.split() == ["applied", SHIPPED[0], "applied", SHIPPED[1]]
    unreachable = subprocess.run(
        [sys.executable, "-m", "guard", "db", "status", "postgresql://nobody:secret@127.0.0.1:1/x"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert unreachable.returncode == 1 and "secret" not in unreachable.stderr
