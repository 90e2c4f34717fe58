"""Checks a hash-chained audit log and names the first record of every break it finds.

Input is an ordered sequence of sources (files, oldest first, or a table), each a sequence of lines. Per
record: valid JSON, canonical bytes, a hash that matches its content, the next `seq`, and a `prev` that is
the hash of the record before it. After a problem the check re-anchors on the record it just read, so one
deletion is reported once and independent problems further on are still found.

Keyed records (v2) are checked with the key their `kid` names (`keys`, from the same settings as the
guard: guard.audit.keys); a key id may change only through a `key_rotation` record that the old key
vouches for, and an unkeyed record after the first keyed one is a break. What a chain cannot show on its
own, records cut from the very end, is checked against `anchors` (guard.audit.anchors): the log must hold
every anchored seq, with the anchored hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from guard.audit.anchors import Anchor
from guard.audit.keys import AuditKeys
from guard.audit.records import GENESIS, canonical, check_hash, check_rotation


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


def _key_problem(record: dict[str, object], chain_kid: str | None, keyed: bool) -> str | None:
    """Why this record's key id is not the one the chain is at (None when it is)."""
    kid = record.get("kid")
    if kid is None:
        return "an unkeyed record after the chain became keyed: written without the key" if keyed else None
    if record.get("kind") == "key_rotation":
        if record.get("from_kid") != chain_kid:
            return f"a key rotation from key id '{record.get('from_kid')}' while the chain is at '{chain_kid}'"
        return None
    if keyed and kid != chain_kid:
        return f"key id '{kid}' where the chain is at '{chain_kid}', with no rotation record: the key changed"
    return None


def _check_anchors(report: Report, anchors: list[Anchor], seen: dict[int, str]) -> None:
    for anchor in anchors:
        found = seen.get(anchor.seq)
        if found is None:
            ends = "is empty" if report.last_seq is None else f"ends at seq {report.last_seq}"
            if report.last_seq is None or report.last_seq < anchor.seq:
                cut = f"seq {anchor.seq}" if report.last_seq == anchor.seq - 1 else (
                    f"seq {0 if report.last_seq is None else report.last_seq + 1}..{anchor.seq}")
                message = f"the log {ends} but the anchor names seq {anchor.seq}: {cut} cut from the end"
            else:
                message = f"the anchor names seq {anchor.seq}, which the log does not hold"
            report.problems.append(Problem(anchor.source, anchor.seq, message))
        elif found != anchor.hash:
            report.problems.append(Problem(
                anchor.source, anchor.seq, "the log's record has another hash than the anchor: the log was rewritten"
            ))


def verify(
    sources: Iterable[tuple[str, Iterable[str]]], keys: AuditKeys | None = None, anchors: Iterable[Anchor] = ()
) -> Report:
    keys = keys or AuditKeys()
    wanted = list(anchors)
    anchored = {a.seq for a in wanted}
    seen: dict[int, str] = {}  # hashes at anchored seqs only: memory stays bounded by the anchors
    report = Report()
    expected_seq = 0
    prev = GENESIS
    chain_kid: str | None = None
    keyed = False
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
            hash_problem = check_hash(record, keys)
            key_problem = _key_problem(record, chain_kid, keyed)
            if hash_problem is not None:
                report.problems.append(Problem(where, seq, hash_problem))
            elif key_problem is not None:
                report.problems.append(Problem(where, seq, key_problem))
            elif record.get("kind") == "key_rotation" and (rotation := check_rotation(record, keys)) is not None:
                report.problems.append(Problem(where, seq, rotation))
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
            if record.get("kid") is not None:
                keyed = True
                chain_kid = str(record["to_kid"] if record.get("kind") == "key_rotation" else record["kid"])
            if seq in anchored:
                seen[seq] = prev
            report.last_seq = seq
            report.last_hash = prev
    _check_anchors(report, wanted, seen)
    return report
