"""The bounded soak, short form: 2,000 requests at 32 concurrent through a real `guard serve` with the
default policy. Zero errors, every request counted exactly once at the upstream, resident memory after
warm-up growing under 10%, file descriptors flat. The long form is `benchmarks/soak.py` (20,000 requests);
see docs/reliability.md."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks.soak import REPO, run_soak

REQUESTS = 2000
CONCURRENCY = 32
# Keep-alive connections the client holds, the upstream pool and a few transient sockets may differ by
# a handful between samples; a leak of one fd per request would show as hundreds.
FD_SLACK = 16


@pytest.mark.soak
@pytest.mark.model
@pytest.mark.timeout(900)
def test_soak_short_form(tmp_path: Path) -> None:
    result = run_soak(REQUESTS, CONCURRENCY, 300, REPO / "policies" / "default.yaml", tmp_path)
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "soak-short.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    assert result.errors == 0, result.status_counts
    assert result.lost == 0 and result.duplicated == 0 and result.unexpected == 0, asdict(result)
    assert result.upstream_ids == REQUESTS
    assert result.rss_growth_pct < 10.0, asdict(result)
    assert result.fds_end <= result.fds_after_warmup + FD_SLACK, asdict(result)
    assert result.fds_max <= result.fds_after_warmup + CONCURRENCY + FD_SLACK, asdict(result)
