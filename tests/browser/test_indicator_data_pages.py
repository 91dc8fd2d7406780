"""The indicators' own console pages (transactions by channel, costs, citizens' comments) and
the public statistics page `/stats`, in a real browser (Chromium), on a desktop (1280 x 800)
and a phone (390 x 844), in Armenian, English and Russian: no serious or critical WCAG 2.1 AA
violation (axe-core), no sideways scrolling of the page (a wide table scrolls inside its own
region). An administrator imports a wrong file, reads the line named, then a right one."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from idp.db.models import FeedbackRating
from idp.services import clients as client_service
from idp.services import transactions
from idp.stats import rollup
from idp.stats.periods import start_of
from tests.browser.conftest import Visit
from tests.browser.test_account_pages import _sign_in
from tests.browser.test_admin_pages import ConsolePages, _seed, console  # noqa: F401
from tests.browser.test_signin_pages import LANGUAGES, VIEWPORTS, _runtime
from tests.demo_stack import Stack
from tests.stats.test_kpis import record, signin


def _figures(stack: Stack, *, public: bool = False) -> str:
    """An e-service with a long name and two months of sign-ins, transactions, costs and a
    comment, public or not (the public page then shows that one only); the name."""
    tag = secrets.token_hex(3)
    name = f"Civil registry certificates and extracts {tag}"
    this = start_of("m", datetime.now(UTC).date())
    latest = start_of("m", this - timedelta(days=1))
    before = start_of("m", latest - timedelta(days=1))
    client_id = f"civil-registry-{tag}"
    for runtime in _runtime(stack):
        with runtime.db.transaction() as db:
            client_service.register_client(
                db,
                client_service.NewClient(
                    name=name,
                    client_id=client_id,
                    redirect_uris=["https://civil.example.am/callback"],
                ),
                actor="test",
            )
            client_service.set_indicator_settings(db, client_id, public_stats=public, actor="test")
        for month, citizens in ((before, 7), (latest, 9)):
            for user in range(1, citizens + 1):
                signin(runtime, month + timedelta(days=1), 900000 + user, client=client_id)
            when = datetime(month.year, month.month, 3, 9, tzinfo=UTC)
            record(runtime, when, "signin.started", client_id=client_id)
        with runtime.db.transaction() as db:
            lines = ["client_id,month,channel,transactions"]
            costs = ["client_id,month,amount"]
            for month, online in ((before, 1200), (latest, 1450)):
                label = month.isoformat()[:7]
                lines += [f"{client_id},{label},online,{online}", f"{client_id},{label},post,300"]
                costs.append(f"{client_id},{label},{online * 3}.50")
            transactions.import_channel_totals(db, "\n".join(lines), actor="test")
            transactions.import_costs(db, "\n".join(costs), actor="test")
            now = datetime.now(UTC)
            db.add(
                FeedbackRating(
                    source="signin",
                    client_id=client_id,
                    score=4,
                    comment="The code arrived late, but the rest was quick. " * 6,
                    comment_expires_at=now + timedelta(days=90),
                    occurred_at=now,
                    created_at=now,
                )
            )
        rollup.run(runtime)
    return name


def _import(page: Any, text: str) -> None:
    """Choose `text` as the CSV file of the import form, and send it."""
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "figures.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.get_by_role("button", name="Import").click()


def test_the_indicator_data_pages(console: ConsolePages, stack: Stack) -> None:  # noqa: F811
    admin, _client_id, _username = _seed(stack)
    _figures(stack)
    page = console.page
    page.goto(f"{stack.provider.url}/admin/indicators/transactions")
    _sign_in(console.tab, stack, admin)
    page.wait_for_url(f"{stack.provider.url}/admin/indicators/transactions")

    console.check("transactions by channel", "/admin/indicators/transactions")
    console.check("costs", "/admin/indicators/costs")
    console.check("citizens' comments", "/admin/indicators/comments")
    console.check(
        "transactions, bad filter", "/admin/indicators/transactions?since=March", status=400
    )

    # A wrong file is refused, its line named in the error summary; a right one is listed.
    page.goto(f"{stack.provider.url}/admin/indicators/transactions?lang=en")
    month = (start_of("m", datetime.now(UTC).date()) - timedelta(days=1)).isoformat()[:7]
    wrong = f"client_id,month,channel,transactions\n{_client_id},{month},fax,3\n"
    _import(page, wrong)
    summary = page.locator(".govuk-error-summary")
    assert "line 2: the channel 'fax' is not one of" in summary.inner_text()
    console.tab.step("transactions, a wrong file")
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.id") == "file"
    right = f"client_id,month,channel,transactions\n{_client_id},{month},phone,3\n"
    _import(page, right)
    banner = page.locator(".govuk-notification-banner--success")
    assert "1 row of the file is saved." in banner.inner_text()
    console.tab.step("transactions, a file imported")


def _public_tab(browser: Any, open_tab: Callable[..., Visit], viewport: str) -> tuple[Any, Visit]:
    context = browser.new_context(**VIEWPORTS[viewport], locale="en-GB")
    return context, open_tab(context=context, phone=viewport == "phone")


def test_the_public_statistics_page(
    browser: Any, open_tab: Callable[..., Visit], stack: Stack
) -> None:
    name = _figures(stack, public=True)
    for viewport in sorted(VIEWPORTS):
        context, tab = _public_tab(browser, open_tab, viewport)
        try:
            titles = set()
            for code in LANGUAGES:
                response = tab.page.goto(f"{stack.provider.url}/stats?lang={code}")
                assert response is not None and response.status == 200, (viewport, code)
                assert tab.page.get_attribute("html", "lang") == code
                titles.add(tab.page.title())
                assert tab.page.get_by_role("heading", name=name).count() == 1
                region = tab.page.locator(".idp-scroll").first
                assert region.get_attribute("tabindex") == "0"
                tab.step(f"stats {viewport} {code}")
            assert len(titles) == 3
            if viewport == "phone":  # the months' table is wider than a phone: it scrolls
                wider = tab.page.evaluate(
                    "(() => { const r = document.querySelector('.idp-scroll');"
                    " return r.scrollWidth - r.clientWidth; })()"
                )
                assert wider > 0
        finally:
            context.close()
