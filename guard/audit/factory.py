"""`open_audit_sink(spec, key)`: the audit sink `guard serve --audit SPEC` names.

`SPEC` is a file path (JSONL, rotated at 64 MiB) or a `postgresql://` DSN (the shared table). The sink is
opened (its chain continued) before it is returned; failures are `AuditError` and stop the start-up.
"""

from __future__ import annotations

from pathlib import Path

from guard.audit.base import ReviewAuditSink
from guard.audit.jsonl import DEFAULT_MAX_BYTES, JsonlAuditSink
from guard.audit.keys import AuditKeys
from guard.audit.postgres import PostgresAuditSink


def is_postgres(spec: str) -> bool:
    return spec.startswith(("postgresql://", "postgres://"))


def audit_sink_for(
    spec: str, key: bytes, max_bytes: int = DEFAULT_MAX_BYTES, keys: AuditKeys | None = None,
    anchor_path: Path | None = None, anchor_interval_s: float = 1.0,
) -> JsonlAuditSink | PostgresAuditSink:
    """Construct (no I/O) the sink `spec` names; `await sink.open()` before the first append. `keys`
    (default: `key` under its derived id) MAC the chain; `anchor_path` receives its anchors."""
    if is_postgres(spec):
        return PostgresAuditSink(spec, key, keys, anchor_path, anchor_interval_s)
    return JsonlAuditSink(
        Path(spec), key, max_bytes=max_bytes, keys=keys, anchor_path=anchor_path, anchor_interval_s=anchor_interval_s
    )


async def open_audit_sink(
    spec: str, key: bytes, max_bytes: int = DEFAULT_MAX_BYTES, keys: AuditKeys | None = None,
    anchor_path: Path | None = None,
) -> ReviewAuditSink:
    sink = audit_sink_for(spec, key, max_bytes, keys, anchor_path)
    try:
        await sink.open()
    except BaseException:
        await sink.aclose()  # a refused log (forged, re-keyed, cut) must not leave a connection behind
        raise
    return sink
