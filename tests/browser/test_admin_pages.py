"""Every page of the administration console, the indicators dashboard included, in a real
browser (Chromium), on a desktop (1280 x 800) and a phone (390 x 844), in
Armenian, English and Russian: no serious or critical WCAG 2.1 AA violation (axe-core), no
sideways scrolling, each page in its language, and every action that cannot be undone on a
warning-styled button, behind a confirmation page. An administrator changes an e-service and
reads the change in the audit log, then disables it after confirming."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from idp import demo_history
from idp.account.compromise import report_not_me
from idp.db.models import Event, User
from idp.demo import EJUSTICE_ID, ELICENSING_ID
from idp.services import clients as client_service
from idp.services import keys as key_service
from idp.services import users as user_service
from idp.stats import rollup
from tests.browser.conftest import SCREENSHOTS, Visit
from tests.browser.test_account_pages import Account, _sign_in
from tests.browser.test_signin_pages import (
    LANGUAGES,
    UNWARNED_DESTRUCTIVE_BUTTONS,
    VIEWPORTS,
    _runtime,
)
from tests.demo_stack import Stack
from tests.signin.helpers import add_citizen

# Links to a page whose action cannot be undone (its confirmation page) that do not look
# destructive: GOV.UK's warning button.
UNWARNED_DESTRUCTIVE_LINKS = r"""() => {
  const destructive =
    /\/(end-sessions|disable|retire|reset-second-factor|rotate-secret|rotate-now)$/;
  return Array.from(document.querySelectorAll('main a[href]'))
    .filter((link) => destructive.test(new URL(link.href).pathname))
    .filter((link) => !link.classList.contains('govuk-button--warning'))
    .map((link) => link.textContent.trim());
}"""


def _seed(stack: Stack) -> tuple[Account, str, str]:
    """An administrator, e-services enough for a second page, and a citizen who reported a
    use of their identity; the e-service and the citizen the test works on."""
    tag = secrets.token_hex(3)
    for runtime in _runtime(stack):
        admin = add_citizen(runtime, f"admin-{tag}", email=None)
        citizen = add_citizen(runtime, f"citizen-{tag}", email=f"citizen-{tag}@example.am")
        with runtime.db.transaction() as db:
            user_service.set_admin(db, admin.username, True, actor="test")
            for number in range(client_service_count(db)):
                client_service.register_client(
                    db,
                    client_service.NewClient(
                        name=f"Registry {tag} {number:02d}",
                        client_id=f"registry-{tag}-{number:02d}",
                        redirect_uris=[f"https://registry{number}.example.am/callback"],
                    ),
                    actor="test",
                )
            registered = client_service.register_client(
                db,
                client_service.NewClient(
                    name="Land cadastre",
                    client_id=f"land-cadastre-with-a-long-identifier-{tag}",
                    redirect_uris=["https://land.example.am/callback/with/a/long/path"],
                    post_logout_redirect_uris=["https://land.example.am/"],
                    contacts=["it@land.example.am"],
                    legal_basis="Law on the land cadastre, article 12.",
                    subject_type="pairwise",
                ),
                actor="test",
            )
            user = db.scalar(select(User).where(User.username == citizen.username))
            assert user is not None
            entry = db.scalar(select(Event).where(Event.user_id == user.id).limit(1))
            assert entry is not None
            report_not_me(db, user, entry, ip="192.0.2.7")
        assert admin.totp_secret is not None
        account = Account(admin.username, admin.password, admin.totp_secret)
        return account, registered.client.client_id, citizen.username
    raise AssertionError("unreachable")


def client_service_count(db: Any) -> int:
    """How many more e-services make the list longer than one page."""
    _, total = client_service.search_clients(db, None, limit=1)
    return max(0, 21 - total)


class ConsolePages:
    """One tab that shows each console page in the three languages and checks it."""

    def __init__(self, tab: Visit, stack: Stack) -> None:
        self.tab = tab
        self.stack = stack

    @property
    def page(self) -> Any:
        return self.tab.page

    def check(self, name: str, path: str, *, status: int = 200) -> None:
        titles = set()
        for code in LANGUAGES:
            url = f"{self.stack.provider.url}{path}{'&' if '?' in path else '?'}lang={code}"
            response = self.page.goto(url)
            assert response is not None and response.status == status, (name, code)
            assert self.page.get_attribute("html", "lang") == code, (name, code)
            titles.add(self.page.title().split(" · ")[0])  # the page's own title
            assert not self.page.evaluate(UNWARNED_DESTRUCTIVE_BUTTONS), (name, code)
            assert not self.page.evaluate(UNWARNED_DESTRUCTIVE_LINKS), (name, code)
            navigation = self.page.get_by_role("navigation", name=re.compile(".+")).first
            assert navigation.is_visible() or self.tab.phone, name
            self.tab.step(f"{name} {code}")
        assert len(titles) == 3, f"{name}: {titles}"  # each language its own words
        self.page.goto(f"{self.stack.provider.url}{path}{'&' if '?' in path else '?'}lang=en")

    def confirmation(self, name: str, path: str) -> None:
        """A confirmation page: a warning text, one warning button posting to its own
        address, and the way back."""
        self.check(name, path)
        forms = self.page.locator("main form[method=post]")
        assert forms.count() == 1, name
        assert forms.first.locator("button.govuk-button--warning").count() == 1, name
        assert self.page.locator("main .govuk-warning-text").count() == 1, name


@pytest.fixture(params=sorted(VIEWPORTS))
def console(
    request: pytest.FixtureRequest, browser: Any, open_tab: Callable[..., Visit], stack: Stack
) -> Iterator[ConsolePages]:
    context = browser.new_context(**VIEWPORTS[request.param], locale="en-GB")
    try:
        yield ConsolePages(open_tab(context=context, phone=request.param == "phone"), stack)
    finally:
        context.close()


def test_every_console_page(console: ConsolePages, stack: Stack) -> None:
    admin, client_id, username = _seed(stack)
    page = console.page
    page.goto(f"{stack.provider.url}/admin/")
    _sign_in(console.tab, stack, admin)
    page.wait_for_url(f"{stack.provider.url}/admin/")

    console.check("overview", "/admin/")
    console.check("e-services", "/admin/clients")
    assert page.locator("nav.govuk-pagination").count() == 1  # more than one page
    console.check("e-services, second page", "/admin/clients?page=2")
    console.check("e-services found", "/admin/clients?q=cadastre")
    console.check("register an e-service", "/admin/clients/new")
    console.check("an e-service", f"/admin/clients/{client_id}")
    console.check("change an e-service", f"/admin/clients/{client_id}/edit")
    console.confirmation("rotate a secret", f"/admin/clients/{client_id}/rotate-secret")
    console.confirmation("disable an e-service", f"/admin/clients/{client_id}/disable")
    console.check("citizens", "/admin/citizens")
    console.check("a citizen", f"/admin/citizens/{username}")
    console.confirmation("disable a citizen", f"/admin/citizens/{username}/disable")
    console.confirmation("end sessions", f"/admin/citizens/{username}/end-sessions")
    console.confirmation("reset a second factor", f"/admin/citizens/{username}/reset-second-factor")
    console.check("signing keys", "/admin/keys")
    for runtime in _runtime(stack):
        kid = next(
            s.key.kid for s in key_service.list_keys(runtime.keyring) if s.status == "active"
        )
    console.confirmation("retire a key", f"/admin/keys/{kid}/retire")
    console.confirmation("sign with a new key now", "/admin/keys/rotate-now?alg=ES256")
    console.check("audit log", "/admin/audit")
    assert page.locator("nav.govuk-pagination").count() == 1
    console.check(
        "audit log, bad date", "/admin/audit?since-day=31&since-month=2&since-year=2025", status=400
    )
    console.check("audit chain", "/admin/audit/verify")
    console.check("security reports", "/admin/security-reports")
    console.check("refused", "/admin/clients/no-such-e-service", status=404)

    # The register wizard refuses bad input with an error summary linked to the field.
    page.goto(f"{stack.provider.url}/admin/clients/new?lang=en")
    page.get_by_label("Name citizens see").fill("Water supply")
    page.get_by_label("Redirect URIs, one per line").fill("http://water.example.am/callback")
    page.get_by_role("button", name="Register").click()
    summary = page.locator(".govuk-error-summary")
    assert "must use https" in summary.inner_text()
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.id") == "redirect_uris"
    console.tab.step("register an e-service with an error")


def test_an_administrator_changes_then_disables_an_e_service(
    console: ConsolePages, stack: Stack
) -> None:
    admin, client_id, _ = _seed(stack)
    page = console.page
    page.goto(f"{stack.provider.url}/admin/clients/{client_id}?lang=en")
    _sign_in(console.tab, stack, admin)
    page.wait_for_url(re.compile(rf"/admin/clients/{re.escape(client_id)}"))

    # Change: the name and a contact; the page then says what changed, before and after.
    page.get_by_role("button", name="Change", exact=True).click()
    page.wait_for_url(re.compile(r"/edit$"))
    page.get_by_label("Name citizens see").fill("Land and property cadastre")
    page.get_by_label("Contact email addresses, one per line").fill("registry@land.example.am")
    page.get_by_role("button", name="Save the changes").click()
    page.wait_for_url(re.compile(r"done=updated"))
    banner = page.locator(".govuk-notification-banner--success").inner_text()
    assert "Land cadastre" in banner and "Land and property cadastre" in banner
    assert "it@land.example.am" in banner and "registry@land.example.am" in banner
    assert page.get_by_role("heading", level=1).inner_text() == "Land and property cadastre"
    console.tab.step("the e-service changed")

    # The audit log tells the same, as fields.
    page.goto(f"{stack.provider.url}/admin/audit?type=admin.client_updated&client_id={client_id}")
    entry = page.locator(".govuk-summary-card").first.inner_text()
    assert "Name" in entry and "Land cadastre" in entry and "Land and property cadastre" in entry
    assert "{" not in entry  # no JSON
    console.tab.step("the change in the audit log")

    # Disable: a warning button, a confirmation page, then the e-service is disabled.
    page.goto(f"{stack.provider.url}/admin/clients/{client_id}?lang=en")
    page.get_by_role("button", name="Disable", exact=True).click()
    page.wait_for_url(re.compile(r"/disable$"))
    console.tab.step("confirm disabling")
    page.get_by_role("button", name="Disable the e-service").click()
    page.wait_for_url(re.compile(r"done=disabled"))
    assert "Its tokens no longer work" in page.locator(".govuk-notification-banner").inner_text()
    assert page.locator(".govuk-tag", has_text="Disabled").count() == 1
    console.tab.step("disabled")
    for runtime in _runtime(stack):
        with runtime.db.read() as db:
            assert client_service.get_client(db, client_id).disabled_at is not None


def test_the_indicators_dashboard(console: ConsolePages, stack: Stack) -> None:
    """On the demo's history (five e-services, 90 days): the headline tiles, a chart with its
    table for every series, the e-services ranked and sortable, the drill-down to one, the
    presets and a refused filter, in every language on a desktop and a phone."""
    admin, _, _ = _seed(stack)
    for runtime in _runtime(stack):
        demo_history.seed(runtime)
        rollup.run(runtime)
        # The stack is shared: its e-services go on signing citizens in without a question.
        with runtime.db.transaction() as db:
            for client_id in (ELICENSING_ID, EJUSTICE_ID):
                client_service.set_indicator_settings(
                    db, client_id, feedback_sampling_rate=0.0, actor="test"
                )
    page = console.page
    page.goto(f"{stack.provider.url}/admin/indicators")
    _sign_in(console.tab, stack, admin)
    page.wait_for_url(re.compile(r"/admin/indicators"))
    console.check("indicators", "/admin/indicators")
    if not console.tab.phone:  # the picture of docs/indicators.md
        page.screenshot(path=SCREENSHOTS / "indicators-desktop.png", full_page=True)
    assert page.locator(".idp-tile").count() == 11
    # Not shown over 30 days: the monthly figures, and the share of the adult population
    # (not set here), each saying why.
    assert page.locator(".idp-tile__value--none").count() == 3
    assert page.locator(".idp-tile__note").count() == 3
    charts = page.locator("svg.idp-chart")
    assert charts.count() == 8
    for index in range(charts.count()):
        table = charts.nth(index).get_attribute("aria-describedby")
        assert page.locator(f"table#{table}").count() == 1, table
    page.get_by_text("Show the figures").first.click()
    assert page.locator("table#table-signins").is_visible()
    assert page.locator("table#table-signins tbody tr").count() == 30
    console.tab.step("the figures of a chart")

    ranking = page.locator("#eservices-table")
    assert ranking.locator("tbody tr").count() >= 5
    page.get_by_role("link", name=re.compile(r"^Completion rate")).click()
    page.wait_for_url(re.compile(r"sort=completion_rate"))
    rates = page.locator("#eservices-table tbody tr td:nth-child(3)").all_inner_texts()
    shown = [float(rate.rstrip(" %")) for rate in rates if rate != "—"]
    assert len(shown) >= 5 and shown == sorted(shown, reverse=True)
    console.tab.step("ranked by completion rate")

    page.locator("#eservices-table").get_by_role("link", name="e-tax (demo data)").click()
    page.wait_for_url(re.compile(r"client=demo-etax"))
    assert page.get_by_role("heading", name="e-tax (demo data)").is_visible()
    assert page.locator("#eservices-table").count() == 0
    console.check("an e-service's indicators", page.url.split(stack.provider.url, 1)[1])
    page.get_by_role("link", name="Last 3 whole months").click()
    page.wait_for_url(re.compile(r"period=w"))
    assert "client=demo-etax" in page.url
    for monthly in ("Digital take-up", "Cost per transaction"):  # whole months: shown
        tile = page.locator(".idp-tile").filter(has=page.get_by_role("heading", name=monthly))
        assert tile.locator(".idp-tile__value").inner_text().strip() != "not shown", monthly
        assert tile.locator(".idp-tile__change").count() == 1, monthly
    here = page.url.split(stack.provider.url, 1)[1]
    console.check("indicators, last 3 whole months", here)
    console.check("indicators, a bad date", "/admin/indicators?since=tomorrow", status=400)
    assert page.locator(".govuk-error-summary").is_visible()
