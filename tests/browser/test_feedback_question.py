"""Our question after a completed sign-in, in a real browser with JavaScript turned off: the
citizen signs in to e-licensing with a password and a one-time code, is asked how easy it was
(in Armenian, English and Russian, on a desktop and a phone: no serious or critical WCAG 2.1 AA
violation, no sideways scrolling), answers or skips, and lands on e-licensing signed in; an
answer reaches the administrators' indicators."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from idp.app import create_app
from idp.demo import ELICENSING_ID
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services import users as user_service
from idp.stats import rollup
from tests.admin.conftest import Console
from tests.browser.conftest import Visit
from tests.browser.test_signin_pages import LANGUAGES, VIEWPORTS
from tests.demo_stack import Stack
from tests.signin.helpers import Citizen, add_citizen

SIGNED_IN = "You are signed in to e-licensing."


@pytest.fixture
def runtime(stack: Stack) -> Iterator[Runtime]:
    """The stack's database, as an administrator's dashboard counts it (every cell shown)."""
    settings = stack.settings.model_copy(update={"stats_min_cell": 1})
    built = Runtime.build(settings)
    try:
        yield built
    finally:
        built.db.dispose()


@pytest.fixture
def asking(runtime: Runtime) -> Iterator[None]:
    """e-licensing asks after every sign-in while the test runs."""
    with runtime.db.transaction() as db:
        before = client_service.get_client(db, ELICENSING_ID).feedback_sampling_rate
        client_service.set_indicator_settings(
            db, ELICENSING_ID, feedback_sampling_rate=1.0, actor="test"
        )
    yield
    with runtime.db.transaction() as db:
        client_service.set_indicator_settings(
            db, ELICENSING_ID, feedback_sampling_rate=before, actor="test"
        )


def _no_script_tab(browser: Any, open_tab: Callable[..., Visit], viewport: str) -> Visit:
    context = browser.new_context(**VIEWPORTS[viewport], locale="en-GB", java_script_enabled=False)
    return open_tab(context=context, phone=viewport == "phone")


class Checker:
    """Checks a page of a tab without scripts (axe-core, sideways scrolling): axe-core needs
    scripts, so the page as the tab shows it, without its `<script>` elements, is opened at
    the same address in a tab of the same size that runs scripts, and checked there."""

    def __init__(self, browser: Any, tab: Visit, viewport: str) -> None:
        self.context = browser.new_context(**VIEWPORTS[viewport], locale="en-GB")
        folder = tab.folder / "checked"
        folder.mkdir(exist_ok=True)
        page = self.context.new_page()
        self.visit = Visit(page, tab.axe_source, folder, phone=tab.phone, looked_at=tab.looked_at)
        self.tab = tab

    def step(self, name: str) -> None:
        shown = self.tab.page
        assert not shown.evaluate("document.body.classList.contains('js-enabled')")
        html = re.sub(r"<script\b.*?</script>", "", shown.content(), flags=re.S)
        address = shown.url
        page = self.visit.page
        page.route(address, lambda route: route.fulfill(body=html, content_type="text/html"))
        page.goto(address)
        page.unroute(address)
        assert page.get_attribute("html", "lang") == shown.get_attribute("html", "lang")
        self.visit.step(name)

    def close(self) -> None:
        self.context.close()


def _sign_in(tab: Visit, stack: Stack, citizen: Citizen) -> str:
    """Sign in to e-licensing up to our question; returns its address."""
    page = tab.page
    provider = re.escape(stack.provider.url)
    page.goto(f"{stack.elicensing.url}/login")
    page.wait_for_url(re.compile(rf"^{provider}/login/"))
    page.fill("#username", citizen.username)
    page.fill("#password", citizen.password)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(rf"^{provider}/login/.+/totp"))
    page.fill("#code", pyotp.TOTP(citizen.totp_secret or "").now())
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(rf"^{provider}/feedback/"))
    return page.url.split("?", 1)[0]


def _signin_ratings(runtime: Runtime, console: Console, admin: Citizen) -> int:
    """How many sign-in ratings e-licensing has, as `/admin/indicators.json` says, once the
    counting has caught up."""
    rollup.run(runtime)
    assert console.open(admin, "/admin/indicators").status_code == 200
    body = console.get(f"/admin/indicators.json?client={ELICENSING_ID}").json()
    ratings = body["satisfaction"]["signin"]["ratings"]
    return int(ratings or 0)


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_the_question_without_javascript_in_three_languages_and_an_answer_counted(
    stack: Stack,
    browser: Any,
    open_tab: Callable[..., Visit],
    runtime: Runtime,
    asking: None,
    viewport: str,
) -> None:
    citizen = add_citizen(runtime, f"ask-{secrets.token_hex(4)}")
    admin = add_citizen(runtime, f"admin-{secrets.token_hex(4)}", email=None)
    with runtime.db.transaction() as db:
        user_service.set_admin(db, admin.username, True, actor="test")
    app = create_app(runtime=runtime)
    with TestClient(app, base_url=runtime.settings.issuer) as http:
        console = Console(http, runtime)
        before = _signin_ratings(runtime, console, admin)

        tab = _no_script_tab(browser, open_tab, viewport)
        page = tab.page
        question = _sign_in(tab, stack, citizen)
        checker = Checker(browser, tab, viewport)
        headings = set()
        for code in LANGUAGES:
            page.goto(f"{question}?lang={code}")
            assert page.get_attribute("html", "lang") == code
            heading = page.get_by_role("heading", level=1).inner_text()
            assert "e-licensing" in heading
            headings.add(heading)
            assert page.get_by_role("radio").count() == 5
            tab.step(f"question {code}", accessible=False)
            checker.step(f"question {code}")
        checker.close()
        assert len(headings) == 3  # each language its own words
        page.goto(f"{question}?lang=en")
        assert page.get_by_role("heading", level=1).inner_text() == (
            "How easy was it to sign in to e-licensing?"
        )
        page.get_by_label("Easy", exact=True).check()
        page.get_by_label("Anything you want to tell us? (optional)").fill("Quick and clear.")
        page.get_by_role("button", name="Send").click()
        page.wait_for_url(f"{stack.elicensing.url}/")
        assert page.locator("#status").inner_text() == SIGNED_IN

        assert _signin_ratings(runtime, console, admin) == before + 1


def test_the_question_skipped_or_answered_wrongly_without_javascript(
    stack: Stack,
    browser: Any,
    open_tab: Callable[..., Visit],
    runtime: Runtime,
    asking: None,
) -> None:
    citizen = add_citizen(runtime, f"skip-{secrets.token_hex(4)}")
    tab = _no_script_tab(browser, open_tab, "phone")
    page = tab.page
    question = _sign_in(tab, stack, citizen)
    page.goto(f"{question}?lang=en")
    page.get_by_role("button", name="Send").click()  # nothing chosen
    summary = page.locator(".govuk-error-summary")
    assert "Select how easy it was to sign in, or skip the question" in summary.inner_text()
    assert page.title().startswith("Error:")
    tab.step("question with an error", accessible=False)
    checker = Checker(browser, tab, "phone")
    checker.step("question with an error")
    checker.close()
    page.get_by_role("button", name="Skip").click()
    page.wait_for_url(f"{stack.elicensing.url}/")
    assert page.locator("#status").inner_text() == SIGNED_IN
    # Asked once: signing in again within the window goes straight back to e-licensing.
    page.goto(f"{stack.elicensing.url}/login")
    page.wait_for_url(f"{stack.elicensing.url}/")
    assert page.locator("#status").inner_text() == SIGNED_IN


def test_never_asked_after_a_refused_or_cancelled_sign_in(
    stack: Stack,
    browser: Any,
    open_tab: Callable[..., Visit],
    runtime: Runtime,
    asking: None,
) -> None:
    citizen = add_citizen(runtime, f"refused-{secrets.token_hex(4)}")
    tab = _no_script_tab(browser, open_tab, "phone")
    page = tab.page
    provider = re.escape(stack.provider.url)
    page.goto(f"{stack.elicensing.url}/login")
    page.wait_for_url(re.compile(rf"^{provider}/login/"))
    page.fill("#username", citizen.username)
    page.fill("#password", citizen.password + "-wrong")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"[?&]error=credentials"))
    assert page.locator(".govuk-error-summary").is_visible()  # refused: asked nothing
    assert "/feedback/" not in page.url
    page.get_by_role("link", name="Cancel and go back to e-licensing").click()
    page.wait_for_url(re.compile(rf"^{re.escape(stack.elicensing.url)}/"))
    assert "/feedback/" not in page.url
    assert page.locator("#status").inner_text() == (
        "You cancelled the sign-in, or did not agree to share your details."
    )
