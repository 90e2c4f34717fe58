"""`PostgresReviewStore`: one review queue shared by several guard replicas.

Any replica may enqueue, any may decide: a decision is one `UPDATE ... WHERE status = 'pending'
RETURNING`, so PostgreSQL makes it exactly-once across replicas. The holding replica learns of a decision
by polling its item (see `guard.review.gate`), so no replica needs to know the others.

One connection per store, used under a lock: review traffic is a few statements per held request, and a
broken connection is reopened on the next call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg

from guard.errors import AlreadyDecidedError, ConfigError, ReviewError
from guard.migrations import apply_migrations
from guard.review.items import ItemStatus, NewItem, QueueStats, ReviewerOutcome, ReviewItem
from guard.review.store import COLUMNS, ItemNotFoundError, edited_json, item_row, row_item

T = TypeVar("T")

_COLS = ", ".join(COLUMNS)
_SELECT = f"SELECT {_COLS} FROM guard_review_items"
_CONNECT_TIMEOUT_S = 10


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgresql://(unparseable DSN)"
    return f"postgresql://{info.get('user', '')}@{info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"


async def _ping(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    await conn.execute("SELECT 1 FROM guard_review_items LIMIT 1")


async def migrate(dsn: str, error: type[Exception], what: str) -> None:
    """Apply the shared schema's pending migrations (yoyo is synchronous: off the event loop). A failure is
    raised as `error`, naming `what` and the DSN without its password."""
    try:
        await asyncio.to_thread(apply_migrations, dsn)
    except (psycopg.Error, OSError) as exc:
        raise error(f"{what} (postgresql {redact_dsn(dsn)}): schema migration failed: {type(exc).__name__}") from None
    except ConfigError as exc:
        raise error(f"{what} (postgresql {redact_dsn(dsn)}): {exc}") from None


class PostgresReviewStore:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
            )
        return self._conn

    async def _run(self, fn: Callable[[psycopg.AsyncConnection[tuple[object, ...]]], Awaitable[T]]) -> T:
        async with self._lock:
            try:
                return await fn(await self._connection())
            except psycopg.Error as exc:
                # psycopg messages may echo parameters in DETAIL lines: keep only the class and SQLSTATE.
                raise ReviewError(
                    f"review store (postgresql {redact_dsn(self._dsn)}) failed: "
                    f"{type(exc).__name__} sqlstate={exc.sqlstate}"
                ) from None

    async def open(self) -> None:
        # The schema is versioned (guard/migrations): replicas starting together migrate once, under a lock.
        await migrate(self._dsn, ReviewError, "review store")
        await self._run(_ping)

    async def enqueue(self, item: NewItem) -> ReviewItem:
        row = item_row(item)

        async def insert(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
            await conn.execute(
                f"INSERT INTO guard_review_items ({_COLS}) VALUES ({', '.join(['%s'] * len(COLUMNS))})", row
            )

        await self._run(insert)
        return ReviewItem(item=item)

    async def _fetch_one(self, sql: str, params: tuple[object, ...]) -> tuple[object, ...] | None:
        async def fetch(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> tuple[object, ...] | None:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

        return await self._run(fetch)

    async def get(self, item_id: str) -> ReviewItem:
        row = await self._fetch_one(f"{_SELECT} WHERE id = %s", (item_id,))
        if row is None:
            raise ItemNotFoundError("no review item with this id")
        return row_item(row)

    async def list_items(self, status: ItemStatus | None, limit: int) -> list[ReviewItem]:
        async def fetch(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[tuple[object, ...]]:
            if status is None:
                cur = await conn.execute(f"{_SELECT} ORDER BY created_at, id LIMIT %s", (limit,))
            else:
                cur = await conn.execute(
                    f"{_SELECT} WHERE status = %s ORDER BY created_at, id LIMIT %s", (status.value, limit)
                )
            return await cur.fetchall()

        return [row_item(r) for r in await self._run(fetch)]

    async def _transition(
        self, item_id: str, status: ItemStatus, reviewer: str, note: str, edited: str | None, now: float
    ) -> tuple[ReviewItem, bool]:
        row = await self._fetch_one(
            "UPDATE guard_review_items SET status = %s, reviewer = %s, note = %s, edited_texts = %s,"
            f" decided_at = %s WHERE id = %s AND status = 'pending' RETURNING {_COLS}",
            (status.value, reviewer, note, edited, now, item_id),
        )
        if row is not None:
            return row_item(row), True
        return await self.get(item_id), False

    async def decide(
        self, item_id: str, outcome: ReviewerOutcome, reviewer: str, note: str,
        edited_texts: dict[int, str] | None, now: float,
    ) -> ReviewItem:
        item, changed = await self._transition(
            item_id, outcome.status, reviewer, note, edited_json(edited_texts), now
        )
        if not changed:
            raise AlreadyDecidedError(f"review item was already {item.status.value}")
        return item

    async def expire(self, item_id: str, now: float) -> tuple[ReviewItem, bool]:
        return await self._transition(item_id, ItemStatus.TIMED_OUT, "", "", None, now)

    async def expire_due(self, now: float) -> list[ReviewItem]:
        async def sweep(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[tuple[object, ...]]:
            cur = await conn.execute(
                "UPDATE guard_review_items SET status = 'timed_out', decided_at = %s"
                f" WHERE status = 'pending' AND deadline <= %s RETURNING {_COLS}",
                (now, now),
            )
            return await cur.fetchall()

        return [row_item(r) for r in await self._run(sweep)]

    async def consume(self, item_id: str, now: float) -> tuple[ReviewItem, bool]:
        row = await self._fetch_one(
            "UPDATE guard_review_items SET consumed_at = %s WHERE id = %s AND consumed_at IS NULL"
            f" AND status IN ('approved', 'edited') RETURNING {_COLS}",
            (now, item_id),
        )
        if row is not None:
            return row_item(row), True
        return await self.get(item_id), False

    async def purge_decided(self, decided_before: float) -> list[tuple[str, str]]:
        async def purge(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[tuple[object, ...]]:
            cur = await conn.execute(
                "DELETE FROM guard_review_items WHERE status != 'pending' AND decided_at <= %s RETURNING id, request_id",
                (decided_before,),
            )
            return await cur.fetchall()

        return [(str(row[0]), str(row[1])) for row in await self._run(purge)]

    async def stats(self) -> QueueStats:
        row = await self._fetch_one(
            "SELECT COUNT(*), MIN(created_at) FROM guard_review_items WHERE status = 'pending'", ()
        )
        if row is None:
            return QueueStats(0, None)
        pending, oldest = row
        return QueueStats(pending=int(str(pending)), oldest_created_at=None if oldest is None else float(str(oldest)))

    async def aclose(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
