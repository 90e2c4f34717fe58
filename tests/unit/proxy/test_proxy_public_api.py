"""The public surface: `from guard import GuardMiddleware, Guard` and a checked `__all__`; importing
`guard` stays cheap (no web client, no models) because names load on first use."""

from __future__ import annotations

import subprocess
import sys

import guard


def test_all_is_exact_and_every_name_resolves() -> None:
    assert guard.__all__ == sorted(guard.__all__)
    assert set(guard.__all__) == {
        "Action", "Decision", "Direction", "Guard", "GuardApp", "GuardMiddleware", "GuardSettings", "Verdict",
        "create_app",
    }
    for name in guard.__all__:
        assert getattr(guard, name).__name__ == name


def test_documented_import_line() -> None:
    from guard import Guard, GuardMiddleware

    assert callable(GuardMiddleware)
    assert hasattr(Guard, "from_policy")


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        guard.NotAThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NotAThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_guard_is_cheap() -> None:
    code = "import sys, guard; print(sorted(m for m in ('aiohttp', 'torch', 'presidio_analyzer', 'uvicorn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert out == "[]"
