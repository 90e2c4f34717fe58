"""`guard audit verify FILE...`: check a hash-chained audit log; exit 0 when intact, 1 when not.

Give the files oldest first (rotated files, then the active one: `guard audit verify audit.jsonl.0* audit.jsonl`)
or a `postgresql://` DSN for the shared table. Every break is printed with the file, line and record seq.

A keyed log is checked with the guard's own settings: `GUARD_AUDIT_HMAC_KEY` (and `GUARD_AUDIT_KEY_ID`),
plus `GUARD_AUDIT_PREVIOUS_HMAC_KEY` (and `_PREVIOUS_KEY_ID`) across a rotation. `--anchor FILE` (the
anchor the guard wrote with `--audit-anchor`, as shipped elsewhere) also catches a tail cut from the log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from guard.audit.anchors import Anchor, read_anchors
from guard.audit.factory import is_postgres
from guard.audit.keys import keys_from_env
from guard.audit.postgres import table_lines
from guard.audit.verify import Report, verify
from guard.errors import AuditError

EXIT_OK, EXIT_BROKEN, EXIT_UNREADABLE = 0, 1, 2


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    check = sub.add_parser("verify", help="check the hash chain; names every edited, deleted, inserted or moved record")
    check.add_argument("sources", nargs="+", metavar="FILE", help="log files oldest first, or a postgresql:// DSN")
    check.add_argument(
        "--anchor", action="append", type=Path, default=[], metavar="FILE",
        help="an anchor file the guard wrote (--audit-anchor); the log must hold its seq and hash",
    )


def _file_lines(path: Path) -> Iterator[str]:
    with path.open("r", encoding="ascii", errors="replace", newline="\n") as f:
        yield from f


async def _table(dsn: str) -> list[str]:
    return [line async for line in table_lines(dsn)]


def run(args: argparse.Namespace) -> int:
    sources: list[tuple[str, object]] = []
    anchors: list[Anchor] = []
    try:
        keys = keys_from_env(os.environ)
        for path in getattr(args, "anchor", []):
            anchors.extend(read_anchors(path))
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    for source in args.sources:
        if is_postgres(source):
            try:
                sources.append(("table guard_audit", asyncio.run(_table(source))))
            except AuditError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_UNREADABLE
            continue
        path = Path(source)
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return EXIT_UNREADABLE
        sources.append((str(path), _file_lines(path)))
    try:
        report: Report = verify(((name, lines) for name, lines in sources), keys, anchors)  # type: ignore[misc]
    except OSError as exc:
        print(f"error: cannot read the log: {type(exc).__name__}", file=sys.stderr)
        return EXIT_UNREADABLE
    if report.ok:
        print(
            f"ok: {report.records} records in {report.sources} source(s); "
            f"last seq {report.last_seq}, last hash {report.last_hash}"
        )
        return EXIT_OK
    for problem in report.problems:
        print(f"BROKEN {problem}")
    print(f"{len(report.problems)} problem(s) in {report.records} records", file=sys.stderr)
    return EXIT_BROKEN
