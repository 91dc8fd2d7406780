"""Every page of the sign-in flow and the provider's own pages, in a real browser (Chromium), on
a desktop (1280 x 800) and a phone (390 x 844), in Armenian, English and Russian: no serious or
critical WCAG 2.1 AA violation (axe-core), no sideways scrolling, each page in its language, and
any action that cannot be undone on a warning-styled button."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest

from idp.runtime import Runtime
from idp.services import clients as client_service
from tests.browser.conftest import DESKTOP, PHONE, Visit
from tests.demo_stack import Stack
from tests.signin.helpers import Citizen, add_citizen, outbox

LANGUAGES = ("hy", "en", "ru")
VIEWPORTS: dict[str, dict[str, Any]] = {"desktop": DESKTOP, "phone": PHONE}
# Forms whose action cannot be undone (ending sessions, revoking, disabling, ...): the buttons
# of such a form on the page that are not GOV.UK's warning button.
UNWARNED_DESTRUCTIVE_BUTTONS = r"""() => {
  const destructive =
    /\/(end|end-all|end-sessions|revoke|disable|retire|not-me|reset-second-factor|rotate-secret|rotate-now)$/;
  return Array.from(document.querySelectorAll('form[method=post]'))
    .filter((form) => destructive.test(new URL(form.action).pathname))
    .flatMap((form) => Array.from(form.querySelectorAll('button:not([type=button])')))
    .filter((button) => !button.classList.contains('govuk-button--warning'))
    .map((button) => button.textContent.trim());
}"""


def _runtime(stack: Stack) -> Iterator[Runtime]:
    runtime = Runtime.build(stack.settings)
    try:
        yield runtime
    finally:
        runtime.db.dispose()


def _third_party(stack: Stack) -> str:
    """An e-service that is not the state's own: it needs the citizen's consent."""
    for runtime in _runtime(stack):
        with runtime.db.transaction() as db:
            registered = client_service.register_client(
                db,
                client_service.NewClient(
                    name="Tax service",
                    client_id=f"tax-{secrets.token_hex(4)}",
                    redirect_uris=["https://tax.example.am/callback"],
                    scope="openid profile email",
                ),
                actor="test",
            )
            return registered.client.client_id
    raise AssertionError("unreachable")


def _citizen(stack: Stack, *, totp: bool) -> Citizen:
    for runtime in _runtime(stack):
        return add_citizen(runtime, f"pages-{secrets.token_hex(4)}", totp=totp)
    raise AssertionError("unreachable")


class Pages:
    """One tab that shows each page in the three languages and checks it."""

    def __init__(self, tab: Visit, stack: Stack) -> None:
        self.tab = tab
        self.stack = stack

    def check(self, name: str, url: str | None = None) -> None:
        page = self.tab.page
        url = url or page.url
        english = ""
        headings = set()
        for code in LANGUAGES:
            with_lang = re.sub(r"([?&])lang=[a-z]+&?", r"\1", url).rstrip("?&")
            page.goto(f"{with_lang}{'&' if '?' in with_lang else '?'}lang={code}")
            assert page.get_attribute("html", "lang") == code, (name, page.url)
            heading = page.get_by_role("heading", level=1).inner_text()
            headings.add(heading)
            english = heading if code == "en" else english
            assert not page.evaluate(UNWARNED_DESTRUCTIVE_BUTTONS), name
            self.tab.step(f"{name} {code}")
        assert len(headings) == 3, f"{name}: {headings}"  # each language its own words

    def sign_in_password(self, citizen: Citizen) -> None:
        page = self.tab.page
        page.goto(f"{self.stack.elicensing.url}/login")
        page.wait_for_url(re.compile(rf"^{re.escape(self.stack.provider.url)}/login/"))
        page.fill("#username", citizen.username)
        page.fill("#password", citizen.password)
        page.locator("form button[type=submit]").first.click()


@pytest.fixture(params=sorted(VIEWPORTS))
def pages(
    request: pytest.FixtureRequest, browser: Any, open_tab: Callable[..., Visit], stack: Stack
) -> Iterator[Callable[[], Pages]]:
    contexts: list[Any] = []

    def new_tab() -> Pages:
        context = browser.new_context(**VIEWPORTS[request.param], locale="en-GB")
        contexts.append(context)
        return Pages(open_tab(context=context, phone=request.param == "phone"), stack)

    yield new_tab
    for context in contexts:
        context.close()


def test_provider_pages_without_a_sign_in(stack: Stack, pages: Callable[[], Pages]) -> None:
    tab = pages()
    provider = stack.provider.url
    tab.check("page not found", f"{provider}/no-such-page")
    tab.check("sign-in page expired", f"{provider}/login/no-such-interaction")
    query = urlencode(
        {"client_id": "nobody", "response_type": "code", "redirect_uri": "https://x.example/cb"}
    )
    tab.check("request cannot be accepted", f"{provider}/authorize?{query}")


def test_password_enrolment_and_recovery_codes(stack: Stack, pages: Callable[[], Pages]) -> None:
    tab = pages()
    page = tab.tab.page
    page.goto(f"{stack.elicensing.url}/login")
    page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
    start = page.url.split("?")[0]
    tab.check("password")
    tab.check("password with an error", f"{start}?error=credentials")
    tab.check("forgotten password", f"{start}/forgot")

    citizen = _citizen(stack, totp=False)
    tab.sign_in_password(citizen)
    page.wait_for_url(re.compile(r"/login/[^/]+/enrol"))
    enrol = page.url.split("?")[0]
    tab.check("set up the authenticator app")
    tab.check("set up the authenticator app with an error", f"{enrol}?error=code")
    secret = page.locator("#secret").text_content() or ""
    page.fill("#code", pyotp.TOTP(secret.replace(" ", "")).now())
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/login/[^/]+/recovery-codes"))
    tab.check("recovery codes")


def test_second_factors_reset_consent_and_sign_out(
    stack: Stack, pages: Callable[[], Pages]
) -> None:
    tab = pages()
    page = tab.tab.page
    citizen = _citizen(stack, totp=True)
    tab.sign_in_password(citizen)
    page.wait_for_url(re.compile(r"/login/[^/]+/totp"))
    totp = page.url.split("?")[0]
    start = totp.removesuffix("/totp")
    tab.check("one-time code")
    tab.check("one-time code with an error", f"{totp}?error=code")
    tab.check("recovery code", f"{start}/recovery")
    tab.check("code by email", f"{start}/email")

    # A password reset: the email's link opens the page to choose a new password.
    page.goto(f"{start}/forgot?lang=en")
    page.fill("#username", citizen.username)
    page.locator("form button[type=submit]").first.click()
    tab.check("reset link sent")
    for runtime in _runtime(stack):
        link = re.search(r"https?://\S+/password/reset/\S+", outbox(runtime)[-1]["text"])
        assert link is not None
        tab.check("choose a new password", link.group(0))

    # Signed in, a third-party e-service asks for consent.
    page.goto(f"{totp}?lang=en")
    page.fill("#code", pyotp.TOTP(citizen.totp_secret or "").now())
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{stack.elicensing.url}/")
    client_id = _third_party(stack)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": "https://tax.example.am/callback",
            "scope": "openid profile email",
            "state": "s",
            "nonce": "n",
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"{stack.provider.url}/authorize?{query}")
    page.wait_for_url(re.compile(r"/consent/"))
    tab.check("consent")

    # Sign out at the provider: confirm, stay, then sign out.
    tab.check("confirm sign-out", f"{stack.provider.url}/logout")
    page.goto(f"{stack.provider.url}/logout?lang=en")
    page.get_by_role("button", name="Stay signed in").click()
    tab.check("still signed in")
    page.goto(page.url.replace("lang=ru", "lang=en"))
    page.get_by_role("button", name="Sign out").click()
    tab.check("signed out")
