"""The provider's sign-out pages in a real browser (Chromium), checked with axe-core for WCAG
2.1 AA against the running demo: a sign-out nobody can force (confirm), stay signed in, sign out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from starlette.requests import Request

from idp.auth import sessions
from idp.db.models import User
from idp.runtime import Runtime
from tests.browser.conftest import Visit
from tests.demo_stack import Stack


def give_session(stack: Stack, tab: Visit) -> None:
    """A single sign-on session for the demo citizen in this tab (the provider's own code)."""
    runtime = Runtime.build(stack.settings)
    try:
        with runtime.db.transaction() as db:
            user = db.scalar(select(User).where(User.username == stack.creds.username))
            assert user is not None
            request = Request({"type": "http", "headers": [], "client": ("127.0.0.1", 1)})
            _, value = sessions.create_session(
                db,
                user=user,
                acr="substantial",
                amr=["pwd", "otp", "mfa"],
                auth_time=datetime.now(UTC),
                request=request,
                settings=stack.settings,
            )
    finally:
        runtime.db.dispose()
    cookie = {"name": sessions.cookie_name(stack.settings), "value": value}
    tab.page.context.add_cookies([{**cookie, "url": stack.provider.url}])


def test_confirm_stay_and_sign_out_pages(stack: Stack, open_tab: Callable[..., Visit]) -> None:
    tab = open_tab()
    page = tab.page
    give_session(stack, tab)
    # A page sends the browser to the provider's logout without an ID token: the citizen decides.
    page.goto(f"{stack.provider.url}/logout?ui_locales=en")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign out"
    tab.step("provider asks to confirm sign-out")
    page.get_by_role("button", name="Stay signed in").click()
    assert page.get_by_role("heading", level=1).inner_text() == "You are still signed in"
    tab.step("still signed in")
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", level=1).inner_text() == "You have signed out"
    tab.step("signed out at the provider")
    page.goto(f"{stack.provider.url}/logout?ui_locales=en")  # nothing left to end
    assert page.get_by_role("heading", level=1).inner_text() == "You have signed out"
