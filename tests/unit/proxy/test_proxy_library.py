"""`Guard`, the library call: the same detectors, policy and decision as the proxy, without HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from guard import Direction, Guard
from guard.errors import ConfigError
from guard.types import Action
from tests.integration.proxy_harness import MARKER, marker_policy


def test_screen_and_redact(tmp_path: Path) -> None:
    async def go() -> None:
        async with await Guard.from_policy(marker_policy(tmp_path, output_action="block")) as guard:
            texts = [f"a {MARKER} b", "clean"]
            decision = await guard.screen(texts, direction=Direction.INPUT)
            assert decision.action is Action.REDACT
            assert guard.redact(texts, decision) == ["a <MARKER> b", "clean"]
            output = await guard.screen(f"out {MARKER}", direction=Direction.OUTPUT)
            assert output.action is Action.BLOCK
            assert guard.redact("x", await guard.screen("x")) == ["x"]
            with pytest.raises(ConfigError):
                await guard.screen("x", tier="no_such_tier")

    asyncio.run(go())
