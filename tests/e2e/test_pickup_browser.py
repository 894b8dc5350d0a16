"""The pickup page in Debian's Chromium (driven by Playwright's library, never a downloaded browser): the manager
signs in, reveals, sees the pass and copies it; a revisit shows it gone; another user gets 403; a double-click
mints one pass. Also checks that the strict CSP lets our own inline script run (copy button, countdown)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from local.tenant.fixtures import make_default as F
from tests.e2e.conftest import Stack
from tests.e2e.test_pickup_page import NAMES, open_pickup, taps_issued

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _easy_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASY_AUTH_ENABLED", "true")
    monkeypatch.setenv("DEVHOST_LOCAL_SIGNIN", "true")


@pytest.fixture
def chromium() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser test skipped: {CHROMIUM} is missing (scripts/test installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser test skipped: the playwright package is not installed (requirements-dev.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser, stack: Stack, who: str, pickup_id: str):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.host.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    target = quote(f"/api/pickup/{pickup_id}")
    response = page.goto(
        f"{stack.host.url}/.auth/login/local?user={F.U[who]}&name={quote(NAMES[who])}&post_login_redirect_uri={target}"
    )
    return page, response, errors


def test_the_manager_reveals_in_a_browser_and_a_revisit_shows_it_gone(stack: Stack, chromium):
    _, pickup_id = open_pickup(stack)
    page, response, errors = sign_in(chromium, stack, "megan", pickup_id)
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Tom Target" in page.locator("h1").inner_text()
    countdown = page.locator("[data-until]").first
    assert "UTC" not in countdown.inner_text()  # our script replaced the absolute time: the CSP let it run

    page.get_by_role("button", name="Reveal the pass").click()
    page.wait_for_selector("#pass")
    secret = page.locator("#pass").inner_text()
    assert len(secret) >= 8
    assert taps_issued(stack) == 1
    copy = page.get_by_role("button", name="Copy the pass")
    assert copy.is_visible()
    copy.click()
    page.wait_for_function("document.getElementById('copy-status').textContent.length > 0")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert not [e for e in errors if "Content Security Policy" in e], errors

    revisit = page.goto(f"{stack.host.url}/api/pickup/{pickup_id}")
    assert revisit.status == 200
    assert "already revealed" in page.content()
    assert secret not in page.content()


def test_another_user_gets_403_in_the_browser(stack: Stack, chromium):
    _, pickup_id = open_pickup(stack)
    page, response, _ = sign_in(chromium, stack, "hank", pickup_id)
    assert response.status == 403
    assert page.get_by_role("button", name="Reveal the pass").count() == 0
    assert taps_issued(stack) == 0


def test_a_double_click_mints_one_pass(stack: Stack, chromium):
    _, pickup_id = open_pickup(stack)
    page, _, _ = sign_in(chromium, stack, "megan", pickup_id)
    page.get_by_role("button", name="Reveal the pass").dblclick()
    page.wait_for_load_state()
    page.wait_for_selector("h1")
    assert taps_issued(stack) == 1
