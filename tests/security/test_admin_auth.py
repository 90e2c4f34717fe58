"""The admin port refuses every request without a valid token, and tokens are compared in constant time.

- Every route the review room mounts on the admin port (taken from `review_routes` itself, so a route
  added later is covered without editing this test) answers 401 to: no Authorization header, another
  scheme, an empty bearer, a wrong token, a token that differs in its last character, the token's own
  SHA-256 (what the tokens file stores), and the token with a NUL byte appended; a refused decision
  changes nothing. Only `/healthz`, `/readyz`, `/metrics` and the static console shell answer without one.
- Constant time: a presented token is hashed before comparison, so its bytes never meet a stored value
  byte by byte, and every stored entry is compared with `hmac.compare_digest` (checked on the code, since
  a timing test on a shared 2-core machine would prove nothing), and no `==` touches a token anywhere.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import inspect
import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.routing import Mount, Route

from guard.metrics import GuardMetrics
from guard.review import tokens as tokens_module
from guard.review.api import review_routes
from guard.review.sqlite_store import SqliteReviewStore
from guard.review.tokens import TokenSet
from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import StartGuard

TOKEN = "admin-battery-token-0123456789"
OPEN = {"/healthz", "/readyz", "/metrics"}


def _api_routes(tmp_path: Path) -> list[tuple[str, str]]:
    """(method, path template) of every API route the review room mounts; the console redirect and its
    static files are the only unauthenticated ones and carry no data."""
    routes = review_routes(
        SqliteReviewStore(tmp_path / "unused.db"), TokenSet([]), None, GuardMetrics(CollectorRegistry(), "t")
    )
    found = []
    for route in routes:
        if isinstance(route, Mount) or (isinstance(route, Route) and route.path == "/console"):
            continue
        assert isinstance(route, Route)
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                found.append((method, route.path))
    assert len(found) >= 3, found
    return found


def _bad_headers() -> dict[str, dict[str, str]]:
    basic = base64.b64encode(f"sec:{TOKEN}".encode()).decode()
    return {
        "none": {},
        "basic": {"authorization": f"Basic {basic}"},
        "empty_bearer": {"authorization": "Bearer "},
        "wrong": {"authorization": "Bearer not-the-token"},
        "last_char": {"authorization": f"Bearer {TOKEN[:-1]}X"},
        "stored_hash": {"authorization": f"Bearer {hashlib.sha256(TOKEN.encode()).hexdigest()}"},
        "token_in_other_header": {"x-api-key": TOKEN},
        "nul_suffix": {"authorization": f"Bearer {TOKEN}\x00"},
    }


def test_admin_routes_refuse_requests_without_a_valid_token(start_guard: StartGuard, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"- {{name: sec, role: admin, token_sha256: {hashlib.sha256(TOKEN.encode()).hexdigest()}}}\n")
    review = {"timeout_s": 30, "on_timeout": "block"}
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(
            upstream.url, fault_policy(default_tier="review", review=review),
            ("--review-store", f"sqlite://{tmp_path / 'review.db'}", "--tokens", str(tokens)),
        )
        # A real held item, so refused requests have something to read or decide.
        held = threading.Thread(target=lambda: httpx.post(guard.url + CHAT, json=chat(f"hold {MARKER}"), timeout=40))
        held.start()
        good = {"authorization": f"Bearer {TOKEN}"}
        item_id = ""
        for _ in range(100):
            items = httpx.get(guard.admin_url + "/v1/reviews", headers=good, timeout=5).json()["items"]
            if items:
                item_id = items[0]["id"]
                break
            threading.Event().wait(0.1)
        assert item_id
        for method, template in _api_routes(tmp_path):
            path = template.replace("{item_id}", item_id)
            for name, headers in _bad_headers().items():
                try:
                    response = httpx.request(
                        method, guard.admin_url + path, headers=headers, json={"outcome": "approve"}, timeout=5
                    )
                except httpx.LocalProtocolError:
                    continue  # the client itself refuses to send the header: nothing reached the guard
                assert response.status_code == 401, (method, path, name, response.text)
                assert MARKER not in response.text
        # Nothing a refused request asked for happened: the item is still pending, the caller still held.
        item = httpx.get(guard.admin_url + f"/v1/reviews/{item_id}", headers=good, timeout=5).json()
        assert item["status"] == "pending", item
        assert upstream.recorded() == []
        # The control: the valid token (scheme in any case) does work, and the open endpoints are open.
        decided = httpx.post(guard.admin_url + f"/v1/reviews/{item_id}/decision",
                             headers={"authorization": f"bearer {TOKEN}"}, json={"outcome": "deny"}, timeout=5)
        assert decided.status_code == 200, decided.text
        held.join(30)
        for path in OPEN:
            assert httpx.get(guard.admin_url + path, timeout=5).status_code == 200


def test_tokens_are_hashed_then_compared_in_constant_time() -> None:
    source = inspect.getsource(TokenSet.authenticate)
    tree = ast.parse(source.strip())
    calls = [ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert "hashlib.sha256" in calls and "hmac.compare_digest" in calls, calls
    # No early exit: the loop over entries has no `return` or `break` inside it.
    loops = [node for node in ast.walk(tree) if isinstance(node, ast.For)]
    assert loops and not any(isinstance(n, (ast.Return, ast.Break)) for loop in loops for n in ast.walk(loop))
    entries = TokenSet([
        tokens_module.TokenEntry(name="a", role=tokens_module.Role.REVIEWER,
                                 token_sha256=hashlib.sha256(b"one").hexdigest()),
        tokens_module.TokenEntry(name="b", role=tokens_module.Role.ADMIN,
                                 token_sha256=hashlib.sha256(b"two").hexdigest()),
    ])
    assert entries.authenticate("two") is not None and entries.authenticate("two").name == "b"  # type: ignore[union-attr]
    assert entries.authenticate("tw") is None and entries.authenticate("") is None


def _token_comparisons(path: Path) -> list[str]:
    """`==`/`!=` comparisons in `path` where a side's name mentions a token, secret or digest."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            text = ast.unparse(node).lower()
            if any(word in text for word in ("token", "secret", "digest", "password")):
                found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("module", ["guard/review/tokens.py", "guard/review/api.py", "guard/proxy/admin.py"])
def test_no_token_is_compared_with_equality(module: str) -> None:
    path = Path(__file__).resolve().parents[2] / module
    assert _token_comparisons(path) == []
