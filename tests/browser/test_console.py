"""The reviewer console in a real headless Chromium (Debian's), against a real `guard serve`: the queue
oldest first with time left, an item with its findings highlighted and explained and PII masked, and
approve / deny / edit from the keyboard reaching the held callers. Saves `artifacts/console.png`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.fakes.guard_process import REPO, GuardProcess
from tests.fakes.upstream import FakeUpstream
from tests.unit.review.review_e2e import CARD, TOKENS, Callers, wait_pending, write_policy, write_tokens

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
NAMES = ("first", "second", "third")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield launched
        launched.close()


def sign_in(page: Page, admin: str, role: str = "reviewer") -> None:
    page.goto(admin + "/console/")
    page.fill("#token", TOKENS[role])
    page.click("#login button[type=submit]")
    expect(page.locator("#main")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()


def test_console_queue_item_and_keyboard_decisions(browser: Browser, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml", timeout_s=120)
    tokens = write_tokens(tmp_path / "tokens.yaml")
    callers = Callers()
    with FakeUpstream() as upstream:
        upstream.script(reply="Done.")
        with GuardProcess(
            upstream.url, policy, tmp_path,
            extra_args=["--review-store", f"sqlite:///{tmp_path}/review.db", "--tokens", str(tokens)],
        ) as guard:
            held = {}
            for count, name in enumerate(NAMES, start=1):
                held[name] = callers.send(guard.url, f"Charge {CARD} for the {name} order")
                wait_pending(guard.admin_url, count=count)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            sign_in(page, guard.admin_url)

            rows = page.locator("#queue li")
            expect(rows).to_have_count(3)
            expect(rows.first.locator(".left")).to_have_text(re.compile(r"^(1m \d+s|\d+s)$"))
            expect(rows.first).to_contain_text("pii")
            expect(rows.first).to_contain_text("input · chat · limited")

            page.keyboard.press("j")  # the oldest item
            expect(page.locator("#item")).to_be_visible()
            expect(page.locator("#editor")).to_be_hidden()
            text = page.locator("#texts .text").first
            expect(text).to_contain_text("Charge [CREDIT_CARD] for the first order")
            expect(page.locator("mark.masked")).to_have_text("[CREDIT_CARD]")
            assert CARD not in page.content()
            finding = page.locator("#findings tbody tr").first
            expect(finding).to_contain_text("pii / CREDIT_CARD")
            expect(finding.locator("td").nth(3)).to_have_text("1.00")
            expect(finding.locator("td").nth(4)).to_have_text("0.50")
            expect(finding).to_contain_text("medium → review")
            artifacts = REPO / "artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "console.png"), full_page=True)

            page.keyboard.press("a")  # approve the first; the console moves on to the next oldest
            assert held["first"].result(timeout=20).status_code == 200
            expect(rows).to_have_count(2)
            expect(page.locator("#texts .text").first).to_contain_text("second order")
            expect(page.locator("#status")).to_have_text("approve: done.")

            page.keyboard.press("d")  # deny the second
            denied = held["second"].result(timeout=20)
            assert denied.status_code == 400 and "reviewer" in denied.json()["error"]["message"].lower()

            expect(page.locator("#texts .text").first).to_contain_text("third order")
            page.keyboard.press("e")  # edit the third
            editor = page.locator("#edit-text")
            expect(editor).to_be_focused()
            editor.fill("Charge the card on file for the third order")
            editor.press("Control+Enter")
            assert held["third"].result(timeout=20).status_code == 200
            sent = upstream.received[-1].json()
            assert sent["messages"][0]["content"] == "Charge the card on file for the third order"  # type: ignore[index]
            expect(page.locator("#empty")).to_be_visible()
            expect(page.locator("#status")).to_have_text("edit: done.")
            expect(page.locator("#item-title")).to_have_text("edited · input on chat")  # the decided item
            assert upstream.received and len(upstream.received) == 2
            page.close()
    callers.close()


def test_console_refuses_a_wrong_token(browser: Browser, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml")
    tokens = write_tokens(tmp_path / "tokens.yaml")
    with FakeUpstream() as upstream, GuardProcess(
        upstream.url, policy, tmp_path,
        extra_args=["--review-store", f"sqlite:///{tmp_path}/review.db", "--tokens", str(tokens)],
    ) as guard:
        page = browser.new_page()
        page.goto(guard.admin_url + "/console/")
        page.fill("#token", "not-a-token")
        page.click("#login button[type=submit]")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#main")).to_be_hidden()
        expect(page.locator("#status")).to_have_text("The token was refused.")
        page.close()
