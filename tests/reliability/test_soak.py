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
# Under load the guard holds up to one client and one pooled upstream connection per concurrent request;
# once idle connections time out it must be back where it was before the first request (a leak of one
# fd per request would show as hundreds).
FD_SLACK = 4


@pytest.mark.soak
@pytest.mark.model
@pytest.mark.timeout(900)
def test_soak_short_form(tmp_path: Path) -> None:
    result = run_soak(REQUESTS, CONCURRENCY, 300, REPO / "policies" / "default.yaml", tmp_path)
    # What the guard did: every request answered, each reached the upstream exactly once.
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "soak-short.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    assert result.errors == 0, result.status_counts
    assert result.lost == 0 and result.duplicated == 0 and result.unexpected == 0, asdict(result)
    assert result.upstream_ids == REQUESTS
    assert result.rss_growth_pct < 10.0, asdict(result)
    assert result.fds_max <= result.fds_idle + 2 * CONCURRENCY + FD_SLACK, asdict(result)
    assert result.fds_settled <= result.fds_idle + FD_SLACK, asdict(result)
