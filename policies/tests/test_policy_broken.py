"""Broken policy files fail with the exact `FILE:LINE: field: message` their first line expects.

Each `broken/*.yaml` starts with `# expect: <substring of the error>`; the file's name and line are part
of the expectation, so a change that points operators at the wrong place fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.errors import ConfigError
from guard.policy.load import load_policy

BROKEN = sorted((Path(__file__).resolve().parent / "broken").glob("*.yaml"))


def test_there_are_broken_cases() -> None:
    assert len(BROKEN) >= 15


@pytest.mark.parametrize("path", BROKEN, ids=[p.name for p in BROKEN])
def test_broken_policy_fails_with_the_expected_message(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <message>'"
    expected = first.removeprefix("# expect: ")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    message = str(info.value)
    assert f"/broken/{expected}" in message, message
