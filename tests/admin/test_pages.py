"""The admin console: signing in, who may enter, and every page and action."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from starlette.routing import Route

from idp.app import routes
from idp.db.models import Client, Event, SsoSession, TotpCredential, User
from idp.runtime import Runtime
from idp.security import hash_secret
from idp.services import keys as key_service
from idp.services import users as user_service
from tests.admin.conftest import Console
from tests.signin.helpers import Citizen, add_citizen, add_client


def admin_urls() -> list[tuple[str, str]]:
    """Every admin page and action of the routes table, with sample path values."""
    found = []
    for route in routes():
        if not isinstance(route, Route) or not route.path.startswith("/admin/"):
            continue
        if "/resume/" in route.path or "/cancel/" in route.path or "/api/" in route.path:
            continue
        path = (
            route.path.replace("{client_id}", "tax")
            .replace("{username}", "anahit")
            .replace("{kid}", "some-kid")
        )
        for method in sorted(route.methods or ()):
            if method in ("GET", "POST"):
                found.append((method, path))
    return found


def test_no_session_signs_in_with_a_second_factor_and_comes_back(
    console: Console, admin: Citizen
) -> None:
    first = console.get("/admin/clients?q=tax")
    assert first.status_code == 303
    assert first.headers["location"].startswith("/login/")
    back = console.sign_in(admin, first)
    assert back.headers["location"].startswith("/admin/resume/")
    page = console.follow(back)
    assert page.status_code == 200
    assert str(page.url).endswith("/admin/clients?q=tax")
    assert "Signed in as root-admin" in page.text


def test_the_console_is_named_in_the_citizens_language(console: Console) -> None:
    login = console.get("/admin/").headers["location"]
    assert "Administration console" in console.get(login + "?lang=en").text
    assert "Կառավարման վահանակ" in console.get(login + "?lang=hy").text
    assert "Консоль администрирования" in console.get(login + "?lang=ru").text


def test_an_administrator_without_an_authenticator_app_must_set_one_up(
    console: Console, runtime: Runtime
) -> None:
    person = add_citizen(runtime, "new-admin", totp=False)
    with runtime.db.transaction() as db:
        user_service.set_admin(db, person.username, True, actor="test")
    first = console.get("/admin/")
    login = first.headers["location"]
    page = console.get(login)
    sent = console.post_form(
        page, login, {"username": person.username, "password": person.password}
    )
    assert sent.headers["location"] == f"{login}/enrol"


def test_a_citizen_is_refused_every_admin_url(
    console: Console, citizen: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    landing = console.open(citizen, "/admin/")
    assert landing.status_code == 403
    assert "administrators" in landing.text
    csrf_token = console_token(console)
    for method, path in admin_urls():
        if method == "GET":
            response = console.get(path)
        else:
            response = console.client.post(
                path, data={"csrf_token": csrf_token}, follow_redirects=False
            )
        assert response.status_code == 403, (method, path, response.status_code)
    with runtime.db.read() as db:
        admin_events = db.scalars(select(Event.type).where(Event.type.startswith("admin."))).all()
    assert "admin.client_disabled" not in admin_events


def console_token(console: Console) -> str:
    """The CSRF token a page of ours would carry in this browser."""
    from idp.csrf import _sign, cookie_name

    value = console.client.cookies.get(cookie_name(console.runtime.settings))
    assert value, "the browser has a CSRF cookie from an earlier page"
    return _sign(value, console.runtime.settings)


def test_a_form_without_its_csrf_token_is_refused(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    wizard = console.open(admin, "/admin/clients/new")
    assert wizard.status_code == 200
    sent = console.client.post(
        "/admin/clients/new",
        data={"name": "Forged", "redirect_uris": "https://forged.example.am/cb"},
        follow_redirects=False,
    )
    assert sent.status_code == 403
    sent = console.post_form(
        wizard,
        "/admin/clients/new",
        {"name": "Forged", "redirect_uris": "https://forged.example.am/cb", "csrf_token": "x" * 64},
    )
    assert sent.status_code == 403
    with runtime.db.read() as db:
        assert db.scalar(select(Client).where(Client.name == "Forged")) is None


SECRET = r'<code class="idp-secret" id="client-secret">([^<]+)</code>'
WIZARD = {
    "name": "Land registry",
    "logo_uri": "https://land.example.am/logo.png",
    "contacts": "it@land.example.am",
    "redirect_uris": "https://land.example.am/callback",
    "post_logout_redirect_uris": "https://land.example.am/",
    "backchannel_logout_uri": "https://land.example.am/logout/backchannel",
    "frontchannel_logout_uri": "https://land.example.am/logout/frontchannel",
    "auth_method": "client_secret_basic",
    "grant_types": "authorization_code",
    "scopes": "profile",
    "subject_type": "pairwise",
    "access_token_format": "opaque",
    "legal_basis": "Law on the land cadastre, article 12.",
}


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://land.example.am/callback", "must use https"),
        ("https://land.example.am/callback#top", "fragment"),
        ("https://*.example.am/callback", "wildcard"),
        ("javascript:alert(1)", "javascript"),
        ("JaVaScRiPt:alert(1)", "javascript"),
        ("data:text/html,hello", "data"),
        ("https://user:pw@land.example.am/callback", "user information"),
        ("/callback", "absolute"),
    ],
)
def test_the_wizard_refuses_bad_redirect_uris_with_a_clear_message(
    console: Console, admin: Citizen, runtime: Runtime, uri: str, reason: str
) -> None:
    wizard = console.open(admin, "/admin/clients/new")
    sent = console.post_form(wizard, "/admin/clients/new", {**WIZARD, "redirect_uris": uri})
    assert sent.status_code == 400
    assert reason in sent.text.lower()
    assert "There is a problem" in sent.text
    assert 'value="Land registry"' in sent.text  # what was typed is kept
    with runtime.db.read() as db:
        assert db.scalar(select(Client).where(Client.name == "Land registry")) is None


def test_the_wizard_refuses_a_deeply_nested_jwks_with_a_clear_message(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    wizard = console.open(admin, "/admin/clients/new")
    nested = "[" * 5000 + "]" * 5000
    fields = {**WIZARD, "auth_method": "private_key_jwt", "jwks": nested}
    sent = console.post_form(wizard, "/admin/clients/new", fields)
    assert sent.status_code == 400
    assert "the jwks is not valid json" in sent.text.lower()
    with runtime.db.read() as db:
        assert db.scalar(select(Client).where(Client.name == "Land registry")) is None


def test_the_wizard_registers_an_e_service_and_shows_its_secret_once(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    wizard = console.open(admin, "/admin/clients/new")
    sent = console.client.post(
        "/admin/clients/new",
        data={
            **{k: v for k, v in WIZARD.items() if k != "scopes"},
            "scopes": ["openid", "profile", "email"],
            "allowed_claims": ["given_name", "family_name", "email"],
            "csrf_token": console_token(console),
        },
        follow_redirects=False,
    )
    assert sent.status_code == 200, sent.text
    assert sent.headers["cache-control"] == "no-store"
    secret = re.search(SECRET, sent.text)
    assert secret is not None
    with runtime.db.read() as db:
        client = db.scalar(select(Client).where(Client.name == "Land registry"))
        assert client is not None
        assert client.secret_hash == hash_secret(secret.group(1))
        assert client.legal_basis == "Law on the land cadastre, article 12."
        assert client.contacts == ["it@land.example.am"]
        assert client.frontchannel_logout_uri == "https://land.example.am/logout/frontchannel"
        assert client.allowed_claims == ["given_name", "family_name", "email"]
        assert client.subject_type == "pairwise"
        client_id = client.client_id
    detail = console.get(f"/admin/clients/{client_id}")
    assert detail.status_code == 200
    assert secret.group(1) not in detail.text
    assert "Law on the land cadastre" in detail.text
    listing = console.get("/admin/clients?q=land")
    assert f"/admin/clients/{client_id}" in listing.text
    assert "Land registry" not in console.get("/admin/clients?q=nothing-like-it").text
    del wizard


def test_rotating_a_secret_shows_the_new_one_once(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    detail = console.open(admin, "/admin/clients/tax")
    assert 'href="/admin/clients/tax/rotate-secret"' in detail.text
    sent = console.confirm("/admin/clients/tax/rotate-secret")
    assert sent.status_code == 200
    secret = re.search(SECRET, sent.text)
    assert secret is not None
    with runtime.db.read() as db:
        client = db.scalar(select(Client).where(Client.client_id == "tax"))
        assert client is not None and client.secret_hash == hash_secret(secret.group(1))


def test_disabling_an_e_service_asks_for_a_fresh_sign_in(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    console.open(admin, "/admin/clients/tax")
    confirmation = console.get("/admin/clients/tax/disable")
    console.age_session(runtime.settings.admin_reauth_seconds + 60)
    sent = console.post_form(confirmation, "/admin/clients/tax/disable")
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/login/")
    with runtime.db.read() as db:
        client = db.scalar(select(Client).where(Client.client_id == "tax"))
        assert client is not None and not client.disabled
    # The password page asks again even though the session is live (force_login); then the
    # confirmation comes back, so that the decision is not lost.
    again = console.sign_in(admin, sent, step=1)
    confirmation = console.follow(again)
    assert str(confirmation.url).endswith("/admin/clients/tax/disable")
    assert "govuk-button--warning" in confirmation.text
    done = console.post_form(confirmation, "/admin/clients/tax/disable")
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/clients/tax?done=disabled"
    shown = console.get(done.headers["location"])
    assert "Its tokens no longer work" in shown.text
    with runtime.db.read() as db:
        client = db.scalar(select(Client).where(Client.client_id == "tax"))
        assert client is not None and client.disabled
        event = db.scalar(select(Event).where(Event.type == "admin.client_disabled"))
        assert event is not None and event.actor == "admin:root-admin"
    enabled = console.post_form(console.get("/admin/clients/tax"), "/admin/clients/tax/enable")
    assert enabled.headers["location"] == "/admin/clients/tax?done=enabled"


def test_managing_a_citizen(
    console: Console, admin: Citizen, citizen: Citizen, runtime: Runtime
) -> None:
    listing = console.open(admin, "/admin/citizens?q=anah")
    assert "/admin/citizens/anahit" in listing.text
    detail = console.get("/admin/citizens/anahit")
    assert detail.status_code == 200
    assert "anahit@example.am" in detail.text
    assert "argon2" not in detail.text
    for action, code, confirmed in [
        ("unlock", "unlocked", False),
        ("end-sessions", "sessions_ended", True),
        ("reset-second-factor", "second_factor_reset", True),
        ("disable", "disabled", True),
        ("enable", "enabled", False),
    ]:
        path = f"/admin/citizens/anahit/{action}"
        if confirmed:
            sent = console.confirm(path)
        else:
            sent = console.post_form(console.get("/admin/citizens/anahit"), path)
        assert sent.status_code == 303, (action, sent.text)
        assert sent.headers["location"] == f"/admin/citizens/anahit?done={code}"
    with runtime.db.read() as db:
        user = db.get(User, citizen.id)
        assert user is not None and not user.disabled
        assert db.scalar(select(TotpCredential).where(TotpCredential.user_id == citizen.id)) is None
        types = set(db.scalars(select(Event.type).where(Event.user_id == citizen.id)))
    assert {
        "admin.user_unlocked",
        "admin.user_sessions_ended",
        "admin.user_second_factor_reset",
        "admin.user_disabled",
        "admin.user_enabled",
    } <= types
    assert console.get("/admin/citizens/nobody-here").status_code == 404
    assert console.get("/admin/citizens/nobody-here/disable").status_code == 404


def test_disabling_a_citizen_ends_their_sessions(
    console: Console, admin: Citizen, citizen: Citizen, runtime: Runtime, client: object
) -> None:
    from starlette.testclient import TestClient

    assert isinstance(client, TestClient)
    other = Console(TestClient(client.app, base_url=runtime.settings.issuer), runtime)
    assert other.open(citizen, "/admin/").status_code == 403  # the citizen has a session
    console.open(admin, "/admin/citizens/anahit")
    assert console.confirm("/admin/citizens/anahit/disable").status_code == 303
    with runtime.db.read() as db:
        live = db.scalars(
            select(SsoSession).where(
                SsoSession.user_id == citizen.id, SsoSession.ended_at.is_(None)
            )
        ).all()
    assert live == []


def _kids(runtime: Runtime, status: str) -> list[str]:
    return [s.key.kid for s in key_service.list_keys(runtime.keyring) if s.status == status]


def test_keys_rotate_and_retire(console: Console, admin: Citizen, runtime: Runtime) -> None:
    page = console.open(admin, "/admin/keys")
    before = page.text.count('class="govuk-summary-card"')
    sent = console.post_form(page, "/admin/keys/rotate", {"alg": "ES256"})
    assert sent.headers["location"] == "/admin/keys?done=rotated"
    page = console.get(sent.headers["location"])
    assert page.text.count('class="govuk-summary-card"') == before + 1
    (upcoming,) = _kids(runtime, "next")
    assert f'href="/admin/keys/{upcoming}/retire"' in page.text
    sent = console.confirm(f"/admin/keys/{upcoming}/retire")
    assert sent.headers["location"] == "/admin/keys?done=retired"
    assert "no longer signs" in console.get(sent.headers["location"]).text
    bad = console.post_form(console.get("/admin/keys"), "/admin/keys/rotate", {"alg": "HS256"})
    assert bad.status_code == 400
    assert "HS256" in bad.text
    assert console.get("/admin/keys/no-such-key/retire").status_code == 404


def test_a_compromised_key_is_replaced_at_once_after_a_confirmation(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    page = console.open(admin, "/admin/keys")
    # The keys page asks for the algorithm, then the confirmation page says what happens.
    assert re.search(r'<form method="get" action="/admin/keys/rotate-now"', page.text)
    active = set(_kids(runtime, "active"))
    sent = console.confirm("/admin/keys/rotate-now?alg=ES256")
    assert sent.headers["location"] == "/admin/keys?done=rotated_now"
    (new,) = set(_kids(runtime, "active")) - active
    assert [s.key.alg for s in key_service.list_keys(runtime.keyring) if s.key.kid == new] == [
        "ES256"
    ]
    assert console.get("/admin/keys/rotate-now?alg=HS256").status_code == 400


def test_rotating_keys_asks_for_a_fresh_sign_in(
    console: Console, admin: Citizen, runtime: Runtime
) -> None:
    page = console.open(admin, "/admin/keys")
    console.age_session(runtime.settings.admin_reauth_seconds + 1)
    sent = console.post_form(page, "/admin/keys/rotate", {"alg": "RS256"})
    assert sent.headers["location"].startswith("/login/")


def test_the_audit_view_filters(console: Console, admin: Citizen, runtime: Runtime) -> None:
    add_client(runtime)
    page = console.open(admin, "/admin/audit?type=admin.")
    assert page.status_code == 200
    assert "admin.client_registered" in page.text
    assert "session.created" not in page.text
    page = console.get("/admin/audit?client_id=tax&type=admin.client_registered")
    assert "admin.client_registered" in page.text
    page = console.get("/admin/audit?user=root-admin")
    assert "admin.user_admin_granted" in page.text
    bad = console.get("/admin/audit?since=last-week")
    assert bad.status_code == 400
    assert "last-week" in bad.text
    verified = console.get("/admin/audit/verify")
    assert "The chain is intact" in verified.text


@pytest.mark.parametrize(
    ("locale", "text"),
    [("hy", "Էլեկտրոնային ծառայություններ"), ("ru", "Электронные услуги"), ("en", "E-services")],
)
def test_the_console_speaks_each_language(
    console: Console, admin: Citizen, locale: str, text: str
) -> None:
    page = console.open(admin, f"/admin/?lang={locale}")
    assert page.status_code == 200
    assert f'<html lang="{locale}">' in page.text
    assert text in page.text


# Every action of the console needs a fresh sign-in ----------------------------------------------

EDIT = {  # the edit form of `add_client`'s e-service, its name changed
    "original": "",
    "name": "Tax office",
    "redirect_uris": "https://tax.example.am/callback",
    "auth_method": "client_secret_basic",
    "grant_types": ["authorization_code", "refresh_token"],
    "scopes": ["openid", "profile"],
    "subject_type": "public",
    "access_token_format": "opaque",
}
ACTIONS: list[tuple[str, dict[str, str | list[str]]]] = [  # each POST of the console, in an order
    # in which each one works
    ("/admin/clients/new", WIZARD),
    ("/admin/clients/tax/rotate-secret", {}),
    ("/admin/clients/tax/disable", {}),
    ("/admin/clients/tax/enable", {}),
    ("/admin/citizens/anahit/unlock", {}),
    ("/admin/citizens/anahit/end-sessions", {}),
    ("/admin/citizens/anahit/reset-second-factor", {}),
    ("/admin/citizens/anahit/disable", {}),
    ("/admin/citizens/anahit/enable", {}),
    ("/admin/clients/tax/edit", EDIT),
    ("/admin/keys/rotate", {"alg": "ES256"}),
    ("/admin/keys/rotate-now?alg=RS256", {}),
    ("/admin/keys/some-kid/retire", {}),  # the key just rotated in
    (
        "/admin/indicators/transactions",
        {"client_id": "tax", "month": "2026-01", "channel": "online", "transactions": "5"},
    ),
    (
        "/admin/indicators/transactions/import",
        {"pasted": "client_id,month,channel,transactions\ntax,2026-01,post,2\n"},
    ),
    ("/admin/indicators/costs", {"client_id": "tax", "month": "2026-01", "amount": "10"}),
    ("/admin/indicators/costs/import", {"pasted": "client_id,month,amount\ntax,2026-02,10\n"}),
]


def console_state(runtime: Runtime) -> tuple[object, ...]:
    """What any console action changes: its audit entries, e-services, accounts, keys."""
    with runtime.db.read() as db:
        done = db.scalars(select(Event.type).where(Event.actor == "admin:root-admin")).all()
        clients = db.execute(
            select(Client.client_id, Client.secret_hash, Client.disabled_at).order_by(Client.id)
        ).all()
        users = db.execute(select(User.username, User.disabled_at, User.is_admin)).all()
        totp = db.scalars(select(TotpCredential.user_id)).all()
        sessions = db.scalars(select(SsoSession.id).where(SsoSession.ended_at.is_(None))).all()
    keys = [(s.key.kid, s.status) for s in key_service.list_keys(runtime.keyring)]
    return tuple(done), tuple(clients), tuple(users), tuple(totp), tuple(sessions), tuple(keys)


def test_every_console_action_asks_for_a_fresh_sign_in_first(
    console: Console, admin: Citizen, citizen: Citizen, runtime: Runtime
) -> None:
    add_client(runtime)
    posts = [path for method, path in admin_urls() if method == "POST"]
    listed = sorted(path.split("?")[0] for path, _ in ACTIONS)
    assert sorted(posts) == listed  # a new action is listed here
    console.open(admin, "/admin/")
    csrf_token = console_token(console)
    console.age_session(runtime.settings.admin_reauth_seconds + 60)
    before = console_state(runtime)

    # Signed in longer ago than `admin_reauth_seconds`: every action signs in again first, and
    # nothing changes (no secret shown, no e-service registered, no key, no account touched).
    for path, form in ACTIONS:
        sent = console.client.post(
            path, data={**form, "csrf_token": csrf_token}, follow_redirects=False
        )
        assert sent.status_code == 303, (path, sent.text)
        assert sent.headers["location"].startswith("/login/"), path
        assert "secret" not in sent.text
    assert console_state(runtime) == before

    # Once signed in again (the password and a new code), each works.
    console.follow(console.sign_in(admin, sent, step=1))
    for path, form in ACTIONS:
        if path.endswith("/retire"):
            states = key_service.list_keys(runtime.keyring)
            upcoming = next(s.key.kid for s in states if s.status == "next")
            path = path.replace("some-kid", upcoming)
        count = len(console_state(runtime)[0])
        sent = console.client.post(
            path, data={**form, "csrf_token": csrf_token}, follow_redirects=False
        )
        assert sent.status_code in (200, 303), (path, sent.text)
        assert not sent.headers.get("location", "").startswith("/login/"), path
        assert len(console_state(runtime)[0]) > count, path
