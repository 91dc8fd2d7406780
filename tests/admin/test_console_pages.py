"""The console's pages as an administrator uses them: changing an e-service on its edit page,
reading what changed (the page, the audit log), confirming an action that cannot be undone,
finding the way through long lists."""

from __future__ import annotations

import re
from html import unescape

import httpx
from sqlalchemy import func, select

from idp.db.models import Client, Event, User
from idp.runtime import Runtime
from idp.services import clients as client_service
from tests.admin.conftest import Console, changes_shown, form_fields
from tests.admin.test_client_changes import documents, settings  # noqa: F401 (fixtures)
from tests.admin.test_pages import console_token
from tests.hosts import Documents
from tests.signin.helpers import Citizen, add_citizen, add_client, forms

TAX = "https://tax.example.am/callback"
EDIT = "/admin/clients/tax/edit"


def stored(runtime: Runtime, client_id: str = "tax") -> Client:
    with runtime.db.read() as db:
        return client_service.get_client(db, client_id)


def updates(runtime: Runtime) -> int:
    with runtime.db.read() as db:
        found = select(func.count()).where(Event.type == "admin.client_updated")
        return int(db.scalar(found) or 0)


def error_summary(page: httpx.Response) -> list[tuple[str, str]]:
    """The error summary's messages and the fields they link to."""
    summary = re.search(r'<div class="govuk-error-summary".*?</ul>', page.text, re.S)
    assert summary is not None, "no error summary"
    return [
        (href, unescape(re.sub(r"\s+", " ", text).strip()))
        for href, text in re.findall(r'<a href="#([^"]*)">(.*?)</a>', summary.group(0), re.S)
    ]


# Changing an e-service ----------------------------------------------------------------------


def test_the_edit_page_changes_an_e_service_and_says_what_changed(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    detail = console.open(admin, "/admin/clients/tax")
    assert f'href="{EDIT}"' in detail.text
    page = console.get(EDIT)
    assert page.status_code == 200
    fields = dict(form_fields(page.text, EDIT))  # the form holds what the e-service has
    assert fields["name"] == "Tax service"
    assert fields["redirect_uris"] == TAX
    assert fields["subject_type"] == "public"

    sent = console.submit(
        page,
        EDIT,
        {
            "name": "Tax office",
            "contacts": "it@tax.example.am\nhelp@tax.example.am",
            "scopes": ["openid", "profile", "email"],
        },
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/admin/clients/tax?done=updated"
    client = stored(runtime)
    assert client.name == "Tax office"
    assert client.contacts == ["it@tax.example.am", "help@tax.example.am"]
    assert client.scope == "openid profile email"
    assert client.redirect_uris == [TAX]  # what was not changed stays

    # The e-service's page says what changed, before and after, in a success banner.
    shown = console.get(sent.headers["location"])
    banner = re.search(
        r'<div class="govuk-notification-banner govuk-notification-banner--success".*?</dl>',
        shown.text,
        re.S,
    )
    assert banner is not None
    assert changes_shown(banner.group(0)) == {
        "Name": ("Tax service", "Tax office"),
        "Contacts": ("none", "it@tax.example.am, help@tax.example.am"),
        "Scopes it may ask for": ("openid profile", "openid profile email"),
    }

    # So does the audit log, as fields: no JSON.
    audit = console.get("/admin/audit?type=admin.client_updated")
    assert changes_shown(audit.text)["Name"] == ("Tax service", "Tax office")
    assert "&#34;" not in audit.text and "{" not in re.sub(r"<script.*?</script>", "", audit.text)


def test_bad_input_shows_the_form_again_and_writes_nothing(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/")
    page = console.get(EDIT)
    before = stored(runtime)
    for changes, field, reason in [
        ({"redirect_uris": "http://tax.example.am/callback"}, "redirect_uris", "must use https"),
        ({"name": ""}, "name", "'name' cannot be cleared"),
        ({"contacts": "not-an-address"}, "contacts", "is not an email address"),
        ({"jwks": "{not json"}, "jwks", "not valid JSON"),
        ({"grant_types": []}, "grant_types", "'grant_types' cannot be cleared"),
    ]:
        sent = console.submit(page, EDIT, {**changes, "logo_uri": "https://tax.example.am/l.png"})
        assert sent.status_code == 400, (changes, sent.text)
        [(linked, message)] = error_summary(sent)
        assert linked == field and reason in message, (changes, linked, message)
        assert f'id="{field}-error"' in sent.text  # the field says it too
        # What was typed is kept, and the form still knows what it first showed.
        assert dict(form_fields(sent.text, EDIT))["logo_uri"] == "https://tax.example.am/l.png"
        assert (
            dict(form_fields(sent.text, EDIT))["original"]
            == dict(form_fields(page.text, EDIT))["original"]
        )
    after = stored(runtime)
    assert (after.name, after.logo_uri, after.redirect_uris, after.contacts) == (
        before.name,
        before.logo_uri,
        before.redirect_uris,
        before.contacts,
    )
    assert updates(runtime) == 0


def test_a_change_made_meanwhile_to_another_field_stays(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/")
    page = console.get(EDIT)  # the form shows the e-service as it is now
    with runtime.db.transaction() as db:  # then someone else adds a contact
        client_service.update_client(
            db,
            "tax",
            client_service.ClientChanges({"contacts": ["ops@tax.example.am"]}),
            actor="admin:someone-else",
        )
    sent = console.submit(page, EDIT, {"name": "Tax office"})
    assert sent.status_code == 303, sent.text
    client = stored(runtime)
    assert (client.name, client.contacts) == ("Tax office", ["ops@tax.example.am"])


def test_nothing_to_change_writes_nothing(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/")
    sent = console.submit(console.get(EDIT), EDIT, {})
    assert sent.headers["location"] == "/admin/clients/tax?done=unchanged"
    assert "Nothing was changed" in console.get(sent.headers["location"]).text
    assert updates(runtime) == 0


def test_new_identifiers_for_citizens_must_be_confirmed(
    console: Console,
    admin: Citizen,
    runtime: Runtime,
    documents: Documents,  # noqa: F811 (the fixture imported above)
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/")
    page = console.get(EDIT)
    assert "changes the identifiers citizens have at this e-service" in page.text
    sent = console.submit(page, EDIT, {"subject_type": "pairwise"})
    assert sent.status_code == 400
    [(linked, message)] = error_summary(sent)
    assert linked == "confirm_subjects"
    assert "identifiers at this e-service will change" in message
    assert "govuk-warning-text" in sent.text
    assert stored(runtime).subject_type == "public" and updates(runtime) == 0

    # Confirmed, the change is made.
    confirmed = console.submit(sent, EDIT, {"subject_type": "pairwise", "confirm_subjects": "1"})
    assert confirmed.status_code == 303, confirmed.text
    assert stored(runtime).subject_type == "pairwise"

    # A pairwise e-service moved to another sector: the same.
    sector = documents.url("/sector.json")
    page = console.get(EDIT)
    moved = console.submit(page, EDIT, {"sector_identifier_uri": sector})
    assert moved.status_code == 400 and "confirm_subjects" in moved.text
    assert stored(runtime).sector_identifier_uri is None
    done = console.submit(moved, EDIT, {"sector_identifier_uri": sector, "confirm_subjects": "1"})
    assert done.status_code == 303, done.text
    assert stored(runtime).sector_identifier_uri == sector

    # Another change of a pairwise e-service that keeps its sector asks nothing.
    plain = console.submit(console.get(EDIT), EDIT, {"name": "Tax office"})
    assert plain.status_code == 303, plain.text


def test_the_edit_page_needs_csrf_and_a_fresh_sign_in(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/")
    page = console.get(EDIT)
    fields = form_fields(page.text, EDIT)
    forged = [(name, value) for name, value in fields if name != "csrf_token"]
    sent = console.client.post(EDIT, data=dict([*forged, ("name", "Forged")]))
    assert sent.status_code == 403
    console.age_session(runtime.settings.admin_reauth_seconds + 60)
    sent = console.submit(page, EDIT, {"name": "Tax office"})
    assert sent.status_code == 303 and sent.headers["location"].startswith("/login/")
    assert stored(runtime).name == "Tax service" and updates(runtime) == 0
    # The page itself asks for a fresh sign-in first, so that what is typed is not lost.
    assert console.get(EDIT).headers["location"].startswith("/login/")
    assert console.get("/admin/clients/nobody/edit").status_code == 303


def test_an_unknown_e_service_has_no_edit_page(console: Console, admin: Citizen) -> None:
    console.open(admin, "/admin/")
    assert console.get("/admin/clients/nobody/edit").status_code == 404
    sent = console.client.post(
        "/admin/clients/nobody/edit",
        data={"csrf_token": console_token(console), "name": "x"},
        follow_redirects=False,
    )
    assert sent.status_code == 404


# Actions that cannot be undone ------------------------------------------------------------------

CONFIRMED = [
    "/admin/clients/tax/rotate-secret",
    "/admin/clients/tax/disable",
    "/admin/citizens/anahit/disable",
    "/admin/citizens/anahit/end-sessions",
    "/admin/citizens/anahit/reset-second-factor",
    "/admin/keys/rotate-now?alg=ES256",
]


def test_each_action_that_cannot_be_undone_is_confirmed_on_its_own_page(
    console: Console, admin: Citizen, citizen: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/")
    for path in CONFIRMED:
        page = console.get(path)
        assert page.status_code == 200, path
        [form] = [f for f in forms(page.text) if f.method == "post"]
        assert form.action == path  # the action itself, at the same address
        assert "csrf_token" in form.fields
        block = re.search(r'<form method="post".*?</form>', page.text, re.S)
        assert block is not None
        assert re.search(r'<button[^>]*class="govuk-button govuk-button--warning"', block.group(0))
        assert "govuk-warning-text" in page.text
        assert re.search(
            r'<a class="govuk-link" href="/admin/[^"]*">Cancel, go back</a>', page.text
        )
    # The pages that lead there: warning-styled buttons, to the confirmation, never a form.
    for page, paths in [
        ("/admin/clients/tax", CONFIRMED[:2]),
        ("/admin/citizens/anahit", CONFIRMED[2:5]),
    ]:
        html = console.get(page).text
        for path in paths:
            link = re.search(rf'<a href="{re.escape(path)}"[^>]*>', html)
            assert link is not None and "govuk-button--warning" in link.group(0), path
            assert f'<form method="post" action="{path}"' not in html


def test_a_confirmed_action_still_needs_csrf_and_a_fresh_sign_in(
    console: Console, admin: Citizen, citizen: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/")
    pages = {path: console.get(path) for path in CONFIRMED}
    for path in CONFIRMED:
        sent = console.client.post(path, data={}, follow_redirects=False)
        assert sent.status_code == 403, path
    console.age_session(runtime.settings.admin_reauth_seconds + 60)
    for path, page in pages.items():
        sent = console.post_form(page, path)
        assert sent.status_code == 303, path
        assert sent.headers["location"].startswith("/login/"), path
        # The confirmation page asks for the fresh sign-in too.
        assert console.get(path).headers["location"].startswith("/login/"), path
    with runtime.db.read() as db:
        assert db.scalar(select(Event).where(Event.actor == "admin:root-admin")) is None
        user = db.scalar(select(User).where(User.username == "anahit"))
        assert user is not None and user.disabled_at is None
    assert stored(runtime).disabled_at is None

    # Signed in again, the sign-in comes back to the confirmation, and the action is done.
    again = console.follow(console.sign_in(admin, sent, step=1))
    assert str(again.url).endswith(CONFIRMED[-1])
    done = console.post_form(again, CONFIRMED[-1])
    assert done.headers["location"] == "/admin/keys?done=rotated_now"


# Long lists ---------------------------------------------------------------------------------


def page_links(html: str) -> list[str]:
    """The numbers of GOV.UK pagination's page links, the current one marked with `*`."""
    nav = re.search(r'<nav class="govuk-pagination".*?</nav>', html, re.S)
    if nav is None:
        return []
    found = []
    for attrs, number in re.findall(r"<a ([^>]*)>\s*(\d+)\s*</a>", nav.group(0)):
        found.append(f"{number}*" if 'aria-current="page"' in attrs else number)
    return found


def test_long_lists_have_pages(console: Console, admin: Citizen, runtime: Runtime) -> None:
    with runtime.db.transaction() as db:
        for number in range(95):
            client_service.register_client(
                db,
                client_service.NewClient(
                    name=f"Registry {number:03d}",
                    client_id=f"registry-{number:03d}",
                    redirect_uris=[f"https://registry{number}.example.am/callback"],
                ),
                actor="test",
            )
    console.open(admin, "/admin/")
    first = console.get("/admin/clients?q=registry")
    assert page_links(first.text) == ["1*", "2", "5"]  # and a gap between 2 and 5
    assert "govuk-pagination__item--ellipsis" in first.text
    assert "95 found · page 1 of 5" in first.text
    assert 'href="/admin/clients?q=registry&amp;page=2" rel="next"' in first.text
    assert 'rel="prev"' not in first.text
    third = console.get("/admin/clients?q=registry&page=3")
    assert page_links(third.text) == ["1", "2", "3*", "4", "5"]
    assert "Registry 040" in third.text and "Registry 059" in third.text
    assert "Registry 039" not in third.text and "Registry 060" not in third.text
    last = console.get("/admin/clients?q=registry&page=5")
    assert page_links(last.text) == ["1", "4", "5*"]
    assert 'rel="next"' not in last.text and "Registry 094" in last.text
    # One page: no pagination.
    assert page_links(console.get("/admin/clients?q=registry-001").text) == []

    # The audit log's pages keep its filters.
    audit = console.get("/admin/audit?type=admin.client_registered")
    assert page_links(audit.text) == ["1*", "2", "5"]
    assert 'href="/admin/audit?type=admin.client_registered&amp;page=2"' in audit.text


def test_the_citizens_list_has_pages(console: Console, admin: Citizen, runtime: Runtime) -> None:
    for number in range(25):
        add_citizen(runtime, f"citizen-{number:02d}", email=None, totp=False)
    console.open(admin, "/admin/")
    first = console.get("/admin/citizens?q=citizen-")
    assert page_links(first.text) == ["1*", "2"]
    second = console.get("/admin/citizens?q=citizen-&page=2")
    assert page_links(second.text) == ["1", "2*"]
    assert "citizen-24" in second.text and "citizen-19" not in second.text


def test_the_audit_log_filters_by_dates_typed_in_three_fields(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/")
    today = console.get("/admin/audit?type=admin.client_registered")
    assert "admin.client_registered" in today.text
    past = console.get(
        "/admin/audit?type=admin.client_registered&until-day=1&until-month=1&until-year=2020"
    )
    assert past.status_code == 200 and "No entry matches." in past.text
    # A date that cannot be: an error linked to its first field; what was typed stays.
    bad = console.get("/admin/audit?since-day=31&since-month=2&since-year=2025&lang=en")
    assert bad.status_code == 400
    assert error_summary(bad) == [("since-day", "The start date must be a real date")]
    assert re.search(r'name="since-day"[^>]*value="31"', bad.text)
    # The address of another page may give a date as one parameter.
    legacy = console.get("/admin/audit?since=last-week&lang=en")
    assert legacy.status_code == 400
    assert "'last-week' is not a date" in error_summary(legacy)[0][1]
