"""Audit anchors: the chain's last `seq` and `hash`, written to a second place so a cut tail shows.

A chain proves what it holds, not that nothing was cut from its end. The sink therefore publishes, at
most every `interval_s` and when it closes, an anchor: one JSON line `{"seq", "hash", "kid", "time"}`
in `--audit-anchor FILE` (replaced atomically, mode 0600; the operator ships it elsewhere, e.g. a log
collector or object store) and as a log line (`audit anchor`, with seq and hash). `guard audit verify
--anchor FILE` fails when the log ends before an anchored seq or holds another hash there; a restarting
sink refuses a log that ends before its own anchor.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from guard.errors import AuditError
from guard.files import write_private_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    source: str = ""  # where it was read from, for messages

    def to_line(self, kid: str | None, now: float) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "kid": kid, "time": round(now, 3)},
                          sort_keys=True, separators=(",", ":"))


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor line of `path` (an operator may concatenate shipped copies). `AuditError` if unreadable."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{path}: cannot read the audit anchor: {type(exc).__name__}") from None
    anchors: list[Anchor] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            anchors.append(Anchor(int(raw["seq"]), str(raw["hash"]), f"{path}:{number}"))
        except (ValueError, KeyError, TypeError):
            raise AuditError(f"{path}:{number}: not an audit anchor (want {{\"seq\": N, \"hash\": ...}})") from None
    return anchors


class AnchorWriter:
    """Publishes anchors for one sink. Called on the sink's writer thread only (no locking here)."""

    def __init__(self, path: Path | None, interval_s: float) -> None:
        self._path = path
        self._interval_s = interval_s
        self._last_written = 0.0
        self._pending: tuple[int, str, str | None] | None = None

    def check_log_against(self, last_seq: int | None, where: str) -> None:
        """Refuse to continue a log that ends before the anchor this sink last published."""
        if self._path is None or not self._path.exists():
            return
        for anchor in read_anchors(self._path):
            if last_seq is None or last_seq < anchor.seq:
                ends = "is empty" if last_seq is None else f"ends at seq {last_seq}"
                raise AuditError(
                    f"{where}: the audit log {ends} but its anchor {anchor.source} names seq {anchor.seq}: records "
                    "were cut from the end; run `guard audit verify --anchor` and restore the log"
                )

    def record(self, seq: int, hash_: str, kid: str | None) -> None:
        self._pending = (seq, hash_, kid)
        if time.monotonic() - self._last_written >= self._interval_s:
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        seq, hash_, kid = self._pending
        self._pending = None
        self._last_written = time.monotonic()
        log.info("audit anchor", extra={"seq": seq, "hash": hash_, "kid": kid})
        if self._path is not None:
            try:
                write_private_atomically(self._path, (Anchor(seq, hash_).to_line(kid, time.time()) + "\n").encode())
            except OSError as exc:
                # The record itself is written; a missing anchor only weakens truncation detection: say so.
                log.error("audit anchor write failed", extra={"error_type": type(exc).__name__})

