"""The citizen's promise, in a real browser: one sign-in for every e-service, one sign-out that
signs out everywhere; the sign-in pages in the citizen's language."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pyotp

from tests.browser.conftest import Visit
from tests.demo_stack import Stack

SIGNED_OUT = "You are not signed in."


def _sign_in_at_provider(tab: Visit, stack: Stack) -> None:
    """Password, then the one-time code, on the provider's pages."""
    page = tab.page
    page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
    tab.step("password page")
    page.fill("#username", stack.creds.username)
    page.fill("#password", stack.creds.password)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/login/[^/]+/totp"))
    tab.step("one-time code page")
    page.fill("#code", pyotp.TOTP(stack.creds.totp_secret).now())
    page.get_by_role("button", name="Continue").click()


def _wait_until_signed_out(tab: Visit, url: str) -> None:
    """The back-channel logout reaches the other e-service within a few seconds."""
    deadline = time.monotonic() + 10
    while True:
        tab.page.goto(url)
        if tab.page.locator("#status").inner_text() == SIGNED_OUT or time.monotonic() > deadline:
            return
        tab.page.wait_for_timeout(200)


def test_single_sign_on_and_single_logout(stack: Stack, open_tab: Callable[..., Visit]) -> None:
    licensing = open_tab()
    page = licensing.page
    page.goto(stack.elicensing.url)
    licensing.step("e-licensing before sign-in")
    page.get_by_role("link", name="Sign in with National digital identity").click()
    _sign_in_at_provider(licensing, stack)
    page.wait_for_url(f"{stack.elicensing.url}/")
    assert page.locator("#status").inner_text() == "You are signed in to e-licensing."
    assert page.get_by_role("heading", level=1).inner_text() == "Hello, Anahit Petrosyan"
    userinfo = page.locator("#userinfo").inner_text()
    assert "demo.citizen@example.org" in userinfo
    id_token = page.locator("#id-token").inner_text()
    assert "sid" in id_token and "auth_time" in id_token
    licensing.step("e-licensing signed in")

    # Same browser, the other e-service: no password and no code asked again.
    justice = open_tab(context=page.context)
    visited: list[str] = []
    justice.page.on("request", lambda request: visited.append(request.url))
    justice.page.goto(stack.ejustice.url)
    justice.step("e-justice before sign-in")
    justice.page.get_by_role("link", name="Sign in with National digital identity").click()
    justice.page.wait_for_url(f"{stack.ejustice.url}/")
    assert justice.page.locator("#status").inner_text() == "You are signed in to e-justice."
    assert not [url for url in visited if "/login/" in url], "the citizen was asked to sign in"
    justice.step("e-justice signed in without a prompt")

    # Sign out at e-justice: the provider ends the session and tells e-licensing.
    justice.page.get_by_role("button", name="Sign out").click()
    if justice.page.url.startswith(stack.provider.url):  # a confirmation page
        justice.step("provider asks to confirm sign-out")
        justice.page.get_by_role("button", name=re.compile("Sign out|Log out", re.I)).click()
    justice.page.wait_for_url(re.compile(rf"^{re.escape(stack.ejustice.url)}/signed-out"))
    assert justice.page.get_by_role("heading", level=1).inner_text() == "You have signed out"
    justice.step("e-justice signed out")

    _wait_until_signed_out(licensing, stack.elicensing.url)
    assert page.locator("#status").inner_text() == SIGNED_OUT
    licensing.step("e-licensing signed out by the provider")

    # The single sign-on session is over too: signing in asks for the password again.
    page.get_by_role("link", name="Sign in with National digital identity").click()
    page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
    assert page.locator("#password").is_visible()
    licensing.step("password asked again")


def test_sign_in_pages_speak_the_citizens_language(
    stack: Stack, open_tab: Callable[..., Visit]
) -> None:
    tab = open_tab(phone=True)
    tab.page.goto(f"{stack.elicensing.url}/login")
    tab.page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
    assert tab.page.get_attribute("html", "lang") == "en"
    english = tab.page.get_by_role("heading", level=1).inner_text()
    tab.step("sign-in in English")
    for code in ("hy", "ru"):
        tab.page.locator(f"nav a[hreflang={code}]").click()
        tab.page.wait_for_function(f"document.documentElement.lang === '{code}'")
        heading = tab.page.get_by_role("heading", level=1).inner_text()
        assert heading and heading != english
        assert tab.page.locator("#password").is_visible()  # still the same step
        tab.step(f"sign-in in {code}")
