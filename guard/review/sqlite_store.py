"""`SqliteReviewStore`: the embedded default review store, one SQLite file in WAL mode.

sqlite3 is blocking, so every statement runs on one dedicated worker thread (one connection, used by that
thread only); the event loop never waits on disk. `BEGIN IMMEDIATE` plus a `WHERE status = 'pending'`
update makes a decision exactly-once even when two guard processes share the file.

The file holds raw held text, so it is created 0600 (its directory 0700 when the guard creates it);
SQLite gives `-wal` and `-shm` the mode of the database file, and files left wider by an older version
are tightened on open (guard.files).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from guard.errors import AlreadyDecidedError, ReviewError
from guard.files import FILE_MODE, make_private, private_dir
from guard.review.items import ItemStatus, NewItem, QueueStats, ReviewerOutcome, ReviewItem
from guard.review.store import COLUMNS, ItemNotFoundError, edited_json, item_row, row_item

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_items (
    id TEXT PRIMARY KEY, request_id TEXT NOT NULL, direction TEXT NOT NULL, route TEXT NOT NULL,
    tier TEXT NOT NULL, policy_version TEXT NOT NULL, texts TEXT NOT NULL, findings TEXT NOT NULL,
    created_at REAL NOT NULL, deadline REAL NOT NULL, on_timeout TEXT NOT NULL, deferred INTEGER NOT NULL,
    forward TEXT NOT NULL, status TEXT NOT NULL, reviewer TEXT NOT NULL, note TEXT NOT NULL,
    edited_texts TEXT, decided_at REAL, consumed_at REAL
);
CREATE INDEX IF NOT EXISTS review_items_status_created ON review_items (status, created_at);
"""
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM review_items"
# How long a writer waits for another process's lock before the statement fails.
_BUSY_TIMEOUT_MS = 5000


class SqliteReviewStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise ReviewError("review store is not open")
            return fn(self._conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.Error as exc:
            # sqlite messages name tables and constraints, never values: safe to carry.
            raise ReviewError(f"review store (sqlite) failed: {type(exc).__name__}: {exc}") from None

    async def open(self) -> None:
        def connect() -> None:
            private_dir(self._path.parent)
            os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, FILE_MODE))  # exists, 0600, before SQLite opens it
            for path in (self._path, *(self._path.with_name(self._path.name + s) for s in ("-wal", "-shm"))):
                make_private(path)
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # a held item must survive a power cut too
            conn.execute("PRAGMA secure_delete = ON")  # a purged item's text is overwritten, not left in free pages
            conn.executescript(_SCHEMA)
            self._conn = conn

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except (sqlite3.Error, OSError) as exc:
            raise ReviewError(f"cannot open review store {self._path}: {type(exc).__name__}: {exc}") from None

    async def enqueue(self, item: NewItem) -> ReviewItem:
        row = item_row(item)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO review_items ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                row,
            )

        await self._run(insert)
        return ReviewItem(item=item)

    async def get(self, item_id: str) -> ReviewItem:
        def select(conn: sqlite3.Connection) -> tuple[object, ...] | None:
            found: tuple[object, ...] | None = conn.execute(f"{_SELECT} WHERE id = ?", (item_id,)).fetchone()
            return found

        row = await self._run(select)
        if row is None:
            raise ItemNotFoundError("no review item with this id")
        return row_item(row)

    async def list_items(self, status: ItemStatus | None, limit: int) -> list[ReviewItem]:
        def select(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
            if status is None:
                return conn.execute(f"{_SELECT} ORDER BY created_at, id LIMIT ?", (limit,)).fetchall()
            return conn.execute(
                f"{_SELECT} WHERE status = ? ORDER BY created_at, id LIMIT ?", (status.value, limit)
            ).fetchall()

        return [row_item(r) for r in await self._run(select)]

    def _transition(
        self, conn: sqlite3.Connection, item_id: str, status: ItemStatus, reviewer: str, note: str,
        edited: str | None, now: float,
    ) -> tuple[tuple[object, ...] | None, bool]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            changed = conn.execute(
                "UPDATE review_items SET status = ?, reviewer = ?, note = ?, edited_texts = ?, decided_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (status.value, reviewer, note, edited, now, item_id),
            ).rowcount == 1
            row = conn.execute(f"{_SELECT} WHERE id = ?", (item_id,)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return row, changed

    async def decide(
        self, item_id: str, outcome: ReviewerOutcome, reviewer: str, note: str,
        edited_texts: dict[int, str] | None, now: float,
    ) -> ReviewItem:
        edited = edited_json(edited_texts)
        row, changed = await self._run(
            lambda c: self._transition(c, item_id, outcome.status, reviewer, note, edited, now)
        )
        if row is None:
            raise ItemNotFoundError("no review item with this id")
        item = row_item(row)
        if not changed:
            raise AlreadyDecidedError(f"review item was already {item.status.value}")
        return item

    async def expire(self, item_id: str, now: float) -> tuple[ReviewItem, bool]:
        row, changed = await self._run(
            lambda c: self._transition(c, item_id, ItemStatus.TIMED_OUT, "", "", None, now)
        )
        if row is None:
            raise ItemNotFoundError("no review item with this id")
        return row_item(row), changed

    async def expire_due(self, now: float) -> list[ReviewItem]:
        def sweep(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                due = [r[0] for r in conn.execute(
                    "SELECT id FROM review_items WHERE status = 'pending' AND deadline <= ?", (now,)
                ).fetchall()]
                conn.executemany(
                    "UPDATE review_items SET status = 'timed_out', decided_at = ? WHERE id = ?"
                    " AND status = 'pending'",
                    [(now, i) for i in due],
                )
                rows = [conn.execute(f"{_SELECT} WHERE id = ?", (i,)).fetchone() for i in due]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return [r for r in rows if r is not None]

        return [row_item(r) for r in await self._run(sweep)]

    async def consume(self, item_id: str, now: float) -> tuple[ReviewItem, bool]:
        def use(conn: sqlite3.Connection) -> tuple[tuple[object, ...] | None, bool]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = conn.execute(
                    "UPDATE review_items SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL"
                    " AND status IN ('approved', 'edited')",
                    (now, item_id),
                ).rowcount == 1
                row = conn.execute(f"{_SELECT} WHERE id = ?", (item_id,)).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return row, changed

        row, changed = await self._run(use)
        if row is None:
            raise ItemNotFoundError("no review item with this id")
        return row_item(row), changed

    async def stats(self) -> QueueStats:
        def count(conn: sqlite3.Connection) -> tuple[int, float | None]:
            pending, oldest = conn.execute(
                "SELECT COUNT(*), MIN(created_at) FROM review_items WHERE status = 'pending'"
            ).fetchone()
            return int(pending), None if oldest is None else float(oldest)

        pending, oldest = await self._run(count)
        return QueueStats(pending=pending, oldest_created_at=oldest)

    async def purge_decided(self, decided_before: float) -> list[tuple[str, str]]:
        def purge(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "DELETE FROM review_items WHERE status != 'pending' AND decided_at <= ? RETURNING id, request_id",
                    (decided_before,),
                ).fetchall()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if rows:  # the WAL still holds the deleted pages' old frames: checkpoint and truncate it
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return [(str(i), str(r)) for i, r in rows]

        return await self._run(purge)

    async def aclose(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
