"""A keyed, anchored audit chain against forgery (issue 15, deliver 5), on logs a real `guard serve` wrote.

With the guard stopped, an attacker who can write the log but does not hold GUARD_AUDIT_HMAC_KEY appends a
record with its hash recomputed, verifies with another key, or cuts the tail. `guard audit verify` (same
key settings, `--anchor` the guard's anchor file) fails on each and names the record; the restarted guard
refuses to chain onto a forged or cut log. A key rotation is a record in the chain, and the log verifies
across it given both keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guard.audit.jsonl import JsonlAuditSink
from guard.audit.keys import AuditKeys, key_from
from guard.audit.records import canonical
from guard.errors import AuditError
from tests.fakes.fault_policy import CHAT, chat, fault_policy, write_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import GuardProcess

KEY, OTHER_KEY = "audit-key-A-5b1e0c9f2d7a4e63", "audit-key-B-0d9c7e5a3b1f8264"
KEY_ENV = {"GUARD_AUDIT_HMAC_KEY": KEY, "GUARD_AUDIT_KEY_ID": "2026-a"}


def _run_guard(upstream: str, workdir: Path, env: dict[str, str], requests: int) -> GuardProcess:
    policy = write_policy(workdir / "policy.yaml", fault_policy())
    args = ["--audit", str(workdir / "audit.jsonl"), "--audit-anchor", str(workdir / "anchor.json")]
    guard = GuardProcess(upstream, policy, workdir, extra_args=args, env=env)
    with guard:
        with httpx.Client(timeout=10) as client:
            for i in range(requests):
                assert client.post(guard.url + CHAT, json=chat(f"hello {i}")).status_code == 200
    assert guard.proc is not None and guard.proc.returncode == 0, guard.logs()[-2000:]
    return guard


def verify_cli(log: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUARD_AUDIT_")}
    return subprocess.run(
        [sys.executable, "-m", "guard", "audit", "verify", str(log), *extra],
        capture_output=True, text=True, env={**clean, **env}, timeout=60,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A log and anchor from a real guard: 6 requests, an input and an output record each."""
    workdir = tmp_path_factory.mktemp("audit")
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        _run_guard(upstream.url, workdir, KEY_ENV, 6)
    yield workdir


def _copy(written: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copy(written / "audit.jsonl", tmp_path / "audit.jsonl")
    shutil.copy(written / "anchor.json", tmp_path / "anchor.json")
    return tmp_path / "audit.jsonl", tmp_path / "anchor.json"


def _records(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_an_untouched_log_verifies_with_the_key_and_its_anchor(written: Path) -> None:
    log, anchor = written / "audit.jsonl", written / "anchor.json"
    records = _records(log)
    assert len(records) == 12 and all(r["kid"] == "2026-a" and r["v"] == 2 for r in records)
    assert json.loads(anchor.read_text())["seq"] == 11
    ok = verify_cli(log, KEY_ENV, "--anchor", str(anchor))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("ok: 12 records")


def test_a_forged_record_with_a_recomputed_hash_is_named_and_the_guard_will_not_chain_onto_it(
    written: Path, tmp_path: Path
) -> None:
    log, anchor = _copy(written, tmp_path)
    last = _records(log)[-1]
    forged = {**last, "seq": 12, "prev": last["hash"], "action": "allow", "request_id": "forged"}
    for drop_kid in (False, True):  # keeping the key id, or posing as an unkeyed (v1) record
        record = {k: v for k, v in forged.items() if k != "hash" and not (drop_kid and k == "kid")}
        record["hash"] = hashlib.sha256(canonical(record).encode()).hexdigest()  # what an attacker can compute
        lines = log.read_text().splitlines()[:12]
        log.write_text("\n".join([*lines, canonical(record)]) + "\n")
        broken = verify_cli(log, KEY_ENV, "--anchor", str(anchor))
        assert broken.returncode == 1
        assert f"BROKEN {log}:13 (record seq 12): " in broken.stdout, broken.stdout
        keys = AuditKeys(key_from(KEY.encode(), "2026-a"))
        with pytest.raises(AuditError):
            asyncio.run(JsonlAuditSink(log, KEY.encode(), keys=keys).open())
    # The real guard refuses to start on it (exit 2, the reason on stderr), rather than chain onto it.
    policy = write_policy(tmp_path / "policy.yaml", fault_policy())
    guard = GuardProcess(
        "http://127.0.0.1:9", policy, tmp_path, extra_args=["--audit", str(log)], env=KEY_ENV, ready_timeout_s=60
    )
    guard.start(wait_ready=False)
    assert guard.wait_exit(60) == 2
    assert "audit record (seq 12)" in guard.logs()


def test_a_changed_key_fails_verification_at_the_first_record(written: Path) -> None:
    broken = verify_cli(written / "audit.jsonl", {"GUARD_AUDIT_HMAC_KEY": OTHER_KEY, "GUARD_AUDIT_KEY_ID": "2026-a"})
    assert broken.returncode == 1
    assert f"BROKEN {written / 'audit.jsonl'}:1 (record seq 0): MAC does not match" in broken.stdout
    no_key = verify_cli(written / "audit.jsonl", {})
    assert no_key.returncode == 1 and "no key with that id was given" in no_key.stdout
    # A guard started with another key refuses the log instead of writing records nobody can verify.
    with pytest.raises(AuditError, match="to rotate keys"):
        asyncio.run(JsonlAuditSink(written / "audit.jsonl", OTHER_KEY.encode()).open())


def test_a_truncated_tail_fails_against_the_anchor(written: Path, tmp_path: Path) -> None:
    log, anchor = _copy(written, tmp_path)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:9]))  # seq 9..11 cut
    assert verify_cli(log, KEY_ENV).returncode == 0  # the chain alone cannot see it: hence the anchor
    broken = verify_cli(log, KEY_ENV, "--anchor", str(anchor))
    assert broken.returncode == 1
    assert f"BROKEN {anchor}:1 (record seq 11): the log ends at seq 8 but the anchor names seq 11: seq 9..11 cut" \
        in broken.stdout
    keys = AuditKeys(key_from(KEY.encode(), "2026-a"))
    with pytest.raises(AuditError, match="cut from the end"):
        asyncio.run(JsonlAuditSink(log, KEY.encode(), keys=keys, anchor_path=anchor).open())


def test_a_key_rotation_is_recorded_and_verifies_with_both_keys(written: Path, tmp_path: Path) -> None:
    _copy(written, tmp_path)
    rotated_env = {
        "GUARD_AUDIT_HMAC_KEY": OTHER_KEY, "GUARD_AUDIT_KEY_ID": "2026-b",
        "GUARD_AUDIT_PREVIOUS_HMAC_KEY": KEY, "GUARD_AUDIT_PREVIOUS_KEY_ID": "2026-a",
    }
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        _run_guard(upstream.url, tmp_path, rotated_env, 2)
    log, anchor = tmp_path / "audit.jsonl", tmp_path / "anchor.json"
    records = _records(log)
    rotation = records[12]
    assert rotation["kind"] == "key_rotation" and rotation["from_kid"] == "2026-a" and rotation["to_kid"] == "2026-b"
    assert [r["kid"] for r in records[13:]] == ["2026-b"] * 4
    ok = verify_cli(log, rotated_env, "--anchor", str(anchor))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("ok: 17 records")
    only_new = verify_cli(log, {"GUARD_AUDIT_HMAC_KEY": OTHER_KEY, "GUARD_AUDIT_KEY_ID": "2026-b"})
    assert only_new.returncode == 1 and f"{log}:1 (record seq 0)" in only_new.stdout
