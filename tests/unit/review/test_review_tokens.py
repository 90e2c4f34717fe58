"""Token files: valid entries authenticate by hash; bad files name the file and line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from guard.errors import ConfigError
from guard.review.tokens import Role, load_tokens


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    return path


def test_tokens_authenticate_by_sha256(tmp_path: Path) -> None:
    path = write(tmp_path, f"- {{name: alice, role: reviewer, token_sha256: {sha('s3cret-a')}}}\n"
                           f"- name: root\n  role: admin\n  token_sha256: {sha('s3cret-b')}\n")
    tokens = load_tokens(path)
    assert len(tokens) == 2
    alice = tokens.authenticate("s3cret-a")
    assert alice is not None and alice.name == "alice" and alice.role is Role.REVIEWER
    root = tokens.authenticate("s3cret-b")
    assert root is not None and root.role.can_unmask
    assert tokens.authenticate("s3cret-c") is None
    assert tokens.authenticate(sha("s3cret-a")) is None  # the hash itself is not a token


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- {name: a, role: reviewer, token_sha256: abc}\n", r"tokens.yaml:1: field 'token_sha256'"),
        (f"- {{name: a, role: reviewer, token_sha256: {sha('x')}}}\n- {{name: b, role: boss, token_sha256: {sha('y')}}}\n",
         r"tokens.yaml:2: field 'role'"),
        (f"- name: a\n  role: reviewer\n  token_sha256: {sha('x')}\n  extra: 1\n", r"tokens.yaml:\d: field 'extra'"),
        ("name: a\n", r"tokens.yaml:1: the tokens file must be a YAML list"),
        ("- [a, b\n", r"tokens.yaml:\d+: not valid YAML"),
        ("[]\n", r"lists no tokens"),
        (f"- {{name: a, role: reviewer, token_sha256: {sha('x')}}}\n- {{name: b, role: admin, token_sha256: {sha('x')}}}\n",
         r"tokens.yaml:2: token_sha256 repeats the entry on line 1"),
    ],
)
def test_bad_token_files_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_tokens(write(tmp_path, text))


def test_an_all_digit_hash_is_read_as_written(tmp_path: Path) -> None:
    digits = "0" * 63 + "7"
    tokens = load_tokens(write(tmp_path, f"- {{name: a, role: auditor, token_sha256: {digits}}}\n"))
    assert len(tokens) == 1


def test_bad_value_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_tokens(write(tmp_path, "- {name: a, role: reviewer, token_sha256: plaintext-token-oops}\n"))
    assert "plaintext-token-oops" not in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read tokens file"):
        load_tokens(tmp_path / "absent.yaml")
