"""The citizen's account pages, in a real browser: on a phone and on a desktop, without
JavaScript, to a screen reader (axe), in Armenian, English and Russian.

The demo citizen signs in once per stack (`demo_cookies`) and every test reuses that session:
each one-time code is accepted once, so signing in again and again would have to wait for new
codes. The tests that sign in themselves use accounts of their own, made with the operator's
command line (`idp users create`) against the stack's database.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from idp.db import Database
from idp.db.models import TotpCredential, User
from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS, Visit
from tests.browser.test_signin_pages import UNWARNED_DESTRUCTIVE_BUTTONS, VIEWPORTS
from tests.demo_stack import REPO, Stack

ACCOUNT_PAGES = (
    ("/account", "Your account"),
    ("/account/password", "Change your password"),
    ("/account/security", "Second factor and recovery codes"),
    ("/account/sessions", "Where you are signed in"),
    ("/account/services", "Connected e-services"),
    ("/account/history", "Where your identity was used"),
)
LANGUAGES = ("hy", "en", "ru")
TOTP_PERIOD = 30
# The forms of the page whose action cannot be undone, by the address they post to (the
# navigation's "Sign out" is not one: signing in again undoes it).
IRREVERSIBLE_FORMS = r"""() => {
  const irreversible = /\/(end|end-all|revoke|not-me|recovery-codes)$|^\/logout\/confirm$/;
  return Array.from(document.querySelectorAll('form[method=post]'))
    .filter((form) => !form.closest('nav'))
    .map((form) => new URL(form.action).pathname)
    .filter((path) => irreversible.test(path));
}"""


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    totp_secret: str


def _backend(stack: Stack) -> str:
    return "sqlite" if stack.settings.database_url.startswith("sqlite") else "postgresql"


def _last_used_step(stack: Stack, username: str) -> int | None:
    """The time step of the last one-time code the provider accepted from this account."""
    database = Database.from_url(stack.settings.database_url)
    try:
        with database.transaction() as db:
            query = (
                select(TotpCredential.last_used_step)
                .join(User, User.id == TotpCredential.user_id)
                .where(User.username == username)
            )
            return db.scalar(query)
    finally:
        database.dispose()


def _unused_code(stack: Stack, account: Account) -> str:
    """A one-time code the provider has not accepted yet (each is accepted once).

    The code of the step before this one is still accepted: it is preferred, so that the
    current code stays free for whoever signs in next. When the step ends in a few seconds,
    or the usable steps were used already, wait for the next step.
    """
    last = _last_used_step(stack, account.username)
    while True:
        now = time.time()
        current, elapsed = int(now // TOTP_PERIOD), now % TOTP_PERIOD
        step = current - 1 if last is None else max(current - 1, last + 1)
        if step <= current and elapsed < TOTP_PERIOD - 5:
            return str(pyotp.TOTP(account.totp_secret).at(step * TOTP_PERIOD))
        time.sleep(TOTP_PERIOD - elapsed + 0.2)


def _sign_in(tab: Visit, stack: Stack, account: Account, *, accessible: bool = True) -> None:
    """Password, then the one-time code, on the provider's pages."""
    page = tab.page
    page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
    tab.step("password page", accessible=accessible)
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/login/[^/]+/totp"))
    tab.step("one-time code page", accessible=accessible)
    page.fill("#code", _unused_code(stack, account))
    page.get_by_role("button", name="Continue").click()


def _new_account(stack: Stack, *, admin: bool = False) -> Account:
    """A new account with an authenticator app, made as an operator would: `idp users create`
    against the stack's database."""
    kind = "admin" if admin else "citizen"
    account = Account(
        username=f"{kind}-{secrets.token_hex(4)}",
        password=f"browser-{secrets.token_urlsafe(12)}",
        totp_secret=pyotp.random_base32(32),
    )
    command = [sys.executable, "-m", "idp", "users", "create", "--json"]
    command += ["--username", account.username, "--password", account.password]
    command += ["--totp-secret", account.totp_secret]
    command += ["--given-name", "Hayk", "--family-name", "Sargsyan"]
    if admin:
        command.append("--admin")
    done = subprocess.run(
        command, env=stack.provider.env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"idp users create failed: {done.stdout}{done.stderr}"
    return account


def _tab(context: Any, axe_source: str, folder: Path, *, phone: bool) -> Visit:
    """A tab of `context` whose steps are saved under `folder` (named after the test, so
    after its database: screenshots on SQLite only, as `Visit` says)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    looked_at = "postgresql" not in str(folder.relative_to(SCREENSHOTS))
    return Visit(page, axe_source, folder, phone=phone, looked_at=looked_at)


def _heading(tab: Visit) -> str:
    return str(tab.page.get_by_role("heading", level=1).inner_text())


@pytest.fixture(scope="module")
def demo_cookies(stack: Stack, browser: Any, axe_source: str) -> list[dict[str, Any]]:
    """The cookies of a browser where the demo citizen signed in to their account, then to
    e-licensing (single sign-on: no second sign-in), so that their history has an entry."""
    context = browser.new_context(**PHONE, locale="en-GB")
    try:
        folder = SCREENSHOTS / f"account-demo-sign-in-{_backend(stack)}"
        tab = _tab(context, axe_source, folder, phone=True)
        page = tab.page
        demo = Account(stack.creds.username, stack.creds.password, stack.creds.totp_secret)
        page.goto(f"{stack.provider.url}/account")
        _sign_in(tab, stack, demo)
        page.wait_for_url(f"{stack.provider.url}/account")
        assert _heading(tab) == "Your account"
        page.goto(stack.elicensing.url)
        page.get_by_role("link", name="Sign in with National digital identity").click()
        page.wait_for_url(f"{stack.elicensing.url}/")
        assert page.locator("#status").inner_text() == "You are signed in to e-licensing."
        tab.step("signed in to e-licensing")
        cookies: list[dict[str, Any]] = context.cookies()
        return cookies
    finally:
        context.close()


@pytest.fixture
def new_context(browser: Any) -> Iterator[Callable[..., Any]]:
    """A browser profile with options of the test's choosing, closed after the test."""
    made: list[Any] = []

    def make(*, phone: bool, **options: Any) -> Any:
        context = browser.new_context(**(PHONE if phone else DESKTOP), **options)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_citizen_finds_everything_about_their_identity(
    stack: Stack,
    open_tab: Callable[..., Visit],
    demo_cookies: list[dict[str, Any]],
    phone: bool,
) -> None:
    tab = open_tab(phone=phone)
    page = tab.page
    page.context.add_cookies(demo_cookies)
    # The account is one link away from any of the provider's pages.
    page.goto(f"{stack.provider.url}/logout")
    page.get_by_role("banner").get_by_role("link", name="Your account").click()
    page.wait_for_url(f"{stack.provider.url}/account")
    assert _heading(tab) == "Your account"
    menu = page.get_by_role("navigation", name="Your account")
    profile = page.locator("#profile").inner_text()
    for detail in ("demo", "Anahit", "Petrosyan", "12 April 1990", "demo.citizen@example.org"):
        assert detail in profile
    tab.step("profile")

    def section(name: str, path: str, heading: str) -> None:
        if phone and not menu.get_by_role("link", name=name, exact=True).is_visible():
            menu.get_by_role("button", name="Menu").click()
        menu.get_by_role("link", name=name, exact=True).click()
        page.wait_for_url(f"{stack.provider.url}{path}")
        assert _heading(tab) == heading
        current = menu.locator("[aria-current=page]")
        assert (current.text_content() or "").strip() == name

    section("Password", "/account/password", "Change your password")
    for label in ("Current password", "New password", "New password again"):
        assert page.get_by_label(label, exact=True).is_visible()
    assert page.get_by_role("button", name="Change password").is_visible()
    tab.step("password")

    section("Second factor", "/account/security", "Second factor and recovery codes")
    assert page.get_by_text("An authenticator app is set up.").is_visible()
    assert page.get_by_role("button", name="Replace the authenticator app").is_visible()
    assert page.get_by_role("button", name="Make new recovery codes").is_visible()
    tab.step("second factor and recovery codes")

    section("Sessions", "/account/sessions", "Where you are signed in")
    here = page.get_by_role("row").filter(has_text="This device")
    assert here.count() == 1
    assert "Chrome" in here.inner_text() and "Substantial" in here.inner_text()
    assert here.get_by_role("link", name=re.compile("^Sign out")).is_visible()
    assert page.get_by_role("button", name="Sign out everywhere").is_visible()
    tab.step("sessions")

    section("Connected e-services", "/account/services", "Connected e-services")
    licensing = page.get_by_role("row").filter(has_text="e-licensing")
    assert "Email address" in licensing.inner_text()
    assert licensing.get_by_role("link", name=re.compile("^Revoke access")).is_visible()
    tab.step("connected e-services")

    section("Where your identity was used", "/account/history", "Where your identity was used")
    signed_in = page.get_by_role("row").filter(has_text="You signed in")
    signed_in = signed_in.filter(has_text="e-licensing")
    assert signed_in.count() >= 1
    assert signed_in.first.get_by_role("link", name=re.compile("^This wasn't me")).is_visible()
    assert page.get_by_role("link", name="Export as JSON").is_visible()
    tab.step("where my identity was used")


def test_account_forms_work_without_javascript(
    stack: Stack, open_tab: Callable[..., Visit], new_context: Callable[..., Any]
) -> None:
    citizen = _new_account(stack)
    context = new_context(phone=True, java_script_enabled=False, locale="en-GB")
    tab = open_tab(phone=True, context=context)
    page = tab.page
    # axe runs as a script of the page: without JavaScript only the layout is checked here.
    page.goto(f"{stack.provider.url}/account")
    _sign_in(tab, stack, citizen, accessible=False)
    page.wait_for_url(f"{stack.provider.url}/account")
    assert "Hayk" in page.locator("#profile").inner_text()
    tab.step("profile without JavaScript", accessible=False)

    # A form after its confirmation: new recovery codes, shown once.
    page.goto(f"{stack.provider.url}/account/security")
    assert page.get_by_text("Unused recovery codes: 0").is_visible()
    page.get_by_role("button", name="Make new recovery codes").click()
    page.wait_for_url(f"{stack.provider.url}/account/security/recovery-codes")
    tab.step("confirm new recovery codes without JavaScript", accessible=False)
    page.get_by_role("button", name="Make new recovery codes").click()
    assert _heading(tab) == "Your new recovery codes"
    codes = page.locator("#codes li").all_inner_texts()
    assert len(codes) == 10 and all(code.strip() for code in codes)
    tab.step("new recovery codes without JavaScript", accessible=False)
    page.get_by_role("button", name="Done").click()
    page.wait_for_url(f"{stack.provider.url}/account/security")
    assert page.get_by_text("Unused recovery codes: 10").is_visible()

    # A link: the language switch, remembered on the next page.
    english = _heading(tab)
    page.locator("nav a[hreflang=hy]").click()
    page.wait_for_url(re.compile(r"lang=hy"))
    assert page.get_attribute("html", "lang") == "hy"
    assert _heading(tab) not in ("", english)
    page.goto(f"{stack.provider.url}/account/sessions")
    assert page.get_attribute("html", "lang") == "hy"
    tab.step("sessions in Armenian without JavaScript", accessible=False)

    # A form after its confirmation: sign out of this browser's session, as the provider's
    # sign-out does; the account then asks to sign in again.
    here = page.get_by_role("row").filter(has=page.locator(".govuk-tag--green"))
    assert here.count() == 1
    here.locator("a[href$='/end']").click()
    page.wait_for_url(re.compile(r"/account/sessions/[^/]+/end$"))
    tab.step("confirm signing out without JavaScript", accessible=False)
    page.locator("form button.govuk-button--warning").click()
    page.wait_for_url(re.compile(r"/logout/done"))
    assert page.get_attribute("html", "lang") == "hy"
    tab.step("signed out without JavaScript", accessible=False)
    page.goto(f"{stack.provider.url}/account")
    page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
    assert page.get_attribute("html", "lang") == "hy"
    assert page.locator("#password").is_visible()


class AccountPages:
    """One tab that shows account pages in the three languages and checks each: its language,
    a heading of its own in each, axe, no sideways scroll, and any action that cannot be undone
    on a warning button, asked for on a confirmation page of its own."""

    def __init__(self, tab: Visit, stack: Stack) -> None:
        self.tab = tab
        self.stack = stack

    def check(
        self,
        name: str,
        path: str,
        *,
        status: int = 200,
        confirms: str | None = None,
        then: Callable[[str], None] | None = None,
    ) -> None:
        """Show `path` in each language. `confirms`: the page is the confirmation of the action
        that POSTs there (else it has no such form at all); `then(lang)`: more checks."""
        page = self.tab.page
        headings = []
        for code in LANGUAGES:
            separator = "&" if "?" in path else "?"
            response = page.goto(f"{self.stack.provider.url}{path}{separator}lang={code}")
            assert response is not None and response.status == status, (name, code)
            assert page.get_attribute("html", "lang") == code, (name, page.url)
            headings.append(_heading(self.tab))
            assert not page.evaluate(UNWARNED_DESTRUCTIVE_BUTTONS), (name, code)
            forms = page.evaluate(IRREVERSIBLE_FORMS)
            if confirms is None:
                assert forms == [], f"{name}: acts at once, without asking first: {forms}"
            else:
                assert forms == [confirms], (name, forms)
                assert page.locator(".govuk-warning-text").is_visible(), name
                form = page.locator(f"form[action='{confirms}']")
                assert form.locator("button.govuk-button--warning").count() == 1, name
                assert form.locator("a.govuk-link").is_visible(), f"{name}: no way back"
            if then is not None:
                then(code)
            self.tab.step(f"{name} {code}")
        assert len(set(headings)) == 3, f"{name}: {headings}"  # each language its own words


def _link(page: Any, selector: str) -> str:
    href = page.locator(selector).first.get_attribute("href")
    assert href, selector
    return str(href)


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_every_account_page_in_every_language(
    stack: Stack,
    browser: Any,
    axe_source: str,
    viewport: str,
    request: pytest.FixtureRequest,
) -> None:
    citizen = _new_account(stack)
    phone = viewport == "phone"
    width = VIEWPORTS[viewport]["viewport"]["width"]
    folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    here = browser.new_context(**VIEWPORTS[viewport], locale="en-GB")
    elsewhere = browser.new_context(**VIEWPORTS[viewport], locale="en-GB")
    try:
        # Signed in on another device, then in this browser, then to e-licensing from here.
        other = _tab(elsewhere, axe_source, folder / "other-device", phone=phone)
        other.page.goto(f"{stack.provider.url}/account")
        _sign_in(other, stack, citizen, accessible=False)
        other.page.wait_for_url(f"{stack.provider.url}/account")
        tab = _tab(here, axe_source, folder / "pages", phone=phone)
        page = tab.page
        page.goto(f"{stack.provider.url}/account")
        _sign_in(tab, stack, citizen, accessible=False)
        page.wait_for_url(f"{stack.provider.url}/account")
        page.goto(f"{stack.elicensing.url}/login")
        page.wait_for_url(f"{stack.elicensing.url}/")
        # The e-service links back to the account.
        page.get_by_role("link", name="Your National digital identity account").click()
        page.wait_for_url(f"{stack.provider.url}/account")
        pages = AccountPages(tab, stack)

        # What needs a recent sign-in first.
        def replacing(lang: str) -> None:
            assert page.locator("form button.govuk-button--warning").count() == 1
            assert page.locator(".govuk-warning-text").is_visible()

        pages.check("new authenticator app", "/account/security/totp", then=replacing)
        pages.check("new authenticator app, wrong code", "/account/security/totp?error=code")
        codes = "/account/security/recovery-codes"
        pages.check("confirm new recovery codes", codes, confirms=codes)
        headings = []
        for code in LANGUAGES:
            page.goto(f"{stack.provider.url}{codes}?lang={code}")
            with page.expect_navigation():
                page.locator("form button.govuk-button--warning").click()
            assert page.locator("#codes li").count() == 10
            headings.append(_heading(tab))
            tab.step(f"new recovery codes {code}")
        assert len(set(headings)) == 3, headings

        pages.check("profile", "/account")
        pages.check("profile, password changed", "/account?done=password")
        pages.check("password", "/account/password")
        pages.check("password, wrong current one", "/account/password?error=current")
        pages.check("password, not repeated", "/account/password?error=mismatch")
        pages.check("second factor", "/account/security")
        pages.check("second factor, app replaced", "/account/security?done=totp")

        def sessions_tagged(lang: str) -> None:
            assert page.locator(".govuk-tag--green").count() == 1  # this device
            _no_protocol_words(page)

        pages.check("sessions", "/account/sessions", then=sessions_tagged)
        pages.check("sessions, one signed out", "/account/sessions?done=session")
        this_one = _link(page, "tr:has(.govuk-tag--green) a[href$='/end']")
        other_one = _link(page, "tr:not(:has(.govuk-tag--green)) a[href$='/end']")
        pages.check("confirm signing out a device", other_one, confirms=other_one)
        pages.check("confirm signing out here", this_one, confirms="/logout/confirm")
        everywhere = "/account/sessions/end-all"
        pages.check("confirm signing out everywhere", everywhere, confirms=everywhere)

        pages.check("connected e-services", "/account/services")
        pages.check("connected e-services, one revoked", "/account/services?done=revoked")
        revoke = _link(page, "a[href$='/revoke']")
        pages.check("confirm revoking access", revoke, confirms=revoke)

        def history_fits(lang: str) -> None:
            _no_protocol_words(page)
            for details in page.locator("details").all():
                details.locator("summary").click()
            reports = page.locator("a[href$='/not-me']")
            assert reports.count() >= 1
            for index in range(reports.count()):
                box = reports.nth(index).bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width

        pages.check("where your identity was used", "/account/history", then=history_fits)
        not_me = _link(page, "a[href$='/not-me']")
        pages.check("confirm this was not me", not_me, confirms=not_me)
        pages.check("entry not found", "/account/history/999999999/not-me", status=404)
        pages.check("signed out everywhere", "/account/signed-out")
        pages.check("account secured", "/account/secured")

        # "Sign out" in the account's navigation: as the provider's sign-out, the session ends
        # and e-licensing, used in this browser, is told.
        page.goto(f"{stack.provider.url}/account?lang=en")
        menu = page.get_by_role("navigation", name="Your account")
        if phone:
            menu.get_by_role("button", name="Menu").click()
        menu.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/logout/done"))
        assert _heading(tab) == "You have signed out"
        assert page.get_by_role("banner").get_by_role("link", name="Your account").count() == 0
        tab.step("signed out")
        # The back-channel logout reaches e-licensing just after the sign-out's answer.
        deadline = time.monotonic() + 15
        while True:
            page.goto(stack.elicensing.url)
            status = page.locator("#status").inner_text()
            if status == "You are not signed in." or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == "You are not signed in."
        page.goto(f"{stack.provider.url}/account")
        page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
        # The other device is still signed in.
        other.page.goto(f"{stack.provider.url}/account/sessions")
        assert _heading(other) == "Where you are signed in"
    finally:
        here.close()
        elsewhere.close()


# Words of the protocol a citizen should never read: event types, claim and level codes.
PROTOCOL_WORDS = re.compile(
    r"\b(sub|acr|amr|pwd|otp|mfa|hwk|low|substantial|high|signin\.completed|userinfo\.released"
    r"|consent\.granted|consent\.revoked)\b"
)


def _no_protocol_words(page: Any) -> None:
    text = page.locator("main").text_content() or ""
    assert not PROTOCOL_WORDS.search(text), PROTOCOL_WORDS.search(text)


def test_account_pages_speak_the_citizens_language(
    stack: Stack,
    axe_source: str,
    new_context: Callable[..., Any],
    demo_cookies: list[dict[str, Any]],
    request: pytest.FixtureRequest,
) -> None:
    folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    headings: dict[str, list[str]] = {}
    for code in LANGUAGES:
        # A browser set to the citizen's language: its Accept-Language header chooses.
        context = new_context(phone=True, locale=code)
        context.add_cookies(demo_cookies)
        tab = _tab(context, axe_source, folder / code, phone=True)
        for path, _ in ACCOUNT_PAGES:
            tab.page.goto(f"{stack.provider.url}{path}")
            assert tab.page.get_attribute("html", "lang") == code, path
            headings.setdefault(path, []).append(_heading(tab))
            assert tab.page.locator(f"nav a[hreflang={code}][aria-current=true]").is_visible()
            tab.step(f"{path} in {code}")
    for path, english in ACCOUNT_PAGES:
        armenian, in_english, russian = headings[path]
        assert in_english == english
        assert len({armenian, in_english, russian}) == 3, f"{path}: {headings[path]}"

    # The citizen's own choice (the language switch) wins over the browser's, on every page
    # after: this browser asks for Russian.
    tab.page.locator("nav a[hreflang=hy]").click()
    tab.page.wait_for_function("document.documentElement.lang === 'hy'")
    tab.page.goto(f"{stack.provider.url}/account")
    assert tab.page.get_attribute("html", "lang") == "hy"
    assert _heading(tab) == headings["/account"][0]
    tab.step("Armenian chosen in a Russian browser")
