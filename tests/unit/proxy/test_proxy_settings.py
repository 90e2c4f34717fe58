"""`GuardSettings`: frozen, unknown keys refused, timeouts explicit and bounded, upstream URL sane."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from guard.settings import GuardSettings


def test_defaults_and_frozen() -> None:
    settings = GuardSettings(upstream_url="http://127.0.0.1:8000")  # type: ignore[arg-type]
    assert (settings.port, settings.admin_port) == (8080, 8081)
    assert settings.upstream_connect_timeout_s > 0 and settings.upstream_pool_timeout_s > 0
    assert settings.upstream_read_timeout_s > 0 and settings.upstream_write_timeout_s > 0
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "fields",
    [
        {"upstream_url": "not a url"},
        {"upstream_url": "ftp://x"},
        {"upstream_url": "http://x/?q=1"},
        {"upstream_url": "http://x", "port": 70000},
        {"upstream_url": "http://x", "upstream_read_timeout_s": 0},
        {"upstream_url": "http://x", "surprise": 1},
    ],
)
def test_bad_settings_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GuardSettings(**fields)  # type: ignore[arg-type]
