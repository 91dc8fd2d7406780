"""The provider's sign-out pages in a real browser (Chromium), checked with axe-core for WCAG
2.1 AA, against the running demo: confirm, stay signed in, sign out; the e-service hears it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pyotp

from tests.browser.conftest import Visit, axe_source, browser, open_tab, stack  # noqa: F401
from tests.demo_stack import Stack


def test_confirm_stay_and_sign_out_pages(stack: Stack, open_tab: Callable[..., Visit]) -> None:  # noqa: F811
    tab = open_tab()
    page = tab.page
    page.goto(stack.elicensing.url)
    page.get_by_role("link", name="Sign in with National digital identity").click()
    page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
    page.fill("#username", stack.creds.username)
    page.fill("#password", stack.creds.password)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/login/[^/]+/totp"))
    page.fill("#code", pyotp.TOTP(stack.creds.totp_secret).now())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{stack.elicensing.url}/")

    # Someone (or some page) sends the browser to the provider's logout without a hint.
    page.goto(f"{stack.provider.url}/logout?ui_locales=en")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign out"
    tab.step("provider asks to confirm sign-out")
    page.get_by_role("button", name="Stay signed in").click()
    assert page.get_by_role("heading", level=1).inner_text() == "You are still signed in"
    tab.step("still signed in")
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", level=1).inner_text() == "You have signed out"
    tab.step("signed out at the provider")

    deadline = time.monotonic() + 10  # the back-channel logout reaches e-licensing
    while True:
        page.goto(stack.elicensing.url)
        status = page.locator("#status").inner_text()
        if status == "You are not signed in." or time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    assert status == "You are not signed in."
