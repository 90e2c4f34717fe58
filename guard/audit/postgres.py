"""`PostgresAuditSink`: the audit chain in a PostgreSQL table, one chain shared by every replica.

Each append takes a transaction-scoped advisory lock, reads the last record's hash and inserts the next
record, so replicas appending at once still produce one unbroken chain. The record is stored as its
canonical text (not jsonb, which would reorder keys and lose the bytes the hash covers).
`guard audit verify postgresql://...` checks the table with the same verifier as the files.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator

import psycopg

from guard.audit.base import DecisionEvent, ReviewActionEvent
from guard.audit.records import GENESIS, canonical, decision_body, new_text_digest, review_action_body, seal
from guard.errors import AuditError
from guard.review.postgres_store import migrate, redact_dsn

_CHAIN_LOCK = 0x61756469  # advisory lock id ("audi")
_CONNECT_TIMEOUT_S = 10


class PostgresAuditSink:
    def __init__(self, dsn: str, key: bytes) -> None:
        self._dsn = dsn
        self._key = key
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._lock = asyncio.Lock()

    def _error(self, exc: psycopg.Error) -> AuditError:
        return AuditError(
            f"audit (postgresql {redact_dsn(self._dsn)}) failed: {type(exc).__name__} sqlstate={exc.sqlstate}"
        )

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
            )
        return self._conn

    async def open(self) -> None:
        # The schema is versioned (guard/migrations), shared with the review store.
        await migrate(self._dsn, AuditError, "audit")
        async with self._lock:
            try:
                await self._connection()
            except psycopg.Error as exc:
                raise self._error(exc) from None

    async def _append(self, body: dict[str, object]) -> None:
        async with self._lock:
            try:
                conn = await self._connection()
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))
                    cur = await conn.execute("SELECT record FROM guard_audit ORDER BY seq DESC LIMIT 1")
                    row = await cur.fetchone()
                    seq, prev = 0, GENESIS
                    if row is not None:
                        last = json.loads(str(row[0]))
                        seq, prev = int(last["seq"]) + 1, str(last["hash"])
                    record = seal(body, seq, prev)
                    await conn.execute(
                        "INSERT INTO guard_audit (seq, record) VALUES (%s, %s)", (seq, canonical(record))
                    )
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def text_digest(self) -> hmac.HMAC | None:
        return new_text_digest(self._key)

    async def append(self, event: DecisionEvent) -> None:
        await self._append(decision_body(event, self._key))

    async def append_review_action(self, event: ReviewActionEvent) -> None:
        await self._append(review_action_body(event))

    async def aclose(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


async def table_lines(dsn: str) -> AsyncIterator[str]:
    """Every record of the table in `seq` order, as stored (for the verifier)."""
    try:
        async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=_CONNECT_TIMEOUT_S) as conn:
            async with conn.cursor(name="guard_audit_verify") as cur:
                await cur.execute("SELECT record FROM guard_audit ORDER BY seq")
                async for (record,) in cur:
                    yield str(record)
    except psycopg.Error as exc:
        raise AuditError(
            f"audit (postgresql {redact_dsn(dsn)}) cannot be read: {type(exc).__name__} sqlstate={exc.sqlstate}"
        ) from None
