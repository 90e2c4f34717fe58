"""The API surfaces beside chat completions, through a real `guard serve` on loopback (issue 9): embeddings
through the official `openai` SDK, Ollama chat/generate as JSON and NDJSON streams, Azure deployment paths
with `?api-version=`, `pass` routes counted, unknown paths with a body refused API-shaped, route tiers a
header cannot lower, and `--upstream` with a path prefix.

The policy is built from the shipped `policies/default.yaml`: its `routes`, `unknown_routes`, tier header,
tier order and default tier as shipped; only the detectors are presidio's pattern recognizers (no NLP
model, fast) and the tier tables are small: `limited` redacts personal data, `high` blocks it. Two test
routes are added: `/strict/api/chat` (tier `high`) and a copy of chat with the tier header trusted, to
prove the floor holds against a header a trusted source sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.fakes.fault_policy import MARKER
from tests.fakes.guard_process import REPO, GuardProcess
from tests.fakes.model_apis import ModelApis

EMAIL, PHONE, CARD = "jane.roe@example.org", "212-555-0199", "4111 1111 1111 1111"
PLANTED = (EMAIL, PHONE, CARD)
PROMPT = f"Write to {EMAIL}, call {PHONE}, and charge {CARD}."
PII = {"medium": {"min_score": 0.4, "action": "redact"}}
BLOCK = {"medium": {"min_score": 0.4, "action": "block"}}


PRESIDIO = {"kind": "presidio_pii", "name": "pii", "nlp": "patterns", "min_score": 0.4,
            "entities": ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"]}
# Starts in a second, where presidio takes tens on a busy machine: for the tests about tiers and forwarding.
MARKER_DETECTOR = {"kind": "plugin", "name": "marker", "factory": "tests.fakes.detectors:FaultDetector",
                   "reports": ["pii"], "settings": {"mode": "find", "marker": MARKER, "delay_s": 30.0}}


def surface_policy(trusted: list[str] | None = None, detector: dict[str, Any] = PRESIDIO) -> dict[str, Any]:
    shipped = yaml.safe_load((REPO / "policies" / "default.yaml").read_text())
    routes = [*shipped["routes"], {"name": "strict_ollama", "path": "/strict/api/chat",
                                   "codec": {"kind": "ollama_chat"}, "tier": "high"}]
    tier_header = dict(shipped["tier_header"])
    if trusted is not None:
        tier_header["trusted_sources"] = trusted
    return {
        "name": "surfaces",
        "version": "1",
        "detectors": [detector],
        "default_tier": shipped["default_tier"],
        "tier_order": shipped["tier_order"],
        "tier_header": tier_header,
        "routes": routes,
        "unknown_routes": shipped["unknown_routes"],
        "tiers": {
            "minimal": {},
            "limited": {"input": {"pii": PII}, "output": {"pii": PII}},
            "high": {"stream": {"window_chars": 0, "overlap_chars": 32}, "input": {"pii": BLOCK},
                     "output": {"pii": BLOCK}},
        },
    }


def _start(upstream: str, policy: dict[str, Any], workdir: Path, name: str) -> GuardProcess:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return GuardProcess(upstream, path, workdir)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GuardProcess, ModelApis]]:
    workdir = tmp_path_factory.mktemp("surfaces")
    with ModelApis() as upstream, _start(upstream.url, surface_policy(), workdir, "p") as guard:
        yield guard, upstream


def _clean(text: str) -> None:
    for value in PLANTED:
        assert value not in text, value


def _sdk(guard: GuardProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=guard.url + "/v1", api_key="sk-test-not-a-secret", max_retries=0)


# --- embeddings ------------------------------------------------------------------------------------------
def test_embeddings_create_through_the_sdk_reaches_the_upstream_redacted(stack: tuple[GuardProcess, ModelApis]) -> None:
    guard, upstream = stack
    raw = _sdk(guard).embeddings.with_raw_response.create(
        model="fake-embed", input=[f"mail {EMAIL}", f"phone {PHONE}", f"card {CARD}"]
    )
    result = raw.parse()
    assert [d.embedding for d in result.data] == [[0.25, -0.5, 0.0], [0.25, -0.5, 1.0], [0.25, -0.5, 2.0]]
    assert raw.headers["x-guard-decision"] == "redact"
    sent = upstream.received[-1]
    assert sent.path == "/v1/embeddings"
    _clean(sent.body.decode())
    assert sent.json()["input"] == ["mail <EMAIL_ADDRESS>", "phone <PHONE_NUMBER>", "card <CREDIT_CARD>"]  # type: ignore[index]
    single = _sdk(guard).embeddings.create(model="fake-embed", input=PROMPT)
    assert len(single.data) == 1
    _clean(upstream.received[-1].body.decode())


def test_token_id_input_is_refused_with_a_clear_400(stack: tuple[GuardProcess, ModelApis]) -> None:
    guard, upstream = stack
    before = len(upstream.received)
    with pytest.raises(openai.BadRequestError) as caught:
        _sdk(guard).embeddings.create(model="fake-embed", input=[[101, 2023, 102]])
    assert caught.value.code == "token_input"
    assert "token ids" in caught.value.message
    assert len(upstream.received) == before


# --- Ollama ----------------------------------------------------------------------------------------------
def _ollama(guard: GuardProcess, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(guard.url + path, json=body, headers=headers or {}, timeout=30)


def _lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


@pytest.mark.parametrize("stream", [False, True])
def test_ollama_chat_json_and_ndjson(stack: tuple[GuardProcess, ModelApis], stream: bool) -> None:
    guard, upstream = stack
    upstream.reply, upstream.chunks = f"Sure: {EMAIL} / {PHONE} / {CARD} done.", 9
    body = {"model": "fake", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    response = _ollama(guard, "/api/chat", body)
    assert response.status_code == 200
    _clean(upstream.received[-1].body.decode())
    assert "<EMAIL_ADDRESS>" in upstream.received[-1].body.decode()
    _clean(response.text)
    if not stream:
        assert response.json()["message"]["content"].startswith("Sure: <EMAIL_ADDRESS>")
        return
    lines = _lines(response)
    text = "".join(line["message"]["content"] for line in lines)
    assert text == "Sure: <EMAIL_ADDRESS> / <PHONE_NUMBER> / <CREDIT_CARD> done."
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"
    assert all(line["done"] is False for line in lines[:-1])


@pytest.mark.parametrize("stream", [False, True])
def test_ollama_generate_json_and_ndjson(stack: tuple[GuardProcess, ModelApis], stream: bool) -> None:
    guard, upstream = stack
    upstream.reply, upstream.chunks = f"Noted {CARD} and {EMAIL}.", 7
    body: dict[str, Any] = {"model": "fake", "prompt": PROMPT, "system": f"reply to {EMAIL}"}
    if not stream:
        body["stream"] = False  # Ollama streams when `stream` is absent
    response = _ollama(guard, "/api/generate", body)
    assert response.status_code == 200
    _clean(upstream.received[-1].body.decode())
    _clean(response.text)
    if not stream:
        answer = response.json()
        assert answer["response"] == "Noted <CREDIT_CARD> and <EMAIL_ADDRESS>."
        assert "context" not in answer  # token ids of the unredacted answer
        return
    lines = _lines(response)
    assert "".join(line["response"] for line in lines) == "Noted <CREDIT_CARD> and <EMAIL_ADDRESS>."
    assert lines[-1]["done"] is True and "context" not in lines[-1]


def test_ollama_bodies_are_json_whatever_their_content_type(stack: tuple[GuardProcess, ModelApis]) -> None:
    guard, upstream = stack
    upstream.reply = "ok"
    body = json.dumps({"model": "fake", "prompt": PROMPT, "stream": False}).encode()
    # What `curl -d` sends, as in Ollama's own examples.
    response = httpx.post(guard.url + "/api/generate", content=body, timeout=30,
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    _clean(upstream.received[-1].body.decode())
    assert "<CREDIT_CARD>" in upstream.received[-1].body.decode()


def test_a_blocked_ollama_stream_ends_with_a_final_done_line(stack: tuple[GuardProcess, ModelApis]) -> None:
    guard, upstream = stack
    upstream.reply, upstream.chunks = f"The card is {CARD}.", 5
    response = _ollama(guard, "/strict/api/chat", {"model": "fake", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    _clean(response.text)
    lines = _lines(response)
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "content_filter"
    assert lines[-1]["message"]["content"] == "I can't help with that request."
    refused = _ollama(guard, "/strict/api/chat", {"model": "fake", "messages": [{"role": "user", "content": PROMPT}]})
    assert refused.status_code == 400
    assert refused.json()["code"] == "content_filter" and isinstance(refused.json()["error"], str)


# --- Azure -----------------------------------------------------------------------------------------------
def test_azure_deployment_path_with_api_version_is_screened(stack: tuple[GuardProcess, ModelApis]) -> None:
    guard, upstream = stack
    upstream.reply = f"I wrote to {EMAIL}."
    client = openai.AzureOpenAI(azure_endpoint=guard.url, api_version="2024-06-01", api_key="k", max_retries=0)
    completion = client.chat.completions.create(model="my-gpt", messages=[{"role": "user", "content": PROMPT}])
    assert completion.choices[0].message.content == "I wrote to <EMAIL_ADDRESS>."
    sent = upstream.received[-1]
    assert (sent.path, sent.query) == ("/openai/deployments/my-gpt/chat/completions", "api-version=2024-06-01")
    _clean(sent.body.decode())
    vectors = client.embeddings.create(model="my-embed", input=f"card {CARD}")
    assert len(vectors.data) == 1
    assert upstream.received[-1].path == "/openai/deployments/my-embed/embeddings"
    _clean(upstream.received[-1].body.decode())


# --- routes that fail safe -------------------------------------------------------------------------------
def test_a_body_to_an_unknown_path_is_refused_api_shaped(stack: tuple[GuardProcess, ModelApis]) -> None:
    guard, upstream = stack
    before = len(upstream.received)
    with pytest.raises(openai.NotFoundError) as caught:
        _sdk(guard).post("/assistants", body={"instructions": PROMPT}, cast_to=httpx.Response)
    assert caught.value.code == "unknown_route"
    assert "not screened" in caught.value.message
    ollama = _ollama(guard, "/api/pull", {"model": "x"})
    assert ollama.status_code == 404 and "not screened" in ollama.json()["error"]
    get_with_body = httpx.request("GET", guard.url + "/v1/unknown", content=PROMPT.encode(), timeout=10)
    assert get_with_body.status_code == 404
    assert len(upstream.received) == before
    assert guard.metric("guard_rejected_requests_total", reason="unknown_route") >= 3


def test_pass_routes_and_bodiless_reads_pass_and_are_counted(stack: tuple[GuardProcess, ModelApis]) -> None:
    guard, upstream = stack
    models = guard.metric("guard_unscreened_requests_total", route="models")
    other = guard.metric("guard_unscreened_requests_total", route="other")
    listed = _sdk(guard).models.list()
    assert [m.id for m in listed.data] == ["fake-model"]
    assert upstream.received[-1].path == "/v1/models"
    assert httpx.get(guard.url + "/v1/something/else?x=1", timeout=10).status_code == 200
    assert guard.metric("guard_unscreened_requests_total", route="models") == models + 1
    assert guard.metric("guard_unscreened_requests_total", route="other") == other + 1
    logs = guard.logs()
    assert "request passed unscreened" in logs and "something" not in logs


# --- tiers -----------------------------------------------------------------------------------------------
def test_the_shipped_tier_header_trusts_no_one_not_even_loopback(stack: tuple[GuardProcess, ModelApis]) -> None:
    guard, upstream = stack
    body = {"model": "fake", "messages": [{"role": "user", "content": PROMPT}], "stream": False}
    response = _ollama(guard, "/api/chat", body, {"x-guard-tier": "minimal"})  # `minimal` screens nothing
    assert response.status_code == 200 and response.headers["x-guard-decision"] == "redact"
    _clean(upstream.received[-1].body.decode())


def test_a_route_tier_is_a_floor_a_trusted_header_cannot_lower(tmp_path: Path) -> None:
    policy = surface_policy(["127.0.0.1/32"], MARKER_DETECTOR)
    with ModelApis() as upstream, _start(upstream.url, policy, tmp_path, "t") as guard:
        body = {"model": "fake", "messages": [{"role": "user", "content": f"code {MARKER}"}], "stream": False}
        # Control: from a trusted source the header does select the tier on a route without one.
        lowered = _ollama(guard, "/api/chat", body, {"x-guard-tier": "minimal"})
        assert lowered.status_code == 200 and lowered.headers["x-guard-decision"] == "allow"
        before = len(upstream.received)
        floored = _ollama(guard, "/strict/api/chat", body, {"x-guard-tier": "minimal"})
        assert floored.status_code == 400 and floored.json()["code"] == "content_filter"
        assert len(upstream.received) == before


# --- upstream path prefix --------------------------------------------------------------------------------
def test_an_upstream_url_with_a_path_prefix_is_not_doubled(tmp_path: Path) -> None:
    policy = surface_policy(detector=MARKER_DETECTOR)
    with ModelApis() as upstream, _start(upstream.url + "/v1", policy, tmp_path, "u") as guard:
        result = _sdk(guard).embeddings.create(model="fake-embed", input=f"code {MARKER}")
        assert len(result.data) == 1
        assert upstream.received[-1].path == "/v1/embeddings"
        assert MARKER.encode() not in upstream.received[-1].body
        assert [m.id for m in _sdk(guard).models.list().data] == ["fake-model"]
        assert upstream.received[-1].path == "/v1/models"
        # A path without the prefix gets it.
        assert httpx.get(guard.url + "/files", timeout=10).status_code == 200
        assert upstream.received[-1].path == "/v1/files"
