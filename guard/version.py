"""The installed guard's version, read from its distribution's metadata (one place for the CLI and the app)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# The PyPI distribution name (`guard` on PyPI is an unrelated project); the command and the import
# package stay `guard`.
DISTRIBUTION = "guard-runtime"


def guard_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
