"""The demo e-services' own pages, in a real browser: readable on a desktop and on a phone,
with no serious or critical WCAG 2.1 AA violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.conftest import Visit
from tests.demo_stack import Stack

SERVICES = ["elicensing", "ejustice"]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_welcome_page_invites_the_citizen_to_sign_in(
    stack: Stack, open_tab: Callable[..., Visit], service: str, phone: bool
) -> None:
    app = getattr(stack, service)
    tab = open_tab(phone=phone)
    response = tab.page.goto(app.url)
    assert response is not None and response.status == 200
    assert tab.page.locator("#status").inner_text() == "You are not signed in."
    sign_in = tab.page.get_by_role("link", name="Sign in with National digital identity")
    assert sign_in.is_visible()
    box = sign_in.bounding_box()
    assert box is not None and box["height"] >= 44  # a comfortable touch target
    tab.step("welcome")
    # Keyboard users reach the main content first.
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.textContent") == "Skip to main content"


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_refused_sign_in_is_explained(
    stack: Stack, open_tab: Callable[..., Visit], phone: bool
) -> None:
    tab = open_tab(phone=phone)
    response = tab.page.goto(f"{stack.elicensing.url}/callback?error=access_denied&state=x")
    assert response is not None and response.status == 400
    assert tab.page.get_by_role("heading", level=1).inner_text() == "You are not signed in"
    assert "You cancelled the sign-in" in tab.page.locator("#status").inner_text()
    assert tab.page.get_by_role("link", name="Sign in again").is_visible()
    tab.step("sign-in refused")


def test_forged_callback_is_not_accepted(stack: Stack, open_tab: Callable[..., Visit]) -> None:
    """A code and state the e-service never asked for (login CSRF) sign nobody in."""
    tab = open_tab()
    response = tab.page.goto(f"{stack.ejustice.url}/callback?code=stolen&state=forged")
    assert response is not None and response.status == 400
    assert "could not be accepted" in tab.page.locator("#status").inner_text()
    tab.step("forged callback")
    tab.page.goto(stack.ejustice.url)
    assert tab.page.locator("#status").inner_text() == "You are not signed in."


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_signed_out_page(stack: Stack, open_tab: Callable[..., Visit], phone: bool) -> None:
    tab = open_tab(phone=phone)
    tab.page.goto(f"{stack.ejustice.url}/signed-out")
    assert tab.page.get_by_role("heading", level=1).inner_text() == "You have signed out"
    tab.step("signed out")
