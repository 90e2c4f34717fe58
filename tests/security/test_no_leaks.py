"""Planted personal data never leaves through the guard's side channels.

A real `guard serve` with the shipped `policies/escalate.yaml` (presidio, pattern recognizers), a JSONL
audit log, a SQLite review store with a webhook, is sent unique personal-data markers every way a caller
can send them: in prompts that are redacted, held for review (deferred) and answered, in bodies the guard
refuses (malformed JSON, invalid UTF-8, too large, wrong content type), in the query string, a header, an
unknown path, and in a model answer. None of the markers may then appear in the guard's logs, its
metrics, its audit log, a webhook it sent, a reviewer's (masked) view, or any error body the guard wrote.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx

from tests.fakes.fault_policy import CHAT, chat
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import REPO, leaked_internals
from tests.fakes.guard_process import StartGuard

TOKEN = "security-battery-reviewer-token"


def _luhn_complete(prefix: str) -> str:
    digits = [int(d) for d in prefix]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix + str((10 - total % 10) % 10)


CARD = _luhn_complete("453957876362148")
MARKERS = {
    "email": "zqx.marker7781@example.org",
    "phone": "(415) 555-0178",
    "card": CARD,
    "card_spaced": " ".join(CARD[i : i + 4] for i in range(0, 16, 4)),
    "iban": "GB33BUKB20201555555555",
}


def _found(haystack: str) -> list[str]:
    return [name for name, value in MARKERS.items() if value in haystack]


def test_planted_personal_data_appears_in_no_side_channel(start_guard: StartGuard, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        f"- {{name: sec, role: reviewer, token_sha256: {hashlib.sha256(TOKEN.encode()).hexdigest()}}}\n"
    )
    with FaultServer(Behaviour(Mode.OK)) as upstream, FaultServer(Behaviour(Mode.OK)) as webhook:
        guard = start_guard(
            upstream.url,
            REPO / "policies" / "escalate.yaml",
            ("--audit", str(audit), "--review-store", f"sqlite://{tmp_path / 'review.db'}", "--tokens", str(tokens)),
            env={"GUARD_REVIEW_WEBHOOK_URL": webhook.url + "/hook", "GUARD_AUDIT_HMAC_KEY": "k" * 32},
        )
        url = guard.url
        guard_bodies: list[str] = []  # every body the guard itself wrote (errors, refusals, 202s)

        def keep(response: httpx.Response) -> httpx.Response:
            if response.status_code >= 400 or response.status_code == 202:
                guard_bodies.append(response.text)
            return response

        # Redacted on the way in and on the way out (the echo model repeats the prompt).
        redacted = keep(httpx.post(url + CHAT, json=chat(f"mail {MARKERS['email']} or call {MARKERS['phone']}")))
        assert redacted.status_code == 200 and redacted.headers["x-guard-decision"] == "redact"
        assert MARKERS["email"] not in redacted.text  # (a phone scores below this policy's threshold)
        # Held for review, deferred: answered at once with a review id; the webhook fires.
        held = keep(httpx.post(url + "/v1/batch/chat/completions", json=chat(f"charge {MARKERS['card_spaced']}")))
        assert held.status_code == 202, held.text
        streamed = httpx.post(url + CHAT, json=chat(f"iban {MARKERS['iban']} mail {MARKERS['email']}", stream=True))
        assert streamed.status_code == 200 and MARKERS["email"] not in streamed.text
        # Refused before screening, each with the marker inside.
        for raw, content_type in [
            (b'{"messages": [{"role": "user", "content": "' + MARKERS["email"].encode() + b'"', "application/json"),
            (b'{"messages": [{"role": "user", "content": "' + MARKERS["email"].encode() + b' \xff"}]}', "application/json"),
            (json.dumps(chat(MARKERS["email"] + " " + "x" * 2_000_000)).encode(), "application/json"),
            (json.dumps(chat(MARKERS["email"])).encode(), "text/plain"),
            (json.dumps({"messages": MARKERS["email"]}).encode(), "application/json"),
        ]:
            refused = keep(httpx.post(url + CHAT, content=raw, headers={"content-type": content_type}))
            assert 400 <= refused.status_code < 500, refused.text
        # Markers where no screening applies: the query, a header, an unknown path.
        keep(httpx.post(url + CHAT + "?user=" + MARKERS["email"], json=chat("hello"),
                        headers={"x-end-user": MARKERS["email"]}))
        keep(httpx.get(url + "/v1/models/" + MARKERS["email"]))
        keep(httpx.post(url + CHAT, json=chat("x"), headers={"x-request-id": MARKERS["email"]}))

        reviewer = httpx.get(guard.admin_url + "/v1/reviews", headers={"authorization": f"Bearer {TOKEN}"})
        assert reviewer.status_code == 200 and reviewer.json()["items"], reviewer.text
        metrics = guard.metrics_text()
        hooks = [r.body.decode("utf-8", "replace") for r in webhook.recorded()]
    guard.stop()

    assert hooks, "the webhook was never called, so it proved nothing"
    for name, text in [("logs", guard.logs()), ("metrics", metrics), ("audit", audit.read_text()),
                       ("webhook", "\n".join(hooks)), ("reviewer view", reviewer.text),
                       ("error bodies", "\n".join(guard_bodies))]:
        assert not _found(text), f"{_found(text)} found in {name}"
    for body in guard_bodies:
        assert not leaked_internals(body), body
    # The control: the markers did reach the places they are allowed to (the model got the unscreened
    # query string and header; a redaction left a placeholder), so the absence above is not vacuous.
    assert any(MARKERS["email"] in r.target for r in upstream.recorded())
    assert "<EMAIL_ADDRESS>" in redacted.text
