"""The citizen's account pages and the administrators' indicators, in a real browser: on a phone
and on a desktop, without JavaScript, to a screen reader (axe), in Armenian, English and Russian.

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
    """A tab of `context` whose steps are saved under `folder`."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return Visit(page, axe_source, folder, phone=phone)


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
    page.goto(f"{stack.provider.url}/account")
    assert _heading(tab) == "Your account"
    menu = page.get_by_role("navigation", name="Your account")
    assert "Signed in as demo" in menu.inner_text()
    profile = page.locator("dl.profile").inner_text()
    for detail in ("Anahit", "Petrosyan", "1990-04-12", "demo.citizen@example.org"):
        assert detail in profile
    tab.step("profile")

    menu.get_by_role("link", name="Password", exact=True).click()
    page.wait_for_url(f"{stack.provider.url}/account/password")
    assert _heading(tab) == "Change your password"
    for label in ("Current password", "New password", "New password again"):
        assert page.get_by_label(label, exact=True).is_visible()
    assert page.get_by_role("button", name="Change password").is_visible()
    tab.step("password")

    menu.get_by_role("link", name="Second factor").click()
    page.wait_for_url(f"{stack.provider.url}/account/security")
    assert _heading(tab) == "Second factor and recovery codes"
    assert page.get_by_text("An authenticator app is set up.").is_visible()
    assert page.get_by_role("link", name="Replace the authenticator app").is_visible()
    assert page.get_by_role("button", name="Make new recovery codes").is_visible()
    tab.step("second factor and recovery codes")

    menu.get_by_role("link", name="Sessions").click()
    page.wait_for_url(f"{stack.provider.url}/account/sessions")
    assert _heading(tab) == "Where you are signed in"
    here = page.get_by_role("row").filter(has_text="(this browser)")
    assert here.count() == 1
    assert "Chrome" in here.inner_text()
    assert here.get_by_role("button", name="Sign out").is_visible()
    assert page.get_by_role("button", name="Sign out everywhere").is_visible()
    tab.step("sessions")

    menu.get_by_role("link", name="Connected e-services").click()
    page.wait_for_url(f"{stack.provider.url}/account/services")
    assert _heading(tab) == "Connected e-services"
    licensing = page.get_by_role("region", name="e-licensing")
    assert licensing.get_by_text("Receives").is_visible()
    assert licensing.get_by_role("button", name="Revoke consent").is_visible()
    tab.step("connected e-services")

    menu.get_by_role("link", name="Where your identity was used").click()
    page.wait_for_url(f"{stack.provider.url}/account/history")
    assert _heading(tab) == "Where your identity was used"
    signed_in = page.get_by_role("row").filter(has_text="Sign-in").filter(has_text="e-licensing")
    assert signed_in.count() >= 1
    assert signed_in.first.get_by_role("button", name="This wasn't me").is_visible()
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
    assert "Hayk" in page.locator("dl.profile").inner_text()
    tab.step("profile without JavaScript", accessible=False)

    # A form: new recovery codes, shown once.
    page.goto(f"{stack.provider.url}/account/security")
    assert page.get_by_text("Unused recovery codes: 0").is_visible()
    page.get_by_role("button", name="Make new recovery codes").click()
    assert _heading(tab) == "Your new recovery codes"
    codes = page.locator("ul.codes code").all_inner_texts()
    assert len(codes) == 10 and all(code.strip() for code in codes)
    tab.step("new recovery codes without JavaScript", accessible=False)
    page.get_by_role("link", name="Done").click()
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

    # A form: sign out of this browser's session; the account asks to sign in again.
    here = page.get_by_role("row").filter(has=page.locator("strong"))
    assert here.count() == 1
    here.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(rf"^{re.escape(stack.provider.url)}/login/"))
    assert page.get_attribute("html", "lang") == "hy"
    assert page.locator("#password").is_visible()
    tab.step("signed out without JavaScript", accessible=False)


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


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_administrator_reads_the_indicators(
    stack: Stack, open_tab: Callable[..., Visit], phone: bool
) -> None:
    admin = _new_account(stack, admin=True)
    tab = open_tab(phone=phone)
    page = tab.page
    page.goto(f"{stack.provider.url}/admin/indicators")
    _sign_in(tab, stack, admin)
    page.wait_for_url(f"{stack.provider.url}/admin/indicators")
    assert _heading(tab) == "Indicators"
    charts = page.locator("figure")
    assert charts.count() == 3
    for index in range(3):
        chart = charts.nth(index)
        assert chart.locator("figcaption").inner_text()
        assert chart.locator("svg").is_visible()
    table = page.get_by_role("table", name="Sign-ins by period")
    assert table.is_visible()
    assert table.get_by_role("row").filter(has_text="Whole range").count() == 1
    assert table.locator("tbody tr").count() == 31  # 30 days and the whole range
    assert page.get_by_role("link", name="Export CSV").is_visible()
    tab.step("indicators")

    page.get_by_label("Period", exact=True).select_option("w")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"period=w"))
    assert page.get_by_role("table", name="Sign-ins by period").is_visible()
    tab.step("indicators by week")
