"""`PostgresAuditSink`: the audit chain in a PostgreSQL table, one chain shared by every replica.

Each append takes a transaction-scoped advisory lock, reads the last record's hash and inserts the next
record, so replicas appending at once still produce one unbroken chain. The record is stored as its
canonical text (not jsonb, which would reorder keys and lose the bytes the hash covers).
`guard audit verify postgresql://...` checks the table with the same verifier as the files.
Records are keyed and rotated exactly as in the JSONL sink (guard.audit.keys): every append checks the
table's last record (another replica's, or a forged row) before chaining onto it, and a key change is
written as a `key_rotation` record. Anchors (`--audit-anchor`) are this replica's last appended record.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg

from guard.audit.anchors import AnchorWriter
from guard.audit.base import DecisionEvent, ReviewActionEvent
from guard.audit.keys import AuditKeys, key_from
from guard.audit.records import GENESIS, canonical, continue_chain, decision_body, new_text_digest, review_action_body, seal
from guard.errors import AuditError
from guard.review.postgres_store import migrate, redact_dsn

_CHAIN_LOCK = 0x61756469  # advisory lock id ("audi")
_CONNECT_TIMEOUT_S = 10


class PostgresAuditSink:
    def __init__(
        self, dsn: str, key: bytes, keys: AuditKeys | None = None, anchor_path: Path | None = None,
        anchor_interval_s: float = 1.0,
    ) -> None:
        self._dsn = dsn
        self._keys = keys if keys is not None else AuditKeys(key_from(key))
        self._key = self._keys.text_key
        self._anchors = AnchorWriter(anchor_path, anchor_interval_s)
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
                conn = await self._connection()
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))
                    last = await self._last(conn)
                    self._anchors.check_log_against(None if last is None else int(str(last["seq"])), "guard_audit")
                    continuation = continue_chain(
                        last, self._keys, "table guard_audit", time.time(), await self._has_keyed(conn, last)
                    )
                    if continuation.rotation is not None:
                        await self._insert(conn, seal(
                            continuation.rotation, continuation.seq, continuation.prev, self._keys.current
                        ))
            except psycopg.Error as exc:
                raise self._error(exc) from None

    async def _last(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> dict[str, object] | None:
        cur = await conn.execute("SELECT record FROM guard_audit ORDER BY seq DESC LIMIT 1")
        row = await cur.fetchone()
        if row is None:
            return None
        try:
            last = json.loads(str(row[0]))
        except ValueError:
            raise AuditError("table guard_audit: the last record is not valid JSON; run `guard audit verify`") from None
        if not isinstance(last, dict) or not isinstance(last.get("hash"), str) or "seq" not in last:
            raise AuditError("table guard_audit: the last row is not an audit record; run `guard audit verify`")
        return last

    async def _has_keyed(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], last: dict[str, object] | None
    ) -> Callable[[], bool]:
        """Whether any row is keyed, asked up front (`continue_chain` is synchronous); it costs a scan only
        when a key meets an unkeyed last row (a migration, or a row forged without the key)."""
        if self._keys.current is None or last is None or last.get("kid") is not None:
            return lambda: False
        cur = await conn.execute("SELECT 1 FROM guard_audit WHERE record LIKE %s LIMIT 1", ('%"kid":%',))
        found = await cur.fetchone() is not None
        return lambda: found

    async def _insert(self, conn: psycopg.AsyncConnection[tuple[object, ...]], record: dict[str, object]) -> None:
        await conn.execute(
            "INSERT INTO guard_audit (seq, record) VALUES (%s, %s)", (record["seq"], canonical(record))
        )
        kid = None if self._keys.current is None else self._keys.current.kid
        self._anchors.record(int(str(record["seq"])), str(record["hash"]), kid)

    async def _append(self, body: dict[str, object]) -> None:
        async with self._lock:
            try:
                conn = await self._connection()
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))
                    # Checked on every append: another replica's record, or a row forged in the table.
                    last = await self._last(conn)
                    continuation = continue_chain(
                        last, self._keys, "table guard_audit", time.time(), await self._has_keyed(conn, last)
                    )
                    seq, prev = continuation.seq, continuation.prev
                    if continuation.rotation is not None:  # another replica's key is older: rotate here
                        rotation = seal(continuation.rotation, seq, prev, self._keys.current)
                        await self._insert(conn, rotation)
                        seq, prev = seq + 1, str(rotation["hash"])
                    await self._insert(conn, seal(body, seq, prev, self._keys.current))
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
            self._anchors.flush()
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
