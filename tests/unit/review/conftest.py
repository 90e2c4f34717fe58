"""Stores under test: a real SQLite file and a real PostgreSQL database, each opened and closed here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from guard.review.factory import store_for
from guard.review.store import ReviewStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ReviewStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/review.db"
    else:
        url = request.getfixturevalue("postgres_dsn")
    opened = store_for(url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.aclose()
