"""The console's pages for what the indicators are computed from: transactions by channel and
costs (a list, one row entered, a CSV import that writes every line or none), the citizens'
comments, and an e-service's indicator settings on its edit page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
from sqlalchemy import func, select
from starlette.testclient import TestClient

from idp.db.models import ChannelTotal, Client, Event, FeedbackRating, ServiceCost
from idp.runtime import Runtime
from tests.admin.conftest import Console, changes_shown, form_fields
from tests.admin.test_console_pages import error_summary
from tests.signin.helpers import Citizen, add_client, forms

TRANSACTIONS = "/admin/indicators/transactions"
COSTS = "/admin/indicators/costs"
COMMENTS = "/admin/indicators/comments"


def _token(page: httpx.Response, action: str) -> str:
    found = [f for f in forms(page.text) if f.method == "post" and f.action == action]
    assert found, f"no form to {action}"
    return found[0].fields["csrf_token"]


def _upload(console: Console, page: httpx.Response, action: str, text: str) -> httpx.Response:
    """Send `text` as the chosen file of the import form, as a browser does (multipart)."""
    return console.client.post(
        action,
        data={"csrf_token": _token(page, action)},
        files={"file": ("figures.csv", text.encode(), "text/csv")},
        follow_redirects=False,
    )


def _count(runtime: Runtime, model: type[ChannelTotal] | type[ServiceCost]) -> int:
    with runtime.db.read() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _cells(page: httpx.Response) -> list[list[str]]:
    body = re.search(r'<tbody class="govuk-table__body">(.*?)</tbody>', page.text, re.S)
    assert body is not None
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [
        [
            " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


def _banner(page: httpx.Response) -> str:
    found = re.search(r'<div class="govuk-notification-banner.*?</div>\s*</div>', page.text, re.S)
    assert found is not None, "no notification banner"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(0))).split())


def test_a_wrong_file_is_refused_naming_its_line_and_a_right_one_is_listed(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    page = console.open(admin, TRANSACTIONS)
    assert page.status_code == 200
    assert '<a class="govuk-link govuk-link--no-visited-state idp-subnav__link"' in page.text
    assert f'href="{TRANSACTIONS}" aria-current="page"' in page.text
    assert 'href="/admin/indicators"' in page.text and f'href="{COMMENTS}"' in page.text
    assert 'enctype="multipart/form-data"' in page.text

    wrong = (
        "client_id,month,channel,transactions\n"
        "tax,2026-01,online,600\n"
        "tax,2026-13,post,30\n"  # line 3: no 13th month
    )
    refused = _upload(console, page, f"{TRANSACTIONS}/import", wrong)
    assert refused.status_code == 400
    assert error_summary(refused) == [
        ("file", "line 3: the month must be written YYYY-MM: '2026-13'")
    ]
    assert _count(runtime, ChannelTotal) == 0  # not even line 2

    unknown = _upload(
        console,
        refused,
        f"{TRANSACTIONS}/import",
        "client_id,month,channel,transactions\ntax,2026-01,online,5\nnope,2026-01,post,1\n",
    )
    assert error_summary(unknown) == [("file", "line 3: there is no e-service 'nope'")]
    assert _count(runtime, ChannelTotal) == 0

    right = (
        "client_id,month,channel,transactions\n"
        "tax,2026-01,online,600\n"
        "tax,2026-01,post,30\n"
        "tax,2026-02,in_person,7\n"
    )
    sent = _upload(console, page, f"{TRANSACTIONS}/import", right)
    assert sent.status_code == 303, sent.text
    listed = console.follow(sent)
    assert listed.status_code == 200
    assert _banner(listed) == "Success 3 rows of the file are saved."
    assert _cells(listed) == [
        ["Tax service tax", "2026-02", "In person", "7"],
        ["Tax service tax", "2026-01", "Online", "600"],
        ["Tax service tax", "2026-01", "By post", "30"],
    ]
    filtered = console.get(TRANSACTIONS, params={"client_id": "tax", "since": "2026-02"})
    assert [row[1] for row in _cells(filtered)] == ["2026-02"]
    bad_filter = console.get(TRANSACTIONS, params={"since": "February"})
    assert bad_filter.status_code == 400
    assert error_summary(bad_filter) == [
        ("since", "the first month: the month must be written YYYY-MM: 'February'")
    ]
    with runtime.db.read() as db:
        audited = db.scalars(select(Event).where(Event.type == "admin.channel_totals_set")).one()
    assert (audited.actor, audited.data["via"], audited.data["rows"]) == (
        "admin:root-admin",
        "csv",
        3,
    )


def test_pasted_lines_import_without_a_file(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    page = console.open(admin, COSTS)
    assert page.status_code == 200
    action = f"{COSTS}/import"
    empty = console.post_form(page, action, {"pasted": "  "})
    assert empty.status_code == 400
    assert error_summary(empty) == [("file", "Choose a CSV file, or paste its lines")]
    wrong = console.post_form(
        page, action, {"pasted": "client_id,month,amount\ntax,2026-01,10.005\n"}
    )
    assert wrong.status_code == 400
    assert error_summary(wrong) == [
        (
            "file",
            "line 2: the amount must be a number from 0 with at most two decimals: '10.005'",
        )
    ]
    assert "tax,2026-01,10.005" in wrong.text  # the lines stay in the form, to be corrected
    assert _count(runtime, ServiceCost) == 0
    sent = console.post_form(
        page, action, {"pasted": "client_id,month,amount\ntax,2026-01,5015.5\n"}
    )
    assert sent.status_code == 303
    listed = console.follow(sent)
    assert _banner(listed) == "Success 1 row of the file is saved."
    assert _cells(listed) == [["Tax service tax", "2026-01", "5015.50"]]
    assert "Cost (AMD)" in listed.text


def test_one_row_entered_on_the_form(console: Console, admin: Citizen, runtime: Runtime) -> None:
    add_client(runtime)
    page = console.open(admin, TRANSACTIONS)
    wrong = console.post_form(
        page,
        TRANSACTIONS,
        {"client_id": "tax", "month": "2026-03", "channel": "phone", "transactions": "-4"},
    )
    assert wrong.status_code == 400
    assert error_summary(wrong) == [
        (
            "transactions",
            "the row entered: transactions must be a whole number from 0 to 1000000000000: '-4'",
        )
    ]
    assert dict(form_fields(wrong.text, TRANSACTIONS))["month"] == "2026-03"  # kept
    assert _count(runtime, ChannelTotal) == 0
    future = (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m")
    later = console.post_form(
        page,
        TRANSACTIONS,
        {"client_id": "tax", "month": future, "channel": "phone", "transactions": "4"},
    )
    assert error_summary(later) == [
        ("month", f"the row entered: the month {future} has not begun yet")
    ]
    sent = console.post_form(
        page,
        TRANSACTIONS,
        {"client_id": "tax", "month": "2026-03", "channel": "phone", "transactions": "4"},
    )
    assert sent.status_code == 303
    listed = console.follow(sent)
    assert _banner(listed) == "Success The row is saved."
    assert _cells(listed) == [["Tax service tax", "2026-03", "By phone", "4"]]
    costs = console.get(COSTS)
    sent = console.post_form(costs, COSTS, {"client_id": "tax", "month": "2026-03", "amount": "99"})
    assert sent.status_code == 303
    assert _cells(console.follow(sent)) == [["Tax service tax", "2026-03", "99.00"]]


def test_a_citizen_and_a_forged_form_are_refused(
    console: Console, admin: Citizen, citizen: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    page = console.open(admin, TRANSACTIONS)
    no_token = console.client.post(
        f"{TRANSACTIONS}/import",
        files={"file": ("f.csv", b"client_id,month,channel,transactions\ntax,2026-01,post,1\n")},
        follow_redirects=False,
    )
    assert no_token.status_code == 403
    forged = console.client.post(
        TRANSACTIONS,
        data={
            "csrf_token": "x" * 64,
            "client_id": "tax",
            "month": "2026-01",
            "channel": "post",
            "transactions": "1",
        },
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert _count(runtime, ChannelTotal) == 0
    assert page.status_code == 200

    other = Console(TestClient(console.client.app, base_url=runtime.settings.issuer), runtime)
    for path in (TRANSACTIONS, COSTS, COMMENTS):
        assert other.open(citizen, path).status_code == 403


def _rate(runtime: Runtime, client_id: str, score: int, comment: str, days_ago: int) -> None:
    now = datetime.now(UTC) - timedelta(days=days_ago)
    with runtime.db.transaction() as db:
        db.add(
            FeedbackRating(
                source="signin",
                client_id=client_id,
                score=score,
                comment=comment,
                comment_expires_at=now + timedelta(days=90),
                occurred_at=now,
                created_at=now,
            )
        )


def test_the_comments_newest_first_escaped_with_their_retention(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    _rate(runtime, "tax", 2, "Too many steps", days_ago=3)
    _rate(runtime, "tax", 5, "<script>alert('x')</script> fast & easy", days_ago=1)
    page = console.open(admin, COMMENTS)
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; fast &amp; easy" in page.text
    rows = _cells(page)
    assert [(row[2], row[3]) for row in rows] == [
        ("5 of 5", "<script>alert('x')</script> fast & easy"),
        ("2 of 5", "Too many steps"),
    ]
    assert rows[0][1] == "Tax service Asked after signing in"
    assert "A comment is kept 90 days, then erased" in page.text
    since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    recent = console.get(COMMENTS, params={"since": since})
    assert [row[2] for row in _cells(recent)] == ["5 of 5"]
    wrong = console.get(COMMENTS, params={"until": "yesterday"})
    assert wrong.status_code == 400
    assert error_summary(wrong) == [
        ("until", "Write the date as YYYY-MM-DD, for example 2026-03-27")
    ]
    armenian = console.get(COMMENTS, params={"lang": "hy"})
    assert armenian.status_code == 200 and 'lang="hy"' in armenian.text


EDIT = "/admin/clients/tax/edit"


def test_the_edit_page_sets_the_indicator_settings(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    page = console.open(admin, EDIT)
    assert page.status_code == 200
    fields = dict(form_fields(page.text, EDIT))
    assert "public_stats" not in fields and fields["feedback_sampling_rate"] == "0"
    wrong = console.submit(page, EDIT, {"public_stats": "1", "feedback_sampling_rate": "150"})
    assert wrong.status_code == 400
    assert error_summary(wrong) == [
        (
            "feedback_sampling_rate",
            "The sampling rate must be a number from 0 to 100, for example 5 or 2.5",
        )
    ]
    with runtime.db.read() as db:
        client = db.scalar(select(Client).where(Client.client_id == "tax"))
        assert client is not None and client.public_stats is False  # nothing written

    sent = console.submit(
        wrong, EDIT, {"public_stats": "1", "feedback_sampling_rate": "2.5", "name": "Tax office"}
    )
    assert sent.status_code == 303, sent.text
    with runtime.db.read() as db:
        client = db.scalar(select(Client).where(Client.client_id == "tax"))
        assert client is not None
        assert (client.public_stats, client.feedback_sampling_rate, client.name) == (
            True,
            0.025,
            "Tax office",
        )
        audited = db.scalars(
            select(Event).where(Event.type == "admin.client_indicator_settings")
        ).one()
    assert audited.data["changes"] == {
        "public_stats": {"before": False, "after": True},
        "feedback_sampling_rate": {"before": 0.0, "after": 0.025},
    }
    detail = console.follow(sent)
    assert changes_shown(detail.text) == {
        "Shown on the public statistics page": ("no", "yes"),
        "Citizens asked after sign-in (share)": ("0.0", "0.025"),
        "Name": ("Tax service", "Tax office"),
    }
    again = console.get(EDIT)
    fields = dict(form_fields(again.text, EDIT))
    assert (fields["public_stats"], fields["feedback_sampling_rate"]) == ("1", "2.5")
    unchanged = console.submit(again, EDIT, {})
    assert unchanged.headers["location"] == "/admin/clients/tax?done=unchanged"
