"""JSONL audit sink + verifier: real files, real edits; every kind of tampering is found and named."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest

from guard.audit.base import ReviewActionEvent
from guard.audit.jsonl import JsonlAuditSink, rotated_files
from guard.audit.keys import AuditKeys, derived_kid, key_from
from guard.audit.verify import verify
from guard.commands.audit import run as run_verify
from guard.errors import AuditError
from guard.types import Action
from tests.unit.audit.audit_samples import CARD, EMAIL, event

pytestmark = pytest.mark.anyio
KEY = b"audit-key-for-tests-0123456789ab"
KEYS = AuditKeys(key_from(KEY))  # the chain is MACed with the key (guard.audit.keys); verify needs it too
ENV = {"GUARD_AUDIT_HMAC_KEY": KEY.decode()}


async def write_log(path: Path, n: int, **kwargs: object) -> JsonlAuditSink:
    sink = JsonlAuditSink(path, KEY, **kwargs)  # type: ignore[arg-type]
    await sink.open()
    for i in range(n):
        await sink.append(event(i, action=Action.BLOCK if i % 3 == 0 else Action.ALLOW))
    await sink.aclose()
    return sink


def check(*paths: Path) -> list[str]:
    report = verify(((str(p), p.read_text().splitlines()) for p in paths), KEYS)
    return [str(p) for p in report.problems]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


async def test_records_hold_what_the_issue_lists_and_no_raw_text(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_log(path, 3)
    raw = path.read_text()
    for secret in (CARD, CARD.replace(" ", ""), EMAIL, "PIIMARK", "quillon"):
        assert secret not in raw
    first = json.loads(raw.splitlines()[0])
    assert first["seq"] == 0 and first["prev"] == "0" * 64
    assert first["request_id"] == "req-0" and first["tier"] == "high" and first["policy_version"] == "2026.11.1"
    assert first["detectors"] == {"pii": "presidio-2.2"} and first["action"] == "block"
    [finding] = first["findings"]
    assert finding["category"] == "pii" and finding["entity_type"] == "CREDIT_CARD"
    assert finding["threshold"] == 0.9 and finding["start"] == event(0).texts[0].index(CARD) and finding["score"] == 0.97
    text = event(0).texts[0]
    assert first["text_hmac"] == [hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()]


async def test_an_intact_log_verifies_and_the_chain_continues_after_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARD_AUDIT_HMAC_KEY", KEY.decode())
    path = tmp_path / "audit.jsonl"
    await write_log(path, 4)
    await write_log(path, 3)  # a restarted guard continues the chain
    assert check(path) == []
    assert [json.loads(x)["seq"] for x in lines(path)] == list(range(7))
    assert run_verify(type("A", (), {"sources": [str(path)]})()) == 0


async def test_one_edited_byte_is_found_and_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_log(path, 6)
    data = bytearray(path.read_bytes())
    line4 = sum(len(x) for x in lines(path)[:3])
    offset = data.index(b'"score":0.97', line4) + len('"score":0.9')
    data[offset] = ord("1")  # 0.97 -> 0.91: still valid JSON
    path.write_bytes(bytes(data))
    problems = check(path)
    assert problems == [
        f"{path}:4 (record seq 3): MAC does not match the content under key '{derived_kid(KEY)}': "
        "the record was edited or forged (hash recomputed), or the key changed"
    ]


async def test_an_edit_that_breaks_the_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_log(path, 5)
    data = bytearray(path.read_bytes())
    data[len(lines(path)[0]) + 1] = ord("}")
    path.write_bytes(bytes(data))
    assert check(path) == [f"{path}:2: not valid JSON: the record was edited or torn"]


async def test_a_deleted_record_is_found_and_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_log(path, 6)
    kept = lines(path)
    del kept[2]
    path.write_text("".join(kept))
    assert check(path) == [f"{path}:3 (record seq 3): comes where seq 2 was expected: seq 2 deleted or moved"]


async def test_two_swapped_records_are_found_and_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_log(path, 6)
    kept = lines(path)
    kept[2], kept[3] = kept[3], kept[2]
    path.write_text("".join(kept))
    problems = check(path)
    assert problems[0].startswith(f"{path}:3 (record seq 3): comes where seq 2 was expected")
    assert problems[1].startswith(f"{path}:4 (record seq 2): out of order")


async def test_an_inserted_record_is_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_log(path, 5)
    kept = lines(path)
    kept.insert(3, kept[1])  # a replayed copy
    path.write_text("".join(kept))
    assert check(path)[0].startswith(f"{path}:4 (record seq 1): out of order")


async def test_a_forged_relinked_record_breaks_the_next_link(tmp_path: Path) -> None:
    from guard.audit.records import canonical, seal

    path = tmp_path / "audit.jsonl"
    await write_log(path, 4)
    kept = lines(path)
    original = json.loads(kept[1])
    forged = {k: v for k, v in original.items() if k not in ("hash", "seq", "prev", "v")}
    forged["action"] = "block" if original["action"] == "allow" else "allow"
    # A self-consistent rewrite by someone holding the key (without it, the record itself fails its MAC:
    # tests/security/test_audit_forgery.py).
    kept[1] = canonical(seal(forged, original["seq"], original["prev"], KEYS.current)) + "\n"
    path.write_text("".join(kept))
    assert check(path) == [
        f"{path}:3 (record seq 2): does not link to the record before it (prev hash differs): a record before "
        "it was replaced, inserted or reordered"
    ]


async def test_rotation_keeps_one_chain_across_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlAuditSink(path, KEY, max_bytes=2000)
    await sink.open()
    for i in range(12):
        await sink.append(event(i))
    await sink.append_review_action(ReviewActionEvent(1.0, "rid", "req-1", "decide", "alice", "reviewer", "approve"))
    await sink.aclose()
    files = [*rotated_files(path), path]
    assert len(files) >= 3
    assert check(*files) == []
    # continuing after a restart picks up the newest file's chain, even when the active file is empty
    sink = JsonlAuditSink(path, KEY, max_bytes=2000)
    await sink.open()
    await sink.append(event(99))
    await sink.aclose()
    files = [*rotated_files(path), path]
    assert check(*files) == []
    # leaving a rotated file out is a break, named at the first record after the gap
    problems = check(files[0], *files[2:])
    assert len(problems) == 1 and "deleted or moved" in problems[0] and str(files[2]) in problems[0]


async def test_a_torn_last_record_stops_the_sink_from_starting(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_log(path, 2)
    with path.open("a") as f:
        f.write('{"seq": 2, "prev": "ab')
    sink = JsonlAuditSink(path, KEY)
    with pytest.raises(AuditError, match="not valid JSON"):
        await sink.open()


def test_the_cli_names_the_broken_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    import subprocess
    import sys

    path = tmp_path / "audit.jsonl"
    asyncio.run(write_log(path, 4))
    cli = [sys.executable, "-m", "guard", "audit", "verify", str(path)]
    ok = subprocess.run(cli, capture_output=True, text=True, env={**os.environ, **ENV})
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 4 records")
    kept = lines(path)
    del kept[1]
    path.write_text("".join(kept))
    broken = subprocess.run(cli, capture_output=True, text=True, env={**os.environ, **ENV})
    assert broken.returncode == 1
    assert f"BROKEN {path}:2 (record seq 2): comes where seq 1 was expected" in broken.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "guard", "audit", "verify", str(tmp_path / "nope")], capture_output=True, text=True,
        env={**os.environ, **ENV},
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr


async def test_the_log_its_rotations_and_the_anchor_are_private(tmp_path: Path) -> None:
    import os
    import stat

    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "logs" / "audit.jsonl"
        anchor = tmp_path / "anchors" / "anchor.json"
        sink = JsonlAuditSink(path, KEY, max_bytes=2000, anchor_path=anchor, anchor_interval_s=0.001)
        await sink.open()
        for i in range(12):
            await sink.append(event(i))
        await sink.aclose()
    finally:
        os.umask(old_umask)
    files = [*rotated_files(path), path, anchor]
    assert len(files) >= 4
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    assert {stat.S_IMODE(d.stat().st_mode) for d in (path.parent, anchor.parent)} == {0o700}
    assert json.loads(anchor.read_text())["seq"] == 11
