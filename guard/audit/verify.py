"""Checks a hash-chained audit log and names the first record of every break it finds.

Input is an ordered sequence of sources (files, oldest first, or a table), each a sequence of lines. Per
record: valid JSON, canonical bytes, a hash that matches its content, the next `seq`, and a `prev` that is
the hash of the record before it. After a problem the check re-anchors on the record it just read, so one
deletion is reported once and independent problems further on are still found.

What a chain cannot show on its own: records cut from the very end (keep the last `seq` and hash that
`verify` prints somewhere else, and compare).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from guard.audit.records import GENESIS, canonical, record_hash


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "file:line"
    seq: int | None
    message: str

    def __str__(self) -> str:
        seq = "" if self.seq is None else f" (record seq {self.seq})"
        return f"{self.where}{seq}: {self.message}"


@dataclass(slots=True)
class Report:
    records: int = 0
    sources: int = 0
    last_seq: int | None = None
    last_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(sources: Iterable[tuple[str, Iterable[str]]]) -> Report:
    report = Report()
    expected_seq = 0
    prev = GENESIS
    lost = False  # the line before could not be read: the next record re-anchors without a link check
    for name, lines in sources:
        report.sources += 1
        for number, line in enumerate(lines, start=1):
            where = f"{name}:{number}"
            line = line.rstrip("\n")
            if not line.strip():
                report.problems.append(Problem(where, None, "empty line inside the log (a record was removed?)"))
                lost = True
                continue
            try:
                record = json.loads(line)
            except ValueError:
                report.problems.append(Problem(where, None, "not valid JSON: the record was edited or torn"))
                lost = True
                continue
            seq = record.get("seq") if isinstance(record, dict) else None
            if not isinstance(record, dict) or not isinstance(seq, int) or not isinstance(record.get("hash"), str):
                report.problems.append(Problem(where, None, "not an audit record (no seq or hash)"))
                lost = True
                continue
            report.records += 1
            if record["hash"] != record_hash(record):
                report.problems.append(Problem(where, seq, "hash does not match the content: the record was edited"))
            elif canonical(record) != line:
                report.problems.append(Problem(where, seq, "bytes are not canonical: the record was edited"))
            if lost:
                lost = False
            elif seq > expected_seq:
                missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}..{seq - 1}"
                report.problems.append(Problem(
                    where, seq, f"comes where seq {expected_seq} was expected: {missing} deleted or moved"
                ))
            elif seq < expected_seq:
                report.problems.append(Problem(
                    where, seq,
                    f"out of order: seq {expected_seq} was expected; a record was inserted or reordered here",
                ))
            elif record.get("prev") != prev:
                report.problems.append(Problem(
                    where, seq, "does not link to the record before it (prev hash differs): a record before "
                    "it was replaced, inserted or reordered",
                ))
            # Re-anchor on this record so the next one is judged against what is actually here.
            expected_seq = max(expected_seq, seq + 1)
            prev = str(record["hash"])
            report.last_seq = seq
            report.last_hash = prev
    return report
