"""`JsonlAuditSink`: the default audit sink, one canonical JSON record per line, hash-chained.

Files: the active log is `PATH`; when it reaches `max_bytes` it is renamed `PATH.000001`, `PATH.000002`,
... and a new `PATH` continues the same chain (its first record's `prev` is the last hash of the rotated
file, and `seq` keeps counting), so `guard audit verify PATH.0* PATH` checks every link across files.

On start the sink reads the last record (of `PATH`, else of the newest rotated file) and continues its
chain; an unreadable last record, one whose MAC the key does not confirm (forged with the guard stopped),
a key change without the previous key, or a log that ends before its anchor is an `AuditError`: the guard
refuses to start rather than chain onto it (guard.audit.keys, guard.audit.anchors). Files are 0600. Each append is written, flushed and fsynced on one worker thread before
`append` returns, so an answered request is a recorded one.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from guard.audit.anchors import AnchorWriter
from guard.audit.base import DecisionEvent, ReviewActionEvent
from guard.audit.keys import AuditKeys, key_from
from guard.audit.records import (
    GENESIS, canonical, continue_chain, decision_body, new_text_digest, record_hash, review_action_body, seal,
)
from guard.errors import AuditError
from guard.files import fsync_dir, make_private, open_private_append, private_dir

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_TAIL_BYTES = 1 << 20  # a record is far smaller than this


def rotated_files(path: Path) -> list[Path]:
    """Rotated files of `path`, oldest first."""
    found = [p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()]
    return sorted(found, key=lambda p: int(p.suffix[1:]))


def _last_record(path: Path) -> dict[str, object] | None:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - _TAIL_BYTES))
        lines = f.read(_TAIL_BYTES).splitlines()  # bounded: a device (/dev/full) never ends
    if not lines:
        return None
    last = lines[-1]
    try:
        record = json.loads(last)
    except ValueError:
        raise AuditError(
            f"{path}: the last audit record is not valid JSON (torn write or edit); "
            f"run `guard audit verify {path}` and move the file aside"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str) or "seq" not in record:
        raise AuditError(f"{path}: the last line is not an audit record; run `guard audit verify {path}`")
    return record  # its hash or MAC is checked by `continue_chain`


class JsonlAuditSink:
    """Appends to a JSONL file. Owns the file handle and its single writer thread."""

    def __init__(
        self, path: Path, key: bytes, max_bytes: int = DEFAULT_MAX_BYTES, fsync: bool = True,
        keys: AuditKeys | None = None, anchor_path: Path | None = None, anchor_interval_s: float = 1.0,
    ) -> None:
        """`keys` MAC the chain (default: `key` under its derived id; no key: an unkeyed v1 chain)."""
        self._path = path
        self._keys = keys if keys is not None else AuditKeys(key_from(key))
        self._key = self._keys.text_key
        self._anchors = AnchorWriter(anchor_path, anchor_interval_s)
        self._max_bytes = max_bytes
        self._fsync = fsync
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-jsonl")
        self._file: IO[bytes] | None = None
        self._seq = 0
        self._prev = GENESIS
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def _kid(self) -> str | None:
        return None if self._keys.current is None else self._keys.current.kid

    def _open_sync(self) -> None:
        private_dir(self._path.parent)
        if self._path.exists() and not self._path.is_file():
            raise AuditError(f"{self._path}: the audit log must be a regular file")
        last: dict[str, object] | None = None
        if self._path.exists():
            last = _last_record(self._path)
        if last is None:
            rotated = rotated_files(self._path)
            if rotated:
                last = _last_record(rotated[-1])
        self._anchors.check_log_against(None if last is None else int(str(last["seq"])), str(self._path))
        where = str(self._path)
        continuation = continue_chain(last, self._keys, where, time.time(), self._has_keyed_sync)
        self._seq, self._prev = continuation.seq, continuation.prev
        for old in rotated_files(self._path):
            make_private(old)
        self._file = open_private_append(self._path)
        if continuation.rotation is not None:
            record = seal(continuation.rotation, self._seq, self._prev, self._keys.current)
            self._write_sync((canonical(record) + "\n").encode("ascii"))
            self._seq += 1
            self._prev = str(record["hash"])
            self._anchors.record(int(str(record["seq"])), self._prev, self._kid)

    def _has_keyed_sync(self) -> bool:
        # Only on a key meeting an unkeyed last record (a migration, or a record forged without the key).
        for path in [*rotated_files(self._path), self._path]:
            if path.exists():
                with path.open("rb") as f:
                    if any(b'"kid":' in line for line in f):
                        return True
        return False

    async def open(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open_sync)
        except OSError as exc:
            raise AuditError(f"{self._path}: cannot open audit log: {type(exc).__name__}") from None

    def _write_sync(self, line: bytes) -> None:
        if self._file is None:
            raise AuditError("audit log is closed")
        # Written with os.write on the descriptor, not through the file's buffer: a failed write (disk
        # full) must leave no partial record behind, neither in the file (cut back to the last whole
        # record) nor in a buffer that a later flush would append after the next record.
        fd = self._file.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            if self._fsync:
                os.fsync(fd)
        except OSError:
            os.ftruncate(fd, start)
            raise
        if start + len(line) >= self._max_bytes:
            self._rotate_sync()

    def _rotate_sync(self) -> None:
        if self._file is not None:
            self._file.close()
        rotated = rotated_files(self._path)
        number = int(rotated[-1].suffix[1:]) + 1 if rotated else 1
        os.rename(self._path, self._path.with_name(f"{self._path.name}.{number:06d}"))
        self._file = open_private_append(self._path)
        if self._fsync:  # make the rename durable before records land in the new file
            fsync_dir(self._path.parent)

    async def _append(self, body: dict[str, object]) -> None:
        async with self._lock:
            record = seal(body, self._seq, self._prev, self._keys.current)
            line = (canonical(record) + "\n").encode("ascii")

            def write() -> None:
                self._write_sync(line)
                self._anchors.record(int(str(record["seq"])), str(record["hash"]), self._kid)

            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, write)
            except OSError as exc:
                raise AuditError(f"{self._path}: audit write failed: {type(exc).__name__}") from None
            self._seq += 1
            self._prev = str(record["hash"])

    def text_digest(self) -> hmac.HMAC | None:
        return new_text_digest(self._key)

    async def append(self, event: DecisionEvent) -> None:
        await self._append(decision_body(event, self._key))

    async def append_review_action(self, event: ReviewActionEvent) -> None:
        await self._append(review_action_body(event))

    async def aclose(self) -> None:
        async with self._lock:
            def close() -> None:
                self._anchors.flush()
                if self._file is not None:
                    self._file.close()
                    self._file = None

            await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
