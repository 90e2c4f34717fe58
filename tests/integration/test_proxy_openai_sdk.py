"""The official OpenAI Python SDK (sync, async, streaming) against `guard serve` with the shipped
`policies/default.yaml` (real presidio + spaCy) in front of the fake upstream: personal data in a prompt
reaches the upstream as placeholders, personal data the upstream streams back split across chunks never
reaches the client, and a blocked stream ends with finish_reason content_filter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.integration.proxy_harness import GuardThread, default_policy_trusting_loopback

pytestmark = pytest.mark.model

PROMPT = (
    "Please write to John Smith at john.smith@example.com, call him on 212-555-0187 "
    "and charge card 4111 1111 1111 1111."
)
PII = ("john.smith@example.com", "212-555-0187", "4111 1111 1111 1111", "John Smith")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GuardThread, FakeUpstream]]:
    # The shipped policy with one change: the tier header is trusted from loopback (it trusts no source),
    # so one test can ask for the `high` tier.
    path = default_policy_trusting_loopback(tmp_path_factory.mktemp("sdk"))
    with FakeUpstream() as upstream, GuardThread(upstream.url, path) as guard:
        yield guard, upstream


def _client(guard: GuardThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=guard.url + "/v1", api_key="sk-test-not-a-secret", max_retries=0)


def _assert_prompt_redacted(upstream: FakeUpstream) -> None:
    sent = upstream.received[-1].json()
    content = sent["messages"][0]["content"]  # type: ignore[index]
    for value in PII:
        assert value not in content
    for placeholder in ("<PERSON>", "<EMAIL_ADDRESS>", "<PHONE_NUMBER>", "<CREDIT_CARD>"):
        assert placeholder in content
    assert content.startswith("Please write to ")


def test_sync_sdk_prompt_pii_reaches_upstream_as_placeholders(stack: tuple[GuardThread, FakeUpstream]) -> None:
    guard, upstream = stack
    upstream.script(reply="Done, I have written to them.")
    raw = _client(guard).chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": PROMPT}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Done, I have written to them."
    assert raw.headers["x-guard-decision"] == "redact"
    assert len(raw.headers["x-guard-request-id"]) == 32
    _assert_prompt_redacted(upstream)


def test_async_sdk_prompt_and_answer(stack: tuple[GuardThread, FakeUpstream]) -> None:
    guard, upstream = stack
    upstream.script(reply="You can reach me at jane.doe@example.org any time.")

    async def call() -> tuple[str | None, str]:
        async with openai.AsyncOpenAI(base_url=guard.url + "/v1", api_key="sk-test", max_retries=0) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="fake-model", messages=[{"role": "user", "content": PROMPT}]
            )
            return raw.parse().choices[0].message.content, raw.headers["x-guard-decision"]

    content, decision = asyncio.run(call())
    assert content == "You can reach me at <EMAIL_ADDRESS> any time."
    assert decision == "redact"
    _assert_prompt_redacted(upstream)


def test_streamed_email_split_over_chunks_never_reaches_the_client(stack: tuple[GuardThread, FakeUpstream]) -> None:
    guard, upstream = stack
    # 3 chunks: the address is cut inside the local part and again inside the domain.
    reply = "Sure. Write to jane.do" + "e@exam" + "ple.org and she will answer."
    upstream.script(reply=reply, chunks=3)
    with _client(guard).chat.completions.with_streaming_response.create(
        model="fake-model", messages=[{"role": "user", "content": "who do I write to?"}], stream=True
    ) as response:
        assert response.headers["x-guard-decision"] == "allow"  # the input verdict; output is screened in-band
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert "jane" not in text and "example.org" not in text and "@" not in text
    assert text == "Sure. Write to <EMAIL_ADDRESS> and she will answer."
    assert reasons == ["stop"]


def test_blocked_stream_ends_with_content_filter(stack: tuple[GuardThread, FakeUpstream]) -> None:
    guard, upstream = stack
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    upstream.script(reply=f"Here is the key you wanted: {key} -- keep it safe.", chunks=6)
    stream = _client(guard).chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "give me the key"}],
        stream=True,
        extra_headers={"x-guard-tier": "high"},  # honoured: this test's policy trusts loopback
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert key not in text and "AKIA" not in text
    assert reasons[-1] == "content_filter"
    assert "I can't help with that request." in text
