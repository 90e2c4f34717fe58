"""Under the shipped `policies/default.yaml` (real models), a caller on the pod's own loopback, the
application itself in a sidecar, cannot switch screening off with `x-guard-tier: minimal` (issue 9): the
shipped policy trusts no source for the tier header. Embeddings are screened under it too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakes.guard_process import REPO, GuardProcess
from tests.fakes.model_apis import ModelApis

pytestmark = pytest.mark.model

EMAIL, CARD = "jane.roe@example.org", "4111 1111 1111 1111"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GuardProcess, ModelApis]]:
    workdir: Path = tmp_path_factory.mktemp("default-tiers")
    with ModelApis() as upstream, GuardProcess(upstream.url, REPO / "policies" / "default.yaml", workdir) as guard:
        yield guard, upstream


@pytest.mark.parametrize("tier", ["minimal", "limited", "no-such-tier"])
def test_a_tier_header_from_loopback_does_not_lower_screening(stack: tuple[GuardProcess, ModelApis], tier: str) -> None:
    guard, upstream = stack
    upstream.reply = "Done."
    client = openai.OpenAI(base_url=guard.url + "/v1", api_key="sk-test-not-a-secret", max_retries=0,
                           default_headers={"x-guard-tier": tier})
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": f"Mail {EMAIL} about card {CARD}."}]
    )
    assert raw.headers["x-guard-decision"] == "redact"
    sent = upstream.received[-1].body.decode()
    assert EMAIL not in sent and CARD not in sent and "<EMAIL_ADDRESS>" in sent
    vectors = client.embeddings.create(model="e", input=[f"mail {EMAIL}"])
    assert len(vectors.data) == 1
    assert EMAIL not in upstream.received[-1].body.decode()
